"""Stage 3 of the pipeline: design + priors -> PyMC model.

The model written here is the specification of every hierfit fit::

    y_i       ~ Normal(mu_i, sigma)
    mu_i      = Intercept + (x_i - mean(x)) b + sum_k Z_k[i] r_k[g_k[i]]
    r_k[j]    = diag(sd_k) L_k z_k[j],  z_k[j] ~ Normal(0, I)     (non-centred, default)
    L_k L_k'  ~ LKJ(eta)                                         (correlated terms)

Fixed-effect columns are centred while sampling (the brms device that removes the
intercept/slope correlation); the reported intercept ``b["(Intercept)"]`` is on
the original scale.  Group effects are added with index gathers, never a dense Z.

Posterior variables (all labelled with dims):

``b`` (coef)                                   fixed effects, lme4 names
``Intercept``                                  intercept at the predictor means
``sigma``                                      residual sd
``sd_<key>`` (<key>__coef)                     group-level sds
``cor_<key>`` (<key>__coef, <key>__coef_bis)   group-level correlations
``r_<key>`` (<key>__level, <key>__coef)        group effects (deviations, like ranef)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .design import Design
from .parametrization import Parametrization, choose_parametrization
from .priors import Dist, PriorSet, pymc_rv

__all__ = ["build_model", "coords_for", "fixed_part", "FixedPart", "LevelMean", "centred_means"]


def coords_for(design: Design) -> dict[str, list[str]]:
    """The coordinate labels of every dim of the model.

    Example
    -------
    >>> import hierfit
    >>> from hierfit.design import build_design
    >>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> sorted(coords_for(d))
    ['beta_coef', 'coef', 'school__coef', 'school__coef_bis', 'school__level']
    """
    coords: dict[str, list[str]] = {}
    for pred in design.predictors.values():
        coords[pred.dim("coef")] = list(pred.fixed_names)
        coords[pred.dim("beta_coef")] = [n for n in pred.fixed_names if n != "(Intercept)"]
        for blk in pred.blocks:
            coords[f"{blk.key}__level"] = list(blk.levels)
            coords[f"{blk.key}__coef"] = list(blk.coefs)
            coords[f"{blk.key}__coef_bis"] = list(blk.coefs)
    return coords


def _vector_rv(name: str, dists: list[Dist], dim: str, positive: bool):
    """One random vector whose elements have the given priors (one RV per prior family)."""
    import pymc as pm
    import pytensor.tensor as pt

    families = sorted({d.family for d in dists})
    if len(families) == 1:
        params = np.array([d.params for d in dists], dtype=float).T
        return pymc_rv(name, families[0], list(params), positive, dims=dim)
    out = pt.zeros(len(dists))
    for fam in families:
        idx = [i for i, d in enumerate(dists) if d.family == fam]
        params = np.array([dists[i].params for i in idx], dtype=float).T
        rv = pymc_rv(f"{name}__{fam}", fam, list(params), positive, shape=len(idx))
        out = pt.set_subtensor(out[idx], rv)
    return pm.Deterministic(name, out, dims=dim)


def _constant_within(x: np.ndarray, index: np.ndarray, n_levels: int) -> bool:
    """True when x takes a single value within every level (a group-level predictor)."""
    lo = np.full(n_levels, np.inf)
    hi = np.full(n_levels, -np.inf)
    np.minimum.at(lo, index, x)
    np.maximum.at(hi, index, x)
    return bool(np.all(hi - lo <= 1e-12 * (1 + np.abs(hi))))


def _first_row_per_level(index: np.ndarray, n_levels: int) -> np.ndarray:
    first = np.full(n_levels, -1)
    rows = np.arange(len(index))[::-1]
    first[index[::-1]] = rows
    return first


@dataclass(frozen=True)
class LevelMean:
    """The mean of one centred coefficient's level values (hierarchical centring).

    ``kind`` is ``"intercept"`` (the intercept at the predictor means plus the effects of
    the slopes in ``slopes`` that are constant within levels, with their centred values
    per level in ``level_X``), ``"slope"`` (the fixed slope ``slopes[0]``) or ``"zero"``.
    Slope indices count the predictor's non-intercept coefficients.
    """

    kind: str
    slopes: tuple[int, ...] = ()
    level_X: np.ndarray | None = None


def centred_means(pred, par) -> dict[str, list[LevelMean]]:
    """For each centred block of ``pred``: the :class:`LevelMean` of each of its coefficients.

    The intercept's mean is the intercept plus the predictors that are constant within
    the block's levels (group-level predictors); a slope's mean is its fixed effect.  Each
    fixed coefficient serves one term only: the most data-rich centred term first (the
    largest information ratio ``par.kappa``; block order without it), because the fixed
    effect is best identified by the level means that the data pin down best — with
    crossed terms, hosting the intercept in a data-poor term leaves it nearly unidentified
    between the terms.  Shared by the PyMC model and hierfit's compiled kernel, so both
    centre identically.
    """
    names = pred.fixed_names
    slope_idx = [j for j, n in enumerate(names) if n != "(Intercept)"]
    slope_names = [names[j] for j in slope_idx]
    X = pred.X[:, slope_idx]
    xmean = X.mean(axis=0) if pred.has_intercept else np.zeros(len(slope_idx))
    used: set[str] = set()
    out: dict[str, list[LevelMean]] = {}
    kappa = getattr(par, "kappa", {})
    centred = [blk for blk in pred.blocks if par.get(blk.key) == "centered"]
    for blk in sorted(centred, key=lambda b: -kappa.get(b.key, 0.0)):  # stable: block order for ties
        plan = []
        for c in blk.coefs:
            if c == "(Intercept)" and pred.has_intercept and c not in used:
                used.add(c)
                cols = [k for k, n in enumerate(slope_names) if n not in used
                        and _constant_within(X[:, k], blk.index, blk.n_levels)]
                level_X = None
                if cols:
                    first = _first_row_per_level(blk.index, blk.n_levels)
                    level_X = (X - xmean)[first][:, cols]
                    used.update(slope_names[k] for k in cols)
                plan.append(LevelMean("intercept", tuple(cols), level_X))
            elif c in slope_names and c not in used:
                used.add(c)
                plan.append(LevelMean("slope", (slope_names.index(c),)))
            else:
                plan.append(LevelMean("zero"))
        out[blk.key] = plan
    return out


@dataclass
class FixedPart:
    """The fixed-effect variables of one linear predictor, as built into the PyMC model."""

    names: list[str]
    slope_idx: list[int]
    X: np.ndarray  # the slope columns, uncentred
    xmean: np.ndarray
    intercept: object  # the intercept at the predictor means (RV) or None
    beta: object  # slope RV vector or None
    coef: dict  # lme4 name -> tensor of the coefficient on the original scale
    b: object  # stacked coefficients (the Deterministic "b")


def fixed_part(pred, pp) -> FixedPart:
    """Create the intercept (at the predictor means), slopes and ``b`` of a predictor, inside a model context.

    The intercept is sampled for centred predictors (brms's device); ``b["(Intercept)"]`` is on the
    original scale.  Shared by the full and the collapsed model builders.
    """
    import pymc as pm
    import pytensor.tensor as pt

    names = pred.fixed_names
    slope_idx = [j for j, n in enumerate(names) if n != "(Intercept)"]
    X = pred.X[:, slope_idx]
    xmean = X.mean(axis=0) if pred.has_intercept else np.zeros(len(slope_idx))
    beta = None
    if slope_idx:
        beta = _vector_rv(pred.var("beta"), [pp.b[names[j]] for j in slope_idx], pred.dim("beta_coef"), positive=False)
    intercept = None
    coef: dict[str, object] = {}
    if pred.has_intercept:
        intercept = pp.intercept.to_pymc(pred.var("Intercept"), positive=False)
        coef["(Intercept)"] = intercept - (pt.dot(xmean, beta) if beta is not None else 0.0)
    for k, j in enumerate(slope_idx):
        coef[names[j]] = beta[k]
    b = pt.zeros(0)
    if names:
        b = pm.Deterministic(pred.var("b"), pt.stack([pt.as_tensor(coef[n]) for n in names]), dims=pred.dim("coef"))
    return FixedPart(names, slope_idx, X, xmean, intercept, beta, coef, b)


def _predictor_eta(pred, pp, par: dict[str, str], nobs: int):
    """Add one linear predictor's variables to the model and return its eta."""
    import pymc as pm
    import pytensor.tensor as pt

    fp = fixed_part(pred, pp)
    slope_idx, X, xmean, intercept, beta = fp.slope_idx, fp.X, fp.xmean, fp.intercept, fp.beta
    eta = pt.zeros(nobs)
    if slope_idx:
        eta = eta + pt.dot(pm.Data(pred.var("X"), X - xmean), beta)
    if intercept is not None:
        eta = eta + intercept
    plans = centred_means(pred, par)
    for blk in pred.blocks:
        key = blk.key
        dims = (f"{key}__level", f"{key}__coef")
        sd = _vector_rv(f"sd_{key}", pp.sd[blk.name], f"{key}__coef", positive=True)
        if blk.is_correlated:
            Lc = pm.LKJCorr(f"L_{key}", n=blk.n_coefs, eta=pp.cor[blk.name].params[0])
            pm.Deterministic(f"cor_{key}", Lc @ Lc.T, dims=(f"{key}__coef", f"{key}__coef_bis"))
            chol = sd[:, None] * Lc
        if par[key] == "noncentered":
            z = pm.Normal(f"z_{key}", 0.0, 1.0, dims=dims)
            r = pm.Deterministic(f"r_{key}", z @ chol.T if blk.is_correlated else z * sd, dims=dims)
        else:
            # centred (hierarchical centring): the level's coefficient gamma = its mean + deviation is sampled;
            # r = gamma - mean keeps the posterior's variables unchanged (see centred_means).
            means = []
            for lm in plans[key]:
                if lm.kind == "intercept":
                    mean_c = pt.as_tensor(intercept) * pt.ones(blk.n_levels)
                    if lm.slopes:
                        mean_c = mean_c + pt.dot(lm.level_X, beta[list(lm.slopes)])
                elif lm.kind == "slope":
                    mean_c = beta[lm.slopes[0]] * pt.ones(blk.n_levels)
                else:
                    mean_c = pt.zeros(blk.n_levels)
                means.append(mean_c)
            m = pt.stack(means, axis=1)
            if blk.is_correlated:
                gamma = pm.MvNormal(f"gamma_{key}", mu=m, chol=chol, dims=dims)
            else:
                gamma = pm.Normal(f"gamma_{key}", m, sd, dims=dims)
            r = pm.Deterministic(f"r_{key}", gamma - m, dims=dims)
        idx = pm.Data(f"g_{key}", blk.index)
        for c in range(blk.n_coefs):
            zc = blk.Z[:, c]
            if np.all(zc == 1.0):
                eta = eta + r[idx, c]
            else:
                eta = eta + r[idx, c] * pm.Data(f"Z_{key}_{c}", zc)
    if pred.offset is not None:
        eta = eta + pm.Data(pred.var("offset"), pred.offset)
    return eta


def build_model(design: Design, priors: PriorSet, parametrization="auto"):
    """Build the PyMC model of a (generalised, distributional) mixed model.

    Parameters
    ----------
    design : Design
        From :func:`hierfit.design.build_design`.
    priors : PriorSet
        From :func:`hierfit.priors.resolve_priors`.
    parametrization : {"auto", "noncentered", "centered"}, dict or Parametrization
        Per group term (dict keys are group names such as ``"school"``); "auto"
        decides from the data (see :mod:`hierfit.parametrization`).

    Returns
    -------
    pymc.Model

    Example
    -------
    >>> import hierfit
    >>> from hierfit.design import build_design
    >>> from hierfit.priors import resolve_priors
    >>> d = build_design("normexam ~ standLRT + (standLRT | school)", hierfit.datasets.load("exam"))
    >>> m = build_model(d, resolve_priors(d), "noncentered")
    >>> sorted(v.name for v in m.free_RVs)
    ['Intercept', 'L_school', 'beta', 'sd_school', 'sigma', 'z_school']
    """
    import pymc as pm
    import pytensor.tensor as pt

    par = parametrization if isinstance(parametrization, Parametrization) else \
        choose_parametrization(design, parametrization)
    fam = design.family
    with pm.Model(coords=coords_for(design)) as model:
        etas = {dp: _predictor_eta(pred, priors.predictors[dp], par, design.nobs)
                for dp, pred in design.predictors.items()}
        dvals = {}
        for dpar in fam.dpars:
            if dpar.name in etas:
                dvals[dpar.name] = dpar.lower + pt.exp(etas[dpar.name])
            else:
                dvals[dpar.name] = priors.dpars[dpar.name].to_pymc(dpar.name, positive=True, lower=dpar.lower)
        mu = fam.link.inv_pt(etas["mu"])
        y = pm.Data("y_obs", design.y)
        trials = pm.Data("trials", design.trials) if design.trials is not None else None
        fam.pymc_likelihood("y", mu, dvals, y, trials)
    return model
