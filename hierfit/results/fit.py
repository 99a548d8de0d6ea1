"""The fit object: :class:`HierFit`, built once by :func:`hierfit.fit` from a specification and its draws.

It keeps the intermediate objects (``fit.spec``, ``fit.design``, ``fit.priors``,
``fit.pymc_model``) and offers lme4's accessors; predictions and checks go through
:mod:`hierfit.analysis`.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from hierfit.engine.model import build_model
from hierfit.engine.sampling import SamplerSettings
from hierfit.results.diagnostics import ESS_MIN, RHAT_MAX, convergence_messages, parameter_diagnostics
from hierfit.results.draws import stack
from hierfit.results.estimates import coef_tables, dpar_table, fixef_table, has_residual_sigma, ranef_tables, varcorr_table, vcov_table
from hierfit.plots.methods import PlotMethods
from hierfit.spec.specify import Specification
from hierfit.results.summary import Summary, random_effects_block

__all__ = ["HierFit"]

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

    def __init__(self, spec: Specification, settings: SamplerSettings, posterior, timing: dict,
                 kernel: str | None = None, pymc_model=None):
        self.spec = spec
        self.design = spec.design
        self.priors = spec.priors
        self.method = spec.method
        self.parametrization = spec.parametrization
        self.settings = settings
        self.posterior = posterior
        self.timing = dict(timing)
        self.kernel = kernel
        self._pymc_model = pymc_model
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

    @property
    def pymc_model(self):
        """The PyMC model this fit sampled (rebuilt on request), to inspect or sample yourself."""
        if self._pymc_model is None:
            self._pymc_model = self._build_pymc_model()
        return self._pymc_model

    def _build_pymc_model(self):
        if self.method.name == "collapsed":
            from hierfit.engine.collapsed import build_collapsed_model

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

    # -- predictions (all through hierfit.analysis.prepare.prepare_draws) ------------------------
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
        from hierfit.analysis.predict import predict

        return predict(self, newdata, re_form=re_form, kind=kind, ci=ci, summary=summary,
                       allow_new_levels=allow_new_levels, seed=seed, ndraws=ndraws)

    def fitted(self, re_form=None, ci: float = 0.95, summary: bool = True):
        """Expected values for the training rows (conditional on the group effects by default).

        Example
        -------
        >>> fit.fitted(re_form=hierfit.NA).head()  # doctest: +SKIP
        """
        from hierfit.analysis.predict import fitted

        return fitted(self, re_form=re_form, ci=ci, summary=summary)

    def residuals(self, type: str = "response", re_form=None, seed: int | None = None):  # noqa: A002
        """Residuals: ``"response"`` (y - fitted), ``"pearson"``, or ``"quantile"`` (DHARMa-style).

        Conditional on the group effects by default (lme4); ``re_form=hierfit.NA`` for marginal.

        Example
        -------
        >>> fit.residuals("pearson").describe()  # doctest: +SKIP
        """
        from hierfit.analysis.predict import residuals

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
        from hierfit.analysis.predict import quantile_residuals

        return quantile_residuals(self, re_form=re_form, seed=seed, nsim=nsim)

    def r2(self, kind: str = "both", method: str = "nakagawa", ci: float = 0.95, summary: bool = True):
        """Bayesian R² (marginal and conditional), as a table or its draws.

        ``method="nakagawa"`` (default): variance components, the R2m/R2c of MuMIn and
        performance; ``method="gelman"``: brms's ``bayes_R2`` (marginal = re_form=NA).

        Example
        -------
        >>> fit.r2()  # doctest: +SKIP
        """
        from hierfit.analysis.r2 import r2_table

        return r2_table(self, kind=kind, method=method, ci=ci, summary=summary)

    def loo(self):
        """PSIS-LOO cross-validation (ArviZ), with plain-language Pareto-k warnings.

        Example
        -------
        >>> fit.loo().elpd  # doctest: +SKIP
        """
        from hierfit.analysis.loo import loo

        return loo(self)

    def equation(self, priors: bool = False):
        """The model as LaTeX in the notation of equatiomatic's ``extract_eq`` (shows as math in Jupyter).

        Example
        -------
        >>> print(fit.equation(priors=True))  # doctest: +SKIP
        """
        from hierfit.results.equation import equation

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
        from hierfit.analysis.prepare import prepare_draws

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
            residuals=d.family.summary_residuals if skip else "pearson",
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
        from hierfit.results.persist import save_fit

        save_fit(self, path)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pymc_model"] = None
        state.pop("_loo_tree", None)
        state.pop("draws", None)
        state["_summaries"] = {}
        return state
