"""The whole pipeline in one call: :func:`fit` = :func:`~hierfit.spec.specify.specify` -> sample -> :class:`HierFit`.

Like lme4's ``lmer`` (``lFormula`` -> ``mkLmerDevfun`` -> ``optimizeLmer`` ->
``mkMerMod``), each stage is a function with one inspectable result:

1. :func:`hierfit.specify` -> :class:`~hierfit.spec.specify.Specification`
   (design, priors, method, parametrization);
2. :func:`hierfit.engine.sampling.sample_design` -> the posterior ``DataTree``
   (compiled kernel or PyMC model, sampled by NUTS), plus exact group-effect draws
   for collapsed models (:func:`hierfit.engine.group_draws.draw_group_effects`);
3. :class:`~hierfit.results.fit.HierFit`, constructed once with all of it.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd
import xarray as xr

from hierfit.arguments import check_count, check_seed, reject_unknown
from hierfit.engine.group_draws import draw_group_effects
from hierfit.engine.model import build_model
from hierfit.engine.quiet import quiet_pymc
from hierfit.data.sources import is_engine_data
from hierfit.engine.kernel.vardec import TARGET_ACCEPT as VARDEC_TARGET_ACCEPT
from hierfit.engine.kernel.vardec import candidates
from hierfit.engine.run_length import DEFAULT_ESS_TARGET, extended_draws
from hierfit.engine.sampling import INTERNAL_PREFIXES, SamplerSettings, sample_design
from hierfit.errors import ArgumentError, ConvergenceWarning, HierfitWarning
from hierfit.errors import warn as _warn
from hierfit.results.fit import HierFit
from hierfit import families
from hierfit.spec.distributional import split_formula
from hierfit.spec.specify import specify

__all__ = ["fit", "sample_prior"]

_FIT_ARGUMENTS = ("formula", "data", "family", "priors", "dpars", "dispformula", "offset", "draws", "tune", "chains",
                  "seed", "sampler", "target_accept", "progressbar", "cores", "parametrization", "method", "kernel",
                  "data_name", "warn", "weights", "ess_target", "ziformula", "link")


def _drop_internal(tree) -> None:
    """Remove sampler-internal variables (z_, gamma_, L_) from the posterior: r_ and cor_ carry them."""
    post = tree["posterior"].to_dataset()
    internal = [v for v in post.data_vars if str(v).startswith(INTERNAL_PREFIXES)]
    if internal:
        tree["posterior"] = xr.DataTree(post.drop_vars(internal))


def fit(formula, data, family="gaussian", *, priors=None, dpars: dict | None = None,
        dispformula: str | None = None, ziformula: str | None = None, link: str | None = None,
        offset=None, weights=None, draws: int | None = None, tune: int = 1000,
        chains: int = 4, seed: int | None = None, sampler: str = "nutpie", target_accept: float | None = None,
        progressbar: bool = True, cores: int | None = None, parametrization="auto", method: str = "auto",
        kernel: str = "auto", data_name: str | None = None, warn: bool = True, ess_target="auto", **unknown) -> HierFit:
    """Fit a Bayesian mixed model written in lme4/brms syntax.

    Parameters
    ----------
    formula : str or hierfit.bf(...)
        e.g. ``"normexam ~ standLRT + sex + (standLRT | school)"``; binomial responses as
        ``cbind(successes, failures) ~ ...`` or ``successes | trials(n) ~ ...``; offsets as
        ``offset(log(BroodSize))``; ``hierfit.bf(formula, sigma="~ x")`` for distributional models;
        brms's addition terms ``y | weights(w)``, ``y | cens(c, y2)``, ``y | se(sei)`` (docs/addition-terms.md).
    data : pandas.DataFrame, dask.dataframe.DataFrame, or Parquet/CSV path(s)
        A Dask DataFrame, or a path, glob or list of Parquet (or CSV) files read lazily
        through Dask, fits from data larger than memory: Gaussian models the collapsed
        sampler handles from per-level sufficient statistics, binomial/Bernoulli/Poisson
        models with discrete predictors from exactly aggregated counts (docs: "Big data").
    family : str, (name, link) or hierfit.families.Family
        ``"gaussian"``, ``"student"``, ``"poisson"``, ``"negbinomial"``, ``"binomial"``,
        ``"bernoulli"``, ``"gamma"`` (log link, as brms; R's ``"Gamma"`` has the inverse link),
        ``"zero_inflated_poisson"``, ``"zero_inflated_negbinomial"``, ``"hurdle_poisson"``,
        ``"hurdle_negbinomial"``, ``"hurdle_lognormal"``, ``"beta"``, ``"lognormal"``,
        ``"weibull"``, ``"exponential"``; ``("gamma", "inverse")`` or
        ``hierfit.families.binomial(link="probit")`` choose a link (see docs/families.md).
    priors : list of :func:`hierfit.prior` or dict keyed by class, optional
        e.g. ``{"sd": {"group": "school", "dist": "exponential(2)"}}``; see :mod:`hierfit.spec.priors`.
    dpars : dict, optional
        Formulas for distributional parameters, ``{"sigma": "~ sOccasion"}`` (log link).
    dispformula : str, optional
        glmmTMB's spelling for the dispersion formula (sigma for gaussian, shape for
        negbinomial/gamma).  hierfit models log(sigma); glmmTMB's gaussian coefficients
        are for log(sigma^2), twice as large.
    ziformula : str, optional
        glmmTMB's zero-inflation formula (``"~ 1"``, ``"~ x"``; logit link) for the
        zero-inflated families; the same as ``bf(..., zi="~ x")``.
    link : str, optional
        The link of the mean (``family="gamma", link="inverse"``).
    offset : str or array, optional
        An offset expression (``"log(BroodSize)"``) or values, added to the linear predictor.
    weights : str or array, optional
        Log-likelihood weights, brms's ``y | weights(w)``: a column (expression) or one value per row.
    draws : int, optional
        Post-warm-up draws per chain (default 1000, extended when short of ``ess_target``).
    tune : int
        Warm-up iterations per chain (default 1000).
    chains : int
        Number of chains (default 4).
    seed : int, optional
        Random seed; the same seed gives identical draws. When None a seed is drawn
        and recorded in ``fit.settings.seed`` so the fit can be repeated.
    sampler : {"nutpie", "pymc"}
        nutpie's NUTS (Rust, default) or PyMC's (``pymc.sample``).
    target_accept : float, optional
        NUTS target acceptance rate (raise towards 0.95 after divergences).  Default 0.8,
        or 0.9 for a collapsed model whose sigma and the sd of a term with about one row
        per level are sampled as a total sd and a ratio (see
        :mod:`hierfit.engine.kernel.vardec`); ``fit.settings.target_accept`` says which.
    progressbar : bool
    cores : int, optional
        Chains run in parallel on this many cores.
    parametrization : {"auto", "noncentered", "centered"} or dict
        Of the group effects, per group term when a dict (``{"school": "centered"}``).
        "auto" (default) centres terms whose levels are data-rich and non-centres the
        others; ``fit.parametrization`` and the summary say what was chosen and why.
    method : {"auto", "collapsed", "full"}
        "collapsed" integrates the group effects out of Gaussian models with one grouping
        factor (NUTS then samples only fixed effects, sds, correlations and sigma, at a cost
        per step that does not grow with the rows) and draws them exactly afterwards;
        "full" samples them with NUTS; "auto" (default) collapses whenever possible.
        ``fit.method`` says which was used and why.
    kernel : {"auto", "hierfit", "pytensor", "cfunc", "jax"}
        How nutpie evaluates the log density: "hierfit" is hierfit's own compiled kernel,
        compiled once for all models (nothing to compile per formula); "pytensor" is
        PyTensor's numba kernel of the PyMC model, compiled once per model structure and
        cached on disk; "cfunc" is nutpie's wrapper of it, compiled in every process; "jax"
        compiles the PyMC model with JAX (needs ``pip install jax``; GPUs, many chains).
        "auto" (default) uses "hierfit" for every model it handles.  ``fit.kernel`` says
        which was used.
    data_name : str, optional
        Shown in the summary header.
    warn : bool
        Emit convergence problems as :class:`hierfit.ConvergenceWarning`.
    ess_target : "auto", float or None
        Bulk and tail ESS every reported parameter should reach (with R-hat <= 1.01);
        "auto" (default) is 400 when ``draws`` is not given and off when it is (an
        explicit ``draws=`` is honoured exactly).  When the run falls short without
        divergences, it is repeated with more
        draws per chain (same seed; at most 4 x ``draws``, and only when the repeated
        run's sampling time is estimated at most 60 s or twice the first run's), and the
        summary header says so ("extended to 4 x 2000 draws ... to reach ESS 400");
        ``fit.settings.draws`` is then what ran.  ``None`` turns this off.
        ``fit.converged`` and the warnings still judge the final run.

    Returns
    -------
    HierFit

    Example
    -------
    >>> import hierfit
    >>> m = hierfit.fit("normexam ~ standLRT + sex + (standLRT | school)",
    ...                 hierfit.datasets.load("exam"), seed=1)  # doctest: +SKIP
    >>> print(m)  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    reject_unknown("fit", unknown, _FIT_ARGUMENTS)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31 - 1))
    call = dict(formula=formula, data=data, family=family, priors=priors, dpars=dpars, dispformula=dispformula,
                ziformula=ziformula, link=link, offset=offset, weights=weights, draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                target_accept=target_accept, progressbar=progressbar, cores=cores, parametrization=parametrization,
                method=method, kernel=kernel, data_name=data_name, warn=warn, ess_target=ess_target)
    if isinstance(ess_target, str) and ess_target == "auto":
        ess_target = DEFAULT_ESS_TARGET if draws is None else None
    draws = 1000 if draws is None else draws
    engine_frame = None
    if is_engine_data(data):
        from hierfit.data.specify import specify_engine

        if weights is not None:
            raise ArgumentError("weights= is not available for data read through an engine (Dask, Parquet, CSV); "
                                "write the weights in the formula, 'y | weights(w) ~ ...', or fit in memory")
        if ziformula is not None or link is not None:
            family = families.get(family, link)
            dpars = split_formula(formula, dpars, None, family, ziformula)[1] if ziformula is not None else dpars
        spec, engine_data = specify_engine(formula, data, family, priors=priors, dpars=dpars,
                                           dispformula=dispformula, offset=offset, method=method,
                                           parametrization=parametrization, data_name=data_name)
        engine_frame = engine_data.lazy
    else:
        spec = specify(formula, data, family, priors=priors, dpars=dpars, dispformula=dispformula,
                       ziformula=ziformula, link=link, offset=offset, weights=weights, method=method,
                       parametrization=parametrization, data_name=data_name)
    if target_accept is None:
        target_accept = 0.8
        if spec.method.name == "collapsed" and candidates(spec.design):
            target_accept = VARDEC_TARGET_ACCEPT
    settings = SamplerSettings(sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
                               target_accept=target_accept, progressbar=progressbar, cores=cores,
                               kernel=kernel, ess_target=ess_target).validate()
    t1 = time.perf_counter()
    extra = dict(call=call, fitter=fit, engine_frame=engine_frame)
    result = _run(spec, settings, t0, t1, extra)
    new_draws = None if result.interrupted else extended_draws(
        pd.concat([result.diagnostics, result.group_diagnostics]), result.n_divergent, settings.draws, settings.tune, result.timing.get("sampling", 0.0),
        settings.ess_target)
    if new_draws is not None:
        first = result.timing
        result = _run(spec, replace(settings, draws=new_draws, requested_draws=settings.draws), t0, t1, extra)
        result.timing["first_run"] = first.get("total", float("nan"))
    if engine_frame is not None:
        from hierfit.data.predict import summarise_engine_residuals

        try:
            summarise_engine_residuals(result, engine_data.passes)
        finally:
            engine_data.release()
    if spec.method.message and warn:
        _warn(spec.method.message, HierfitWarning)
    if warn:
        for msg in result.warnings:
            _warn(msg, ConvergenceWarning)
    return result


