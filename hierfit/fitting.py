"""Stage 5: the fit object, and :func:`fit`, which runs the whole pipeline.

``fit()`` = parse_formula -> build_design -> resolve_priors -> sample_design (hierfit's
compiled-kernel spec, or the PyMC model from build_model, sampled by NUTS) ->
:class:`HierFit`.  Each stage can be run on its own; the fit keeps
the intermediate objects (``fit.design``, ``fit.priors``, ``fit.pymc_model``).
"""

from __future__ import annotations

import time
from functools import cached_property

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .design import Design, build_design
from .diagnostics import ESS_MIN, RHAT_MAX, convergence_messages, parameter_diagnostics
from .draws import stack
from .errors import ConvergenceWarning, HierfitError, HierfitWarning
from .errors import warn as _warn
from .estimates import coef_tables, dpar_table, fixef_table, has_residual_sigma, ranef_tables, varcorr_table, vcov_table
from .formula import split_formula
from .model import build_model
from .parametrization import Parametrization, choose_parametrization
from .plots.methods import PlotMethods
from .priors import PriorSet, resolve_priors
from .sampling import SamplerSettings, sample_design
from .summary import Summary, random_effects_block

__all__ = ["fit", "HierFit", "Method"]

METHODS = ("auto", "collapsed", "full")


@dataclass(frozen=True)
class Method:
    """How the group effects were handled: ``name`` ("collapsed" or "full") and ``reason``."""

    name: str
    reason: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def _drop_internal(tree) -> None:
    """Remove sampler-internal variables (z_, gamma_, L_) from the posterior: r_ and cor_ carry them."""
    from .sampling import INTERNAL_PREFIXES

    post = tree["posterior"].to_dataset()
    internal = [v for v in post.data_vars if str(v).startswith(INTERNAL_PREFIXES)]
    if internal:
        tree["posterior"] = xr.DataTree(post.drop_vars(internal))


def _choose_method(design, method: str, parametrization) -> Method:
    from .collapsed import collapsible

    if method not in METHODS:
        raise HierfitError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    ok, why = collapsible(design)
    if method == "full":
        return Method("full", "group effects sampled by NUTS (method='full')")
    if method == "collapsed" and not ok:
        return Method("full", f"not collapsible: {why}", f"method='collapsed' is not available: {why}; "
                      "sampling the group effects with NUTS instead")
    if not ok:
        return Method("full", f"group effects sampled by NUTS; not collapsible: {why}")
    if method == "auto" and parametrization != "auto":
        return Method("full", f"group effects sampled by NUTS (parametrization={parametrization!r} was asked for)")
    return Method("collapsed", f"group effects integrated out exactly: {why}")


