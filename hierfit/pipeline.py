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

import numpy as np
import pandas as pd
import xarray as xr

from hierfit.engine.group_draws import draw_group_effects
from hierfit.engine.model import build_model
from hierfit.engine.sampling import INTERNAL_PREFIXES, SamplerSettings, sample_design
from hierfit.errors import ConvergenceWarning, HierfitWarning
from hierfit.errors import warn as _warn
from hierfit.results.fit import HierFit
from hierfit.spec.specify import specify

__all__ = ["fit", "sample_prior"]


def _drop_internal(tree) -> None:
    """Remove sampler-internal variables (z_, gamma_, L_) from the posterior: r_ and cor_ carry them."""
    post = tree["posterior"].to_dataset()
    internal = [v for v in post.data_vars if str(v).startswith(INTERNAL_PREFIXES)]
    if internal:
        tree["posterior"] = xr.DataTree(post.drop_vars(internal))


def fit(formula, data: pd.DataFrame, family="gaussian", *, priors=None, dpars: dict | None = None,
        dispformula: str | None = None, ziformula: str | None = None, link: str | None = None, offset=None, draws: int = 1000, tune: int = 1000, chains: int = 4,
        seed: int | None = None, sampler: str = "nutpie", target_accept: float = 0.8, progressbar: bool = True,
        cores: int | None = None, parametrization="auto", method: str = "auto", kernel: str = "auto",
        data_name: str | None = None, warn: bool = True) -> HierFit:
    """Fit a Bayesian mixed model written in lme4/brms syntax.

    Parameters
    ----------
    formula : str or hierfit.bf(...)
        e.g. ``"normexam ~ standLRT + sex + (standLRT | school)"``; binomial responses as
        ``cbind(successes, failures) ~ ...`` or ``successes | trials(n) ~ ...``; offsets as
        ``offset(log(BroodSize))``; ``hierfit.bf(formula, sigma="~ x")`` for distributional models.
    data : pandas.DataFrame
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
    draws : int
        Post-warm-up draws per chain (default 1000).
    tune : int
        Warm-up iterations per chain (default 1000).
    chains : int
        Number of chains (default 4).
    seed : int, optional
        Random seed; the same seed gives identical draws. When None a seed is drawn
        and recorded in ``fit.settings.seed`` so the fit can be repeated.
    sampler : {"nutpie", "pymc"}
        nutpie's NUTS (Rust, default) or PyMC's (``pymc.sample``).
    target_accept : float
        NUTS target acceptance rate (raise towards 0.95 after divergences).
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
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31 - 1))
    settings = SamplerSettings(sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
                               target_accept=target_accept, progressbar=progressbar, cores=cores,
                               kernel=kernel).validate()
    spec = specify(formula, data, family, priors=priors, dpars=dpars, dispformula=dispformula,
                   ziformula=ziformula, link=link, offset=offset, method=method, parametrization=parametrization, data_name=data_name)
    t1 = time.perf_counter()
    collapsed = spec.method.name == "collapsed"
    posterior, timing, model = sample_design(spec.design, spec.priors, spec.parametrization, collapsed, settings)
    kernel_used = timing.pop("kernel", None)
    timing.pop("trace", None)
    _drop_internal(posterior)
    t3 = time.perf_counter()
    if collapsed:
        posterior["posterior"] = xr.DataTree(draw_group_effects(posterior["posterior"].to_dataset(), spec.design,
                                                                seed))
    timing = dict(design=t1 - t0, **timing, postprocess=time.perf_counter() - t3)
    timing["total"] = time.perf_counter() - t0
    result = HierFit(spec, settings, posterior, timing, kernel=kernel_used, pymc_model=model)
    if spec.method.message and warn:
        _warn(spec.method.message, HierfitWarning)
    if warn:
        for msg in result.warnings:
            _warn(msg, ConvergenceWarning)
    return result


def sample_prior(formula, data: pd.DataFrame, family="gaussian", *, priors=None, dpars: dict | None = None,
                 dispformula: str | None = None, ziformula: str | None = None, link: str | None = None, offset=None, draws: int = 500, seed: int | None = None):
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
    import pymc as pm

    spec = specify(formula, data, family, priors=priors, dpars=dpars, dispformula=dispformula,
                   ziformula=ziformula, link=link, offset=offset, method="full")
    model = build_model(spec.design, spec.priors)
    with model:
        return pm.sample_prior_predictive(draws=draws, random_seed=seed)