def _run(spec, settings: SamplerSettings, t0: float, t1: float, extra: dict) -> HierFit:
    """Sample the specification once (stages 2 and 3) and build the HierFit (``extra``: its other arguments)."""
    collapsed = spec.method.name == "collapsed"
    posterior, timing, model = sample_design(spec.design, spec.priors, spec.parametrization, collapsed, settings)
    kernel_used = timing.pop("kernel", None)
    interrupted = bool(timing.pop("interrupted", False))
    timing.pop("trace", None)
    _drop_internal(posterior)
    t3 = time.perf_counter()
    if collapsed:
        posterior["posterior"] = xr.DataTree(draw_group_effects(posterior["posterior"].to_dataset(), spec.design,
                                                                settings.seed))
    timing = dict(design=t1 - t0, **timing, postprocess=time.perf_counter() - t3)
    timing["total"] = time.perf_counter() - t0
    return HierFit(spec, settings, posterior, timing, kernel=kernel_used, pymc_model=model, interrupted=interrupted,
                   **extra)


def sample_prior(formula, data: pd.DataFrame, family="gaussian", *, priors=None, dpars: dict | None = None,
                 dispformula: str | None = None, ziformula: str | None = None, link: str | None = None,
                 offset=None, weights=None, draws: int = 500,
                 seed: int | None = None, **unknown):
    """Prior predictive draws: parameters and replicated data under the priors alone.

    Returns an ``xarray.DataTree`` with groups ``prior`` and ``prior_predictive``.

    Example
    -------
    >>> import hierfit
    >>> pp = hierfit.sample_prior("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"),
    ...                           draws=100, seed=1)  # doctest: +SKIP
    >>> pp["prior_predictive"]["y"].shape  # doctest: +SKIP
    (1, 100, 4059)
    """
    reject_unknown("sample_prior", unknown, ("formula", "data", "family", "priors", "dpars", "dispformula",
                                             "offset", "draws", "seed", "weights", "ziformula", "link"))
    check_count("draws", draws)
    check_seed(seed)
    import pymc as pm

    spec = specify(formula, data, family, priors=priors, dpars=dpars, dispformula=dispformula, ziformula=ziformula,
                   link=link, offset=offset,
                   weights=weights, method="full")
    model = build_model(spec.design, spec.priors)
    with model, quiet_pymc():
        return pm.sample_prior_predictive(draws=draws, random_seed=seed)