class HierFit(PlotMethods):
    """A fitted Bayesian mixed model.

    Holds the posterior (``fit.posterior``, an ``xarray.DataTree``), the design and
    the priors, and offers lme4's accessors: ``summary()``, ``fixef()``, ``ranef()``,
    ``coef()``, ``VarCorr()``, ``vcov()``, ``nobs``, ``ngrps``.

    Example
    -------
    >>> import hierfit
    >>> m = hierfit.fit("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"),
    ...                 draws=200, tune=200, chains=2, seed=1, progressbar=False)  # doctest: +SKIP
    >>> m.fixef()  # doctest: +SKIP
    """

    def __init__(self, design: Design, priors: PriorSet, settings: SamplerSettings, posterior,
                 timing: dict, parametrization: dict):
        self.design = design
        self.priors = priors
        self.settings = settings
        self.posterior = posterior
        self.timing = dict(timing)
        self.parametrization = parametrization
        self.method = Method("full", "group effects sampled by NUTS")
        self.kernel = None
        self._summaries: dict[float, Summary] = {}

    # -- basic facts --------------------------------------------------------------------
    @property
    def formula(self) -> str:
        """The formula as written."""
        return self.design.formula.text

    @property
    def family(self):
        """The response family (``fit.family.name``, ``fit.family.link.name``)."""
        return self.design.family

    @property
    def nobs(self) -> int:
        """Number of observations used (after dropping rows with missing values)."""
        return self.design.nobs

    @property
    def ngrps(self) -> dict[str, int]:
        """Number of levels per grouping factor, e.g. ``{'student:school': 4055, 'school': 65}``."""
        return self.design.ngrps

    @cached_property
    def draws(self):
        """The ``posterior`` group of the DataTree (an xarray Dataset)."""
        return self.posterior["posterior"].to_dataset()

    @cached_property
    def pymc_model(self):
        """The PyMC model this fit sampled (rebuilt on request), to inspect or sample yourself."""
        if self.method.name == "collapsed":
            from .collapsed import build_collapsed_model

            return build_collapsed_model(self.design, self.priors)
        return build_model(self.design, self.priors, self.parametrization)

    # -- lme4 accessors -----------------------------------------------------------------
    def fixef(self, ci: float = 0.95) -> pd.DataFrame:
        """Fixed effects: Estimate, Est.Error and the ``ci`` interval, indexed by lme4's names.

        Example
        -------
        >>> fit.fixef().loc["standLRT", "Estimate"]  # doctest: +SKIP
        0.553
        """
        return fixef_table(self.draws, self.design, ci)

    def ranef(self, ci: float = 0.95) -> dict[str, pd.DataFrame]:
        """Group effects per grouping factor: level x (coef, statistic), like ``ranef(condVar=TRUE)``.

        Example
        -------
        >>> re = fit.ranef()["school"]  # doctest: +SKIP
        >>> re.xs("Estimate", axis=1, level=1).head()  # lme4's ranef(m)$school  # doctest: +SKIP
        """
        return ranef_tables(self.draws, self.design, ci)

    def coef(self, ci: float = 0.95) -> dict[str, pd.DataFrame]:
        """Fixed + group effects per level (lme4's ``coef()``), with posterior intervals.

        Example
        -------
        >>> fit.coef()["school"].xs("Estimate", axis=1, level=1).head()  # doctest: +SKIP
        """
        return coef_tables(self.draws, self.design, ci)

    def VarCorr(self, ci: float = 0.95) -> pd.DataFrame:  # noqa: N802 - lme4's name
        """Variance components in lme4's ``as.data.frame(VarCorr(m))`` layout, plus sdcor intervals.

        Example
        -------
        >>> fit.VarCorr()[["grp", "var1", "var2", "vcov", "sdcor"]]  # doctest: +SKIP
        """
        return varcorr_table(self.draws, self.design, ci)

    def vcov(self) -> pd.DataFrame:
        """Posterior covariance matrix of the fixed effects.

        Example
        -------
        >>> fit.vcov().loc["standLRT", "standLRT"] ** 0.5  # doctest: +SKIP
        """
        return vcov_table(self.draws, self.design)

    # -- predictions (all through hierfit.prepare.prepare_draws) ------------------------
    def predict(self, newdata: pd.DataFrame | None = None, re_form=None, kind: str = "mean", ci: float = 0.95,
                summary: bool = True, allow_new_levels: bool = False, seed: int | None = None,
                ndraws: int | None = None):
        """Posterior predictions for new (or the training) data.

        Parameters
        ----------
        newdata : DataFrame, optional
            Re-coded with the training spec (``scale()`` keeps the training mean/sd).
        re_form : None, hierfit.NA, "~0" or "~(1|school)"
            Which group effects to include: all (lme4's default), none, or the named terms.
        kind : {"link", "mean", "response"}
            Linear predictor, expected value, or posterior predictive draws with noise.
        ci : float
            Interval probability.
        summary : bool
            A DataFrame (Estimate, Est.Error, interval; one row per newdata row), or
            with False the draws as an xarray DataArray (chain, draw, obs).
        allow_new_levels : bool
            Unseen group levels get effects drawn from the fitted group-level
            distribution (wider intervals); otherwise they raise naming the levels.
        seed : int, optional
        ndraws : int, optional
            Use this many evenly spaced posterior draws.

        Example
        -------
        >>> new = pd.DataFrame({"standLRT": [0.0, 1.0], "sex": ["F", "F"], "school": [1, 1]})  # doctest: +SKIP
        >>> fit.predict(new, re_form=hierfit.NA)  # marginal: the grand mean  # doctest: +SKIP
        """
        from .predict import predict

        return predict(self, newdata, re_form=re_form, kind=kind, ci=ci, summary=summary,
                       allow_new_levels=allow_new_levels, seed=seed, ndraws=ndraws)

    def fitted(self, re_form=None, ci: float = 0.95, summary: bool = True):
        """Expected values for the training rows (conditional on the group effects by default).

        Example
        -------
        >>> fit.fitted(re_form=hierfit.NA).head()  # doctest: +SKIP
        """
        from .predict import fitted

        return fitted(self, re_form=re_form, ci=ci, summary=summary)

    def residuals(self, type: str = "response", re_form=None, seed: int | None = None):  # noqa: A002
        """Residuals: ``"response"`` (y - fitted), ``"pearson"``, or ``"quantile"`` (DHARMa-style).

        Conditional on the group effects by default (lme4); ``re_form=hierfit.NA`` for marginal.

        Example
        -------
        >>> fit.residuals("pearson").describe()  # doctest: +SKIP
        """
        from .predict import residuals

        return residuals(self, type=type, re_form=re_form, seed=seed)

    def quantile_residuals(self, re_form=None, seed: int | None = None, nsim: int | None = 1000):
        """DHARMa's simulated scaled residuals with a KS uniformity test.

        ``re_form=None`` simulates with the fitted group effects (conditional);
        ``re_form=hierfit.NA`` re-simulates them from the group-level distribution
        (DHARMa's default, unconditional).

        Example
        -------
        >>> qr = fit.quantile_residuals(seed=1); qr.ks_pvalue  # doctest: +SKIP
        """
        from .predict import quantile_residuals

        return quantile_residuals(self, re_form=re_form, seed=seed, nsim=nsim)

    def r2(self, kind: str = "both", method: str = "nakagawa", ci: float = 0.95, summary: bool = True):
        """Bayesian R² (marginal and conditional), as a table or its draws.

        ``method="nakagawa"`` (default): variance components, the R2m/R2c of MuMIn and
        performance; ``method="gelman"``: brms's ``bayes_R2`` (marginal = re_form=NA).

        Example
        -------
        >>> fit.r2()  # doctest: +SKIP
        """
        from .r2 import r2_table

        return r2_table(self, kind=kind, method=method, ci=ci, summary=summary)

    def loo(self):
        """PSIS-LOO cross-validation (ArviZ), with plain-language Pareto-k warnings.

        Example
        -------
        >>> fit.loo().elpd  # doctest: +SKIP
        """
        from .loo import loo

        return loo(self)

    def equation(self, priors: bool = False):
        """The model as LaTeX in the notation of equatiomatic's ``extract_eq`` (shows as math in Jupyter).

        Example
        -------
        >>> print(fit.equation(priors=True))  # doctest: +SKIP
        """
        from .equation import equation

        return equation(self, priors=priors)

    # -- diagnostics --------------------------------------------------------------------
    @cached_property
    def diagnostics(self) -> pd.DataFrame:
        """R-hat and bulk/tail ESS of every reported parameter."""
        return parameter_diagnostics(self.draws, self.design)

    @cached_property
    def warnings(self) -> list[str]:
        """Convergence warnings (divergences, R-hat, ESS, singular fit), each saying what to do."""
        stats = self.posterior["sample_stats"].to_dataset() if "sample_stats" in self.posterior.children else None
        return convergence_messages(self.draws, stats, self.design, self.diagnostics, self.parametrization)

    @property
    def converged(self) -> bool:
        """False when any R-hat > 1.01, any ESS < 400, or there were divergences."""
        d = self.diagnostics
        rhat_ok = bool((d["Rhat"].fillna(1.0) <= RHAT_MAX).all())
        ess_ok = bool(((d["Bulk_ESS"] >= ESS_MIN) & (d["Tail_ESS"] >= ESS_MIN)).all())
        return rhat_ok and ess_ok and self.n_divergent == 0

    @property
    def n_divergent(self) -> int:
        """Number of divergent transitions after warm-up."""
        if "sample_stats" not in self.posterior.children:
            return 0
        ss = self.posterior["sample_stats"]
        return int(np.asarray(ss["diverging"].values).sum()) if "diverging" in ss else 0

    # -- summary ------------------------------------------------------------------------
    def summary(self, ci: float = 0.95) -> Summary:
        """The lme4-style summary (print it, or use its DataFrames).

        Example
        -------
        >>> print(fit.summary())  # doctest: +SKIP
        """
        if ci in self._summaries:
            return self._summaries[ci]
        from .prepare import prepare_draws

        d = self.design
        post = self.draws
        point = prepare_draws(self, point=True)
        scaled = (d.y - point.expected()[0]) / np.sqrt(point.variance()[0])
        q = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1])
        scaled_res = pd.Series(q, index=["Min", "1Q", "Median", "3Q", "Max"])
        vc = varcorr_table(post, d, ci)
        fe = fixef_table(post, d, ci, dpars=False)
        diag = self.diagnostics
        for col in ("Rhat", "Bulk_ESS", "Tail_ESS"):
            fe[col] = [diag.loc[f"b[{n}]", col] for n in fe.index]
        skip = ("sigma",) if has_residual_sigma(d) else ()
        dist = pd.concat([dpar_table(post, d, ci, skip=skip), fixef_table(post, d, ci).iloc[len(fe):]])
        for col in ("Rhat", "Bulk_ESS", "Tail_ESS"):
            dist[col] = [diag.loc[n if n in diag.index else f"b[{n}]", col] for n in dist.index]
        b = stack(post, "b") if "b" in post else np.zeros((2, 0))
        corr = np.corrcoef(b, rowvar=False).reshape(b.shape[1], b.shape[1]) if b.shape[1] > 1 else np.eye(b.shape[1])
        header = dict(
            family=f"{d.family.name} ( {d.family.link.name} )",
            residuals="scaled" if d.family.name == "gaussian" and skip else "pearson",
            formula=d.formula.text,
            data=d.data_name,
            nobs=d.nobs,
            chains=self.settings.chains,
            draws=self.settings.draws,
            tune=self.settings.tune,
            sampler=self.settings.sampler,
            seed=self.settings.seed,
            divergences=self.n_divergent,
            method=str(self.method),
            parametrization=[f"{self.parametrization.names.get(k, k)}: {v}"
                             + (f" ({self.parametrization.reasons[k]})" if k in self.parametrization.reasons else "")
                             for k, v in self.parametrization.items()],
            dropped=(f"{d.n_dropped} row(s) with missing values dropped ("
                     + ", ".join(f"{c}: {n}" for c, n in d.dropped_by_column.items()) + ")") if d.n_dropped else None,
        )
        s = Summary(
            header=header,
            scaled_residuals=scaled_res,
            random_effects=random_effects_block(vc, d, ci),
            varcorr=vc,
            ngrps=d.ngrps,
            fixed_effects=fe,
            fixef_correlation=pd.DataFrame(corr, index=d.fixed_names, columns=d.fixed_names),
            diagnostics=diag,
            distributional=dist,
            warnings=list(self.warnings),
            ci=ci,
        )
        self._summaries[ci] = s
        return s

    def __repr__(self) -> str:
        return self.summary().to_text()

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    # -- persistence --------------------------------------------------------------------
    def save(self, path) -> None:
        """Save the fit (posterior, formula, design spec, priors) to one file.

        Example
        -------
        >>> fit.save("exam_rs.hfit"); again = hierfit.load("exam_rs.hfit")  # doctest: +SKIP
        """
        from .persist import save_fit

        save_fit(self, path)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("pymc_model", None)
        state.pop("_loo_tree", None)
        state.pop("draws", None)
        state["_summaries"] = {}
        return state


