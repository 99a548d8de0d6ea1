"""Simulation-based calibration (SBC) of hierfit's models.

For each model: draw the parameters from the prior, simulate a data set on a fixed,
real-sized design (30 groups x 10 rows by default), fit it with hierfit's model and
sampler, and record the rank of each true parameter among thinned posterior draws.
If the model, the sampler and the simulator agree, every rank is uniform on
``0..L`` (Talts et al. 2018, "Validating Bayesian inference algorithms with
simulation-based calibration").  Uniformity is tested per parameter with a
chi-square test on binned ranks and a Kolmogorov-Smirnov test of the ECDF of the
(jittered, hence exactly uniform under the null) fractional ranks.

The simulator is plain numpy written from the model's definition (see
``hierfit.engine.model``), not hierfit's PyMC graph, so a disagreement between what the
model is meant to be and what is sampled shows up as non-uniform ranks.

Speed: each worker process builds the design and priors once with hierfit's own
``build_design``/``resolve_priors``; each replication swaps in its response, writes
the model down for hierfit's compiled kernel (``hierfit.engine.kernel.build_spec``, the path
``hierfit.fit`` takes) and samples it with nutpie, so nothing is compiled per model.

Run the benchmark (results go to ``benchmarks/results/``)::

    python benchmarks/sbc.py --reps 500 --processes 2

Example
-------
>>> import sbc  # doctest: +SKIP
>>> res = sbc.run_sbc(sbc.MODELS["gauss_ri"], n_reps=20, seed=1, processes=1)  # doctest: +SKIP
>>> sbc.uniformity(res)["chi2_p"].min() > 0.001  # doctest: +SKIP
True
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special, stats

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

__all__ = ["SBCModel", "SBCResult", "MODELS", "design_frame", "draw_prior", "simulate", "run_sbc", "uniformity",
           "plot_ranks", "write_report", "load_result", "main"]


# -- model specifications ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SBCModel:
    """One model to calibrate: formula, family, priors (brms spelling) and design size.

    ``method`` and ``parametrization`` pick hierfit's sampler for the model, as
    ``hierfit.fit(method=..., parametrization=...)`` would.  ``terms`` lists the group
    terms as (grouping column, coefficients) with coefficients among ``"(Intercept)"``
    and ``"x"``; ``correlated`` says whether a term with two coefficients has an LKJ
    correlation.  ``priors`` is used twice: as hierfit's ``priors=`` when fitting and,
    parsed independently, to simulate.

    Example
    -------
    >>> m = MODELS["gauss_ri"]
    >>> m.formula, m.family
    ('y ~ x + (1 | g)', 'gaussian')
    """

    name: str
    formula: str
    family: str
    terms: tuple[tuple[str, tuple[str, ...]], ...]
    priors: dict
    correlated: bool = True
    n_groups: int = 30
    n_per_group: int = 10
    crossed_levels: int = 10
    nested_levels: int = 5  # levels of ``c`` (nested in ``g``) per level of ``g``
    method: str = "full"  # "full" (NUTS on all parameters) or "collapsed" (group effects integrated out)
    parametrization: str = "auto"  # of the group effects, for method "full"
    params: tuple[str, ...] = field(default=())

    def with_(self, **changes) -> "SBCModel":
        """A copy with some fields changed.

        Example
        -------
        >>> MODELS["gauss_ri"].with_(n_groups=8).n_groups
        8
        """
        return dataclasses.replace(self, **changes)


_GAUSS_PRIORS = {"Intercept": "normal(0, 1)", "b": "normal(0, 1)", "sd": "normal(0, 1)",
                 "sigma": "exponential(1)", "cor": "lkj(2)"}

_RI = dict(formula="y ~ x + (1 | g)", family="gaussian", terms=(("g", ("(Intercept)",)),), priors=_GAUSS_PRIORS,
           params=("Intercept", "b[x]", "sd_g[(Intercept)]", "sigma", "r_g[0,(Intercept)]"))
_RS = dict(formula="y ~ x + (x | g)", family="gaussian", terms=(("g", ("(Intercept)", "x")),), priors=_GAUSS_PRIORS,
           params=("Intercept", "b[x]", "sd_g[(Intercept)]", "sd_g[x]", "cor_g", "sigma", "r_g[0,x]"))

_COUNT_PRIORS = {"Intercept": "normal(1, 0.5)", "b": "normal(0, 0.5)", "sd": "normal(0, 0.5)"}
_COUNT_PARAMS = ("Intercept", "b[x]", "sd_g[(Intercept)]", "r_g[0,(Intercept)]")
_RI_COUNT = dict(formula="y ~ x + (1 | g)", terms=(("g", ("(Intercept)",)),))

#: The calibrated models: the issue's five, with each of hierfit's samplers that can fit them
#: (Gaussian models with one grouping factor, or one nested in another, are collapsed by default; "full" is the
#: fallback).
MODELS: dict[str, SBCModel] = {
    m.name: m
    for m in [
        SBCModel("gauss_ri", method="collapsed", **_RI),
        SBCModel("gauss_ri_full", **_RI),
        SBCModel("gauss_ri_noncentered", parametrization="noncentered", **_RI),
        SBCModel("gauss_ri_centered", parametrization="centered", **_RI),
        SBCModel("gauss_rs_lkj", method="collapsed", **_RS),
        SBCModel("gauss_rs_lkj_full", **_RS),
        SBCModel("gauss_nested", "y ~ x + (1 | g) + (1 | c)", "gaussian",
                 (("g", ("(Intercept)",)), ("c", ("(Intercept)",))), _GAUSS_PRIORS, method="collapsed",
                 params=("Intercept", "b[x]", "sd_g[(Intercept)]", "sd_c[(Intercept)]", "sigma",
                         "r_g[0,(Intercept)]", "r_c[0,(Intercept)]")),
        # 9 inner levels for 10 rows: sigma and sd_c are identified mainly through their sum, so the collapsed
        # sampler's variance decomposition (hierfit.engine.kernel.vardec) is used
        SBCModel("gauss_nested_vardec", "y ~ x + (1 | g) + (1 | c)", "gaussian",
                 (("g", ("(Intercept)",)), ("c", ("(Intercept)",))), _GAUSS_PRIORS, method="collapsed",
                 nested_levels=9,
                 params=("Intercept", "b[x]", "sd_g[(Intercept)]", "sd_c[(Intercept)]", "sigma",
                         "r_g[0,(Intercept)]", "r_c[0,(Intercept)]")),
        SBCModel("gauss_crossed", "y ~ x + (1 | g) + (1 | h)", "gaussian",
                 (("g", ("(Intercept)",)), ("h", ("(Intercept)",))), _GAUSS_PRIORS,
                 params=("Intercept", "b[x]", "sd_g[(Intercept)]", "sd_h[(Intercept)]", "sigma")),
        SBCModel("poisson_ri", "y ~ x + (1 | g)", "poisson", (("g", ("(Intercept)",)),),
                 {"Intercept": "normal(1, 0.5)", "b": "normal(0, 0.5)", "sd": "normal(0, 0.5)"},
                 params=("Intercept", "b[x]", "sd_g[(Intercept)]", "r_g[0,(Intercept)]")),
        SBCModel("bernoulli_rs", "y ~ x + (x | g)", "bernoulli", (("g", ("(Intercept)", "x")),),
                 {"Intercept": "normal(0, 1)", "b": "normal(0, 1)", "sd": "normal(0, 1)", "cor": "lkj(2)"},
                 params=("Intercept", "b[x]", "sd_g[(Intercept)]", "sd_g[x]", "cor_g")),
        # the families of docs/families.md beyond the chapter's (each with its extra parameter as a parameter)
        SBCModel("zip_ri", family="zero_inflated_poisson", priors={**_COUNT_PRIORS, "zi": "beta(2, 5)"},
                 params=_COUNT_PARAMS + ("zi",), **_RI_COUNT),
        SBCModel("zinb_ri", family="zero_inflated_negbinomial",
                 priors={**_COUNT_PRIORS, "zi": "beta(2, 5)", "shape": "gamma(4, 1)"},
                 params=_COUNT_PARAMS + ("shape", "zi"), **_RI_COUNT),
        SBCModel("hurdle_poisson_ri", family="hurdle_poisson", priors={**_COUNT_PRIORS, "hu": "beta(2, 5)"},
                 params=_COUNT_PARAMS + ("hu",), **_RI_COUNT),
        SBCModel("hurdle_nb_ri", family="hurdle_negbinomial",
                 priors={**_COUNT_PRIORS, "hu": "beta(2, 5)", "shape": "gamma(4, 1)"},
                 params=_COUNT_PARAMS + ("shape", "hu"), **_RI_COUNT),
        SBCModel("hurdle_lognormal_ri", family="hurdle_lognormal",
                 priors={**_COUNT_PRIORS, "hu": "beta(2, 5)", "sigma": "exponential(2)"},
                 params=_COUNT_PARAMS + ("sigma", "hu"), **_RI_COUNT),
        SBCModel("beta_ri", family="beta", priors={**_COUNT_PRIORS, "Intercept": "normal(0, 0.5)",
                                                   "phi": "gamma(10, 0.5)"},
                 params=_COUNT_PARAMS + ("phi",), **_RI_COUNT),
        SBCModel("lognormal_ri", family="lognormal", priors={**_COUNT_PRIORS, "sigma": "exponential(2)"},
                 params=_COUNT_PARAMS + ("sigma",), **_RI_COUNT),
        SBCModel("weibull_ri", family="weibull", priors={**_COUNT_PRIORS, "shape": "gamma(8, 4)"},
                 params=_COUNT_PARAMS + ("shape",), **_RI_COUNT),
        SBCModel("exponential_ri", family="exponential", priors=_COUNT_PRIORS, params=_COUNT_PARAMS, **_RI_COUNT),
        # ordinal: 4 categories, thresholds Intercept[1..3] (iid prior draws, sorted: the ordered prior's law);
        # sampled through hierfit's compiled kernel like the other families
        SBCModel("cumulative_ri", family="cumulative", parametrization="noncentered",
                 priors={"Intercept": "normal(0, 1.5)", "b": "normal(0, 1)", "sd": "normal(0, 1)"},
                 params=tuple(f"b_Intercept[Intercept[{k}]]" for k in (1, 2, 3))
                 + ("b[x]", "sd_g[(Intercept)]", "r_g[0,(Intercept)]"), **_RI_COUNT),
    ]
}


def design_frame(model: SBCModel, seed: int = 0) -> pd.DataFrame:
    """The fixed design: groups ``g`` (0..J-1), crossed ``h``, ``c`` nested in ``g``, and a centred covariate ``x``.

    Example
    -------
    >>> d = design_frame(MODELS["gauss_crossed"])
    >>> d.shape, d["g"].nunique(), d["h"].nunique(), round(abs(d["x"].mean()), 12)
    ((300, 5), 30, 10, 0.0)
    """
    rng = np.random.default_rng(seed)
    J, n = model.n_groups, model.n_per_group
    g = np.repeat(np.arange(J), n)
    h = np.tile(np.arange(model.crossed_levels), J * n // model.crossed_levels + 1)[: J * n]
    c = g * model.nested_levels + np.tile(np.arange(n), J) % model.nested_levels
    x = rng.normal(size=J * n)
    x = x - x.mean()
    y = rng.normal(size=J * n) if model.family == "gaussian" else rng.integers(0, 2, size=J * n).astype(float)
    if model.family in ("beta", "lognormal", "weibull", "exponential"):
        y = rng.uniform(0.1, 0.9, size=J * n)  # any valid response: the design, not the data, matters here
    if model.family == "cumulative":
        y = np.arange(J * n) % N_CATEGORIES  # every category present: the model has N_CATEGORIES - 1 thresholds
    return pd.DataFrame({"y": y, "x": x, "g": g, "h": h, "c": c})


# -- the simulator: numpy, from the model's definition ------------------------------------------------------------

_DIST = re.compile(r"^\s*(\w+)\s*\(([^)]*)\)\s*$")


def draw_prior(spec: str, rng: np.random.Generator, positive: bool = False, scale: float = 1.0) -> float:
    """One draw from a brms-style prior; ``positive`` gives the half-distribution (sd, sigma).

    ``scale`` multiplies the prior's scale parameter (to simulate from a deliberately
    wrong prior).

    Example
    -------
    >>> rng = np.random.default_rng(1)
    >>> draw_prior("normal(0, 1)", rng, positive=True) > 0
    True
    """
    m = _DIST.match(spec)
    if not m:
        raise ValueError(f"cannot read prior {spec!r}")
    fam, args = m.group(1), [float(a) for a in m.group(2).split(",")]
    if fam == "normal":
        mu, s = args[0], args[1] * scale
        return abs(rng.normal(0.0, s)) if positive else rng.normal(mu, s)
    if fam == "exponential":
        return rng.exponential(scale / args[0])
    if fam == "gamma":  # shape, rate
        return rng.gamma(args[0], scale / args[1])
    if fam == "beta":
        return rng.beta(args[0], args[1])
    if fam == "lkj":  # 2 x 2: (r + 1) / 2 ~ Beta(eta, eta)
        return 2.0 * rng.beta(args[0], args[0]) - 1.0
    raise ValueError(f"no simulator for prior {spec!r}")


def simulate(model: SBCModel, data: pd.DataFrame, rng: np.random.Generator,
             wrong_scale: dict[str, float] | None = None) -> tuple[dict[str, float], np.ndarray]:
    """Draw the parameters from the prior and a response from the model.

    Returns (true parameter values keyed like ``model.params``, y).  ``wrong_scale``
    maps prior classes (``"sd"``, ``"b"``...) to a factor that widens the prior used
    here but not the one used for fitting: a deliberately mis-specified simulation.

    Example
    -------
    >>> m = MODELS["gauss_ri"]
    >>> truth, y = simulate(m, design_frame(m), np.random.default_rng(1))
    >>> sorted(truth) == sorted(m.params), y.shape
    (True, (300,))
    """
    ws = wrong_scale or {}
    pri = model.priors
    truth: dict[str, float] = {}
    intercept = draw_prior(pri["Intercept"], rng, scale=ws.get("Intercept", 1.0))
    if model.family == "cumulative":  # ordered thresholds instead of an intercept
        thresholds = np.sort([intercept] + [draw_prior(pri["Intercept"], rng, scale=ws.get("Intercept", 1.0))
                                            for _ in range(N_CATEGORIES - 2)])
        truth.update({f"b_Intercept[Intercept[{k + 1}]]": t for k, t in enumerate(thresholds)})
        intercept = 0.0
    beta = draw_prior(pri["b"], rng, scale=ws.get("b", 1.0))
    truth["Intercept"], truth["b[x]"] = intercept, beta
    x = data["x"].to_numpy()
    eta = intercept + beta * (x - x.mean())
    for col, coefs in model.terms:
        idx = data[col].to_numpy()
        levels = int(idx.max()) + 1
        sds = np.array([draw_prior(pri["sd"], rng, positive=True, scale=ws.get("sd", 1.0)) for _ in coefs])
        for c, s in zip(coefs, sds):
            truth[f"sd_{col}[{c}]"] = s
        if len(coefs) == 2 and model.correlated:
            rho = draw_prior(pri["cor"], rng)
            truth[f"cor_{col}"] = rho
            L = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
            u = rng.normal(size=(levels, 2)) @ L.T * sds
        else:
            u = rng.normal(size=(levels, len(coefs))) * sds
        for k, c in enumerate(coefs):
            truth[f"r_{col}[0,{c}]"] = u[0, k]
            z = np.ones_like(x) if c == "(Intercept)" else x
            eta = eta + z * u[idx, k]
    if model.family == "gaussian":
        sigma = draw_prior(pri["sigma"], rng, positive=True, scale=ws.get("sigma", 1.0))
        truth["sigma"] = sigma
        y = eta + sigma * rng.normal(size=eta.size)
    elif model.family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif model.family == "bernoulli":
        y = (rng.uniform(size=eta.size) < special.expit(eta)).astype(float)
    elif model.family == "cumulative":  # y = number of thresholds below the latent logistic variable
        latent = eta + rng.logistic(size=eta.size)
        y = (latent[:, None] > np.array([truth[f"b_Intercept[Intercept[{k}]]"]
                                         for k in range(1, N_CATEGORIES)])).sum(axis=1).astype(float)
    elif model.family in _FAMILY_SIMULATORS:
        extra = {k: draw_prior(pri[k], rng, positive=True) for k in ("zi", "hu", "shape", "phi", "sigma") if k in pri}
        truth.update(extra)
        y = _FAMILY_SIMULATORS[model.family](rng, eta, extra)
    else:
        raise ValueError(f"no simulator for family {model.family}")
    return {k: truth[k] for k in model.params}, y


#: categories of the ordinal (cumulative) model
N_CATEGORIES = 4


def _counts(rng, mu, shape=None):
    if shape is None:
        return rng.poisson(mu)
    return rng.poisson(rng.gamma(shape, mu / shape))  # negative binomial as a gamma-Poisson mixture


def _positive_counts(rng, mu, shape=None):
    """Counts conditioned on > 0, by rejection."""
    y = _counts(rng, mu, shape)
    while (y == 0).any():
        redo = y == 0
        y[redo] = _counts(rng, mu[redo], shape)
    return y


def _zero(rng, p, values):
    return np.where(rng.uniform(size=values.size) < p, 0.0, values).astype(float)


_FAMILY_SIMULATORS = {
    "zero_inflated_poisson": lambda rng, eta, e: _zero(rng, e["zi"], _counts(rng, np.exp(eta))),
    "zero_inflated_negbinomial": lambda rng, eta, e: _zero(rng, e["zi"], _counts(rng, np.exp(eta), e["shape"])),
    "hurdle_poisson": lambda rng, eta, e: _zero(rng, e["hu"], _positive_counts(rng, np.exp(eta))),
    "hurdle_negbinomial": lambda rng, eta, e: _zero(rng, e["hu"], _positive_counts(rng, np.exp(eta), e["shape"])),
    "hurdle_lognormal": lambda rng, eta, e: _zero(rng, e["hu"], np.exp(eta + e["sigma"] * rng.normal(size=eta.size))),
    "beta": lambda rng, eta, e: np.clip(rng.beta(special.expit(eta) * e["phi"], (1 - special.expit(eta)) * e["phi"]),
                                        1e-12, 1 - 1e-12),
    "lognormal": lambda rng, eta, e: np.exp(eta + e["sigma"] * rng.normal(size=eta.size)),
    # weibull: mean exp(eta), so scale = mean / Gamma(1 + 1/k)
    "weibull": lambda rng, eta, e: np.exp(eta) / special.gamma(1 + 1 / e["shape"]) * rng.weibull(e["shape"], eta.size),
    "exponential": lambda rng, eta, e: rng.exponential(np.exp(eta)),
}


def _extract(post, name: str) -> np.ndarray:
    """(S,) draws of a parameter named like ``b[x]``, ``sd_g[x]``, ``cor_g``, ``r_g[0,(Intercept)]``."""
    from hierfit.results.draws import stack

    m = re.fullmatch(r"(\w+)(?:\[(.*)\])?", name)
    var, sub = m.group(1), m.group(2)
    if var.startswith("cor_"):
        return stack(post, var)[:, 0, 1]
    arr = stack(post, var)
    if sub is None:
        return arr
    da = post[var]
    if var.startswith("r_"):
        level, coef = sub.split(",")
        j = list(da.coords[da.dims[2]].values).index(level)
        k = list(da.coords[da.dims[3]].values).index(coef)
        return arr[:, j, k]
    k = list(da.coords[da.dims[2]].values).index(sub)
    return arr[:, k]


# -- one worker: compile once, fit many ----------------------------------------------------------------------------

_STATE: dict = {}


def _worker_init(model: SBCModel, design_seed: int) -> None:
    """Build the design and priors once per worker."""
    from hierfit.spec.design import build_design
    from hierfit.spec.priors import resolve_priors

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.filterwarnings("ignore", message=".*BLAS.*")
    _STATE["model"] = model
    _STATE["data"] = design_frame(model, design_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _STATE["design"] = build_design(model.formula, _STATE["data"], family=model.family)
        d = _STATE["design"]
        correlated = any(b.is_correlated for b in d.all_blocks)  # a cor prior without correlations is an error
        _STATE["priors"] = resolve_priors(d, {k: v for k, v in model.priors.items() if k != "cor" or correlated})
    if not _STATE["design"].family.has_kernel:  # no compiled kernel: the PyMC model, compiled once, new data each rep
        import nutpie

        from hierfit.engine.model import build_model
        from hierfit.engine.sampling import stored_variables

        pm_model = build_model(_STATE["design"], _STATE["priors"], model.parametrization)
        _STATE["compiled"] = nutpie.compile_pymc_model(pm_model, backend="numba",
                                                       var_names=stored_variables(pm_model))


def _with_response(y: np.ndarray):
    """(kernel spec of the model with the new response, design with it, description of the sampler).

    For ``parametrization="auto"`` the parametrization is chosen for this response, as
    ``hierfit.fit`` does for every data set.
    """
    from hierfit.engine.kernel import build_spec
    from hierfit.spec.parametrization import choose_parametrization

    model = _STATE["model"]
    design = dataclasses.replace(_STATE["design"], y=y)
    if "compiled" in _STATE:
        return _STATE["compiled"].with_data(y_obs=y), design, f"PyMC model (nutpie), g {model.parametrization}"
    if model.method == "collapsed":
        from hierfit.spec.layout import collapsible

        assert collapsible(design)[0], collapsible(design)
        return build_spec(design, _STATE["priors"], collapsed=True), design, "collapsed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        par = choose_parametrization(design, model.parametrization)
    how = "; ".join(f"{k} {v}" for k, v in par.by_name().items())
    return build_spec(design, _STATE["priors"], par), design, how


def _one_rep(args) -> dict:
    from arviz_stats.base import array_stats

    from hierfit.engine.kernel.driver import sample_spec
    from hierfit.engine.sampling import SamplerSettings

    rep, seed, wrong_scale, draws, tune, chains, n_keep, min_ess = args
    model, data = _STATE["model"], _STATE["data"]
    rng = np.random.default_rng([seed, rep])
    truth, y = simulate(model, data, rng, wrong_scale)
    spec_y, design_y, how = _with_response(y)
    t0 = time.perf_counter()
    n_draws, reruns = draws, 0
    while True:
        if "compiled" in _STATE:
            import nutpie

            dt = nutpie.sample(spec_y, draws=n_draws, tune=tune, chains=chains, cores=1,
                               seed=int(rng.integers(2**31 - 1)), progress_bar=False)
        else:
            dt, _ = sample_spec(spec_y, SamplerSettings(draws=n_draws, tune=tune, chains=chains, cores=1,
                                                        seed=int(rng.integers(2**31 - 1)), progressbar=False))
        post = dt["posterior"].to_dataset()
        if how == "collapsed":  # group effects drawn exactly from their conditional, as hierfit.fit does
            from hierfit.engine.group_draws import draw_group_effects

            post = draw_group_effects(post, design_y, int(rng.integers(2**31 - 1)))
        samples = {name: _extract(post, name) for name in model.params}
        ess = {name: float(array_stats.ess(s.reshape(chains, n_draws), chain_axis=0, draw_axis=1, method="bulk"))
               for name, s in samples.items()}
        worst = min(ess.values())
        # too few effective draws make thinned draws correlated (spurious non-uniformity): run longer, once
        if min_ess is None or worst >= min_ess or reruns:
            break
        n_draws = int(n_draws * min(20, np.ceil(1.3 * min_ess / max(worst, 1.0))))
        reruns += 1
    elapsed = time.perf_counter() - t0
    n_div = int(np.asarray(dt["sample_stats"]["diverging"].values).sum())
    out = {"rep": rep, "seconds": elapsed, "divergences": n_div, "draws": n_draws, "sampler": how}
    keep = np.round(np.linspace(0, chains * n_draws - 1, n_keep)).astype(int)  # evenly spaced over all chains
    for name, s in samples.items():
        out[f"truth:{name}"] = truth[name]
        out[f"rank:{name}"] = int(np.sum(s[keep] < truth[name]))
        out[f"ess:{name}"] = ess[name]
    return out


# -- the run and its statistics --------------------------------------------------------------------------------------


@dataclass
class SBCResult:
    """Ranks (one row per replication) and settings of one SBC run.

    ``table`` has columns ``rep``, ``seconds``, ``divergences``, ``draws`` (per chain,
    after any rerun), ``sampler`` and per parameter ``truth:<p>``, ``rank:<p>``
    (0..``n_keep``) and ``ess:<p>``.

    Example
    -------
    >>> res = load_result("gauss_ri")  # doctest: +SKIP
    >>> res.table["divergences"].sum(), res.ranks.shape  # doctest: +SKIP
    (0, (500, 5))
    """

    model: SBCModel
    table: pd.DataFrame
    n_keep: int  # ranks run 0..n_keep
    draws: int
    tune: int
    chains: int
    wall_seconds: float
    wrong_scale: dict | None = None
    revision: str | None = None  # the hierfit revision that was calibrated

    @property
    def ranks(self) -> pd.DataFrame:
        """Ranks per replication, one column per parameter.

        Example
        -------
        >>> res.ranks.columns.tolist()  # doctest: +SKIP
        ['Intercept', 'b[x]', 'sd_g[(Intercept)]', 'sigma', 'r_g[0,(Intercept)]']
        """
        return self.table[[f"rank:{p}" for p in self.model.params]].rename(columns=lambda c: c[5:])


def run_sbc(model: SBCModel, n_reps: int, seed: int = 1, processes: int = 2, draws: int = 1000, tune: int = 500,
            chains: int = 2, n_keep: int = 199, wrong_scale: dict | None = None, design_seed: int = 0,
            min_ess: float | None = 199) -> SBCResult:
    """Run SBC for one model: ``n_reps`` simulate-and-fit replications over ``processes`` workers.

    Draws are thinned from ``chains * draws`` to ``n_keep`` evenly spaced ones (over
    all chains), so ranks run 0..n_keep.  A replication whose smallest bulk ESS is under
    ``min_ess`` is sampled again, once, with proportionally more draws (at most 20x),
    so that the kept draws are close to independent.

    Example
    -------
    >>> res = run_sbc(MODELS["gauss_ri"].with_(n_groups=8, n_per_group=5), n_reps=10, processes=1,
    ...               draws=200, tune=200, chains=1, n_keep=99)  # doctest: +SKIP
    >>> res.ranks.shape  # doctest: +SKIP
    (10, 5)
    """
    t0 = time.perf_counter()
    revision = _revision()
    jobs = [(rep, seed, wrong_scale, draws, tune, chains, n_keep, min_ess) for rep in range(n_reps)]
    if processes <= 1:
        _worker_init(model, design_seed)
        rows = [_one_rep(j) for j in jobs]
    else:
        ctx = mp.get_context("spawn")
        with ctx.Pool(processes, initializer=_worker_init, initargs=(model, design_seed)) as pool:
            rows = pool.map(_one_rep, jobs, chunksize=max(1, n_reps // (8 * processes)))
    table = pd.DataFrame(rows).sort_values("rep").reset_index(drop=True)
    return SBCResult(model, table, n_keep, draws, tune, chains, time.perf_counter() - t0, wrong_scale, revision)


def uniformity(result: SBCResult, bins: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Per parameter: chi-square p-value of binned ranks and KS p-value of the rank ECDF.

    ``bins`` defaults to 20, fewer when there are under 10 expected counts per bin,
    and always divides the ``n_keep + 1`` possible ranks evenly.  The KS test uses
    fractional ranks ``(rank + U) / (n_keep + 1)`` with U ~ Uniform(0, 1), which are
    exactly uniform on (0, 1) when the ranks are uniform on 0..n_keep.

    Example
    -------
    >>> uniformity(res)[["chi2_p", "ecdf_ks_p"]]  # doctest: +SKIP
    """
    ranks = result.ranks
    n = len(ranks)
    n_vals = result.n_keep + 1
    if bins is None:
        bins = max(2, min(20, n // 10))
        while n_vals % bins:
            bins -= 1
    rng = np.random.default_rng(seed)
    rows = []
    for p in ranks.columns:
        r = ranks[p].to_numpy()
        counts = np.bincount(r * bins // n_vals, minlength=bins)
        chi2 = stats.chisquare(counts)
        u = (r + rng.uniform(size=n)) / n_vals
        ks = stats.kstest(u, "uniform")
        ess = result.table[f"ess:{p}"]
        rows.append({"parameter": p, "reps": n, "bins": bins, "chi2": chi2.statistic, "chi2_p": chi2.pvalue,
                     "ecdf_ks_p": ks.pvalue, "median_ess": float(ess.median()), "min_ess": float(ess.min())})
    return pd.DataFrame(rows)


def plot_ranks(result: SBCResult, path, bins: int | None = None) -> None:
    """Rank histograms (with a 99% band for uniform counts) and ECDF differences (95% KS band).

    Example
    -------
    >>> plot_ranks(res, "sbc_gauss_ri.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranks = result.ranks
    n, n_vals = len(ranks), result.n_keep + 1
    uni = uniformity(result, bins)
    nb = int(uni["bins"].iloc[0])
    k = ranks.shape[1]
    fig, axes = plt.subplots(2, k, figsize=(3.2 * k, 5.6), squeeze=False)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / nb)
    grid = np.linspace(0, 1, 201)
    band = 1.358 / np.sqrt(n)
    for j, p in enumerate(ranks.columns):
        r = ranks[p].to_numpy()
        ax = axes[0, j]
        ax.axhspan(lo, hi, color="0.85")
        ax.axhline(n / nb, color="0.5", lw=0.8)
        ax.hist(r * nb // n_vals, bins=np.arange(nb + 1) - 0.5, color="C0", edgecolor="white")
        row = uni.iloc[j]
        ax.set_title(f"{p}\nchi2 p={row.chi2_p:.3f}, KS p={row.ecdf_ks_p:.3f}", fontsize=8)
        ax.set_xticks([])
        ax2 = axes[1, j]
        u = np.sort((r + 0.5) / n_vals)
        ecdf = np.searchsorted(u, grid, side="right") / n
        ax2.fill_between(grid, -band, band, color="0.85")
        ax2.plot(grid, ecdf - grid, color="C0")
        ax2.axhline(0, color="0.5", lw=0.8)
        ax2.set_xlabel("fractional rank", fontsize=8)
        if j == 0:
            ax.set_ylabel("count per bin")
            ax2.set_ylabel("ECDF - uniform")
    fig.suptitle(f"SBC {result.model.name}: {result.model.formula} ({result.model.family}), {n} replications",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _revision() -> str:
    """The last commit that changed hierfit/ (see benchmarks/_revision.py)."""
    from _revision import revision

    return revision()


def write_report(results: list[SBCResult], path, alpha: float = 0.05) -> pd.DataFrame:
    """Write the markdown results table; returns the per-parameter table.

    A parameter fails when either p-value is below the Bonferroni threshold
    ``alpha / (2 * number of parameters)`` (both tests, all models together).

    Example
    -------
    >>> write_report([res], "sbc.md")  # doctest: +SKIP
    """
    tabs = []
    for res in results:
        u = uniformity(res)
        u.insert(0, "model", res.model.name)
        tabs.append(u)
    tab = pd.concat(tabs, ignore_index=True)
    threshold = alpha / (2 * len(tab))
    tab["passed"] = tab[["chi2_p", "ecdf_ks_p"]].min(axis=1) >= threshold
    lines = ["# Simulation-based calibration: results", "",
             f"Generated by `python benchmarks/sbc.py` on {time.strftime('%Y-%m-%d')} (hierfit at "
             f"{', '.join(sorted({r.revision or 'unknown revision' for r in results}))}).",
             "See benchmarks/README.md for the method.", "",
             "| model | formula | family | sampler | reps | draws kept | sampler run | rerun longer |"
             " fits with divergences | wall time (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        m = res.model
        div = int((res.table["divergences"] > 0).sum())
        longer = int((res.table["draws"] > res.draws).sum())
        counts = res.table["sampler"].value_counts()
        sampler = "collapsed" if m.method == "collapsed" else f"full, {m.parametrization}: " + ", ".join(
            f"{k} ({v})" for k, v in counts.items())
        formula = m.formula.replace("|", "\\|")  # a bare | would split the table cell
        lines.append(f"| {m.name} | `{formula}` | {m.family} | {sampler} | {len(res.table)} | "
                     f"{res.n_keep} | {res.chains} x {res.draws} (tune {res.tune}) | {longer} | {div} | "
                     f"{res.wall_seconds:.0f} |")
    lines += ["", f"Pass threshold: both p-values >= {threshold:.2g} (Bonferroni: {alpha} / {2 * len(tab)} tests).",
              "", "| model | parameter | reps | bins | chi2 p | ECDF (KS) p | median ESS | min ESS | pass |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in tab.itertuples():
        lines.append(f"| {r.model} | `{r.parameter}` | {r.reps} | {r.bins} | {r.chi2_p:.3f} | {r.ecdf_ks_p:.3f} | "
                     f"{r.median_ess:.0f} | {r.min_ess:.0f} | {'yes' if r.passed else 'NO'} |")
    Path(path).write_text("\n".join(lines) + "\n")
    return tab


def load_result(name: str, folder=RESULTS) -> SBCResult:
    """An SBC run saved by :func:`main` (ranks CSV and run settings).

    Example
    -------
    >>> load_result("gauss_ri").ranks.shape  # doctest: +SKIP
    (500, 5)
    """
    folder = Path(folder)
    meta = json.loads((folder / f"sbc_{name}_run.json").read_text())
    table = pd.read_csv(folder / f"sbc_{name}_ranks.csv")
    return SBCResult(MODELS[name], table, meta["n_keep"], meta["draws"], meta["tune"], meta["chains"],
                     meta["wall_seconds"], revision=meta.get("revision"))


def main(argv=None) -> int:
    """Command line: run SBC for the chosen models and write results/sbc.md and PNGs.

    Example
    -------
    >>> main(["--models", "gauss_ri", "--reps", "20"])  # doctest: +SKIP
    0
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--keep", type=int, default=199)
    ap.add_argument("--min-ess", type=float, default=199)
    ap.add_argument("--seed", type=int, default=20260)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--report-only", action="store_true", help="rebuild sbc.md and the PNGs from saved ranks")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = [load_result(name, args.out) for name in args.models if (args.out / f"sbc_{name}_run.json").exists()]
        for res in results:
            plot_ranks(res, args.out / f"sbc_{res.model.name}.png")
        tab = write_report(results, args.out / "sbc.md")
        total = sum(r.wall_seconds for r in results)
        with open(args.out / "sbc.md", "a") as fh:
            fh.write(f"\nTotal wall time: {total:.0f} s with {args.processes} worker processes.\n")
        return 0 if tab["passed"].all() else 1
    results = []
    t0 = time.perf_counter()
    for name in args.models:
        try:
            res = run_sbc(MODELS[name], args.reps, seed=args.seed, processes=args.processes, draws=args.draws,
                          tune=args.tune, chains=args.chains, n_keep=args.keep, min_ess=args.min_ess)
        except Exception as err:  # noqa: BLE001 - report and go on with the other models
            print(f"{name}: FAILED: {type(err).__name__}: {err}", flush=True)
            continue
        res.table.to_csv(args.out / f"sbc_{name}_ranks.csv", index=False)
        (args.out / f"sbc_{name}_run.json").write_text(json.dumps(
            dict(n_keep=res.n_keep, draws=res.draws, tune=res.tune, chains=res.chains,
                 wall_seconds=res.wall_seconds, processes=args.processes, seed=args.seed, revision=res.revision)))
        plot_ranks(res, args.out / f"sbc_{name}.png")
        print(f"{name}: {len(res.table)} replications in {res.wall_seconds:.0f} s", flush=True)
        print(uniformity(res).to_string(index=False), flush=True)
        results.append(res)
    tab = write_report(results, args.out / "sbc.md")
    total = time.perf_counter() - t0
    with open(args.out / "sbc.md", "a") as fh:
        fh.write(f"\nTotal wall time: {total:.0f} s with {args.processes} worker processes.\n")
    print(f"total {total:.0f} s; all pass: {bool(tab['passed'].all())}")
    return 0 if tab["passed"].all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