def fit(formula, data: pd.DataFrame, family="gaussian", *, priors=None, dpars: dict | None = None,
        dispformula: str | None = None, offset=None, draws: int = 1000, tune: int = 1000, chains: int = 4,
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
    family : str or hierfit.families.Family
        ``"gaussian"``, ``"student"``, ``"poisson"``, ``"negbinomial"``, ``"binomial"``,
        ``"bernoulli"``, ``"gamma"``, or e.g. ``hierfit.families.binomial(link="probit")``.
    priors : list of :func:`hierfit.prior` or dict keyed by class, optional
        e.g. ``{"sd": {"group": "school", "dist": "exponential(2)"}}``; see :mod:`hierfit.priors`.
    dpars : dict, optional
        Formulas for distributional parameters, ``{"sigma": "~ sOccasion"}`` (log link).
    dispformula : str, optional
        glmmTMB's spelling for the dispersion formula (sigma for gaussian, shape for
        negbinomial/gamma).  hierfit models log(sigma); glmmTMB's gaussian coefficients
        are for log(sigma^2), twice as large.
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
    from . import families

    t0 = time.perf_counter()
    fam = families.get(family)
    formula, dpar_formulas = split_formula(formula, dpars, dispformula, fam)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31 - 1))
    settings = SamplerSettings(sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
                               target_accept=target_accept, progressbar=progressbar, cores=cores,
                               kernel=kernel).validate()
    design = build_design(formula, data, data_name=data_name, family=fam, dpars=dpar_formulas, offset=offset)
    prior_set = resolve_priors(design, priors)
    how = _choose_method(design, method, parametrization)
    par = choose_parametrization(design, parametrization)
    t1 = time.perf_counter()
    if how.name == "collapsed":
        par = Parametrization({b.key: "collapsed" for b in design.all_blocks},
                              {b.key: "integrated out; drawn exactly per posterior draw" for b in design.all_blocks},
                              par.names)
    posterior, timing, model = sample_design(design, prior_set, par, how.name == "collapsed", settings)
    kernel_used = timing.pop("kernel", None)
    timing.pop("trace", None)
    _drop_internal(posterior)
    if how.name == "collapsed":
        from .collapsed import draw_group_effects

        posterior["posterior"] = xr.DataTree(draw_group_effects(posterior["posterior"].to_dataset(), design, seed))
    t3 = time.perf_counter()
    result = HierFit(design, prior_set, settings, posterior, dict(design=t1 - t0, **timing), par)
    result.method = how
    result.kernel = kernel_used
    if model is not None:
        result.__dict__["pymc_model"] = model
    if how.message and warn:
        _warn(how.message, HierfitWarning)
    if warn:
        for msg in result.warnings:
            _warn(msg, ConvergenceWarning)
    result.timing["postprocess"] = time.perf_counter() - t3
    result.timing["total"] = time.perf_counter() - t0
    return result


def sample_prior(formula, data: pd.DataFrame, family="gaussian", *, priors=None, dpars: dict | None = None,
                 dispformula: str | None = None, offset=None, draws: int = 500, seed: int | None = None):
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

    from . import families

    fam = families.get(family)
    formula, dpar_formulas = split_formula(formula, dpars, dispformula, fam)
    design = build_design(formula, data, family=fam, dpars=dpar_formulas, offset=offset)
    model = build_model(design, resolve_priors(design, priors))
    with model:
        return pm.sample_prior_predictive(draws=draws, random_seed=seed)
