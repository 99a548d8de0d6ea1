"""The fit object: :class:`HierFit`, built once by :func:`hierfit.fit` from a specification and its draws.

It keeps the intermediate objects (``fit.spec``, ``fit.design``, ``fit.priors``,
``fit.pymc_model``) and offers lme4's accessors; predictions and checks go through
:mod:`hierfit.analysis`.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from hierfit.data.sources import is_dask_frame
from hierfit.engine.kernel.vardec import candidates
from hierfit.engine.run_length import extension_note
from hierfit.results.diagnostics import ESS_MIN, RHAT_MAX, convergence_messages, parameter_diagnostics
from hierfit.results.group_diagnostics import group_effect_diagnostics, group_effect_message
from hierfit.results.draws import stack
from hierfit.results.estimates import (coef_tables, dpar_table, fixef_table, has_residual_sigma, ranef_tables,
                                      smooth_table, varcorr_table, vcov_table)
from hierfit.analysis.methods import AnalysisMethods
from hierfit.plots.methods import PlotMethods
from hierfit.spec.smooths import SMOOTH_COEF
from hierfit.spec.specify import Specification
from hierfit.results.summary import Summary, random_effects_block

__all__ = ["HierFit"]

class HierFit(AnalysisMethods, PlotMethods):
    """A fitted Bayesian mixed model.

    Holds the posterior (``fit.posterior``, an ``xarray.DataTree``), the design and
    the priors, and offers lme4's accessors: ``summary()``, ``fixef()``, ``ranef()``,
    ``coef()``, ``VarCorr()``, ``vcov()``, ``nobs``, ``ngrps``; the questions of
    :class:`hierfit.analysis.methods.AnalysisMethods` (``predictions``, ``comparisons``,
    ``slopes``, ``emmeans``, ``hypothesis``, ``icc``) and the plots of
    :class:`hierfit.plots.methods.PlotMethods`.

    Example
    -------
    >>> import hierfit
    >>> m = hierfit.fit("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"),
    ...                 draws=200, tune=200, chains=2, seed=1, progressbar=False)  # doctest: +SKIP
    >>> m.fixef()  # doctest: +SKIP
    """

    def __init__(self, spec: Specification, settings: SamplerSettings, posterior, timing: dict,
                 kernel: str | None = None, pymc_model=None, interrupted: bool = False, call: dict | None = None,
                 fitter=None, engine_frame=None):
        self.spec = spec
        self.design = spec.design
        self.priors = spec.priors
        self.method = spec.method
        self.parametrization = spec.parametrization
        self.settings = settings
        self.tree = posterior
        self.call: dict = dict(call or {})  # the arguments of the hierfit.fit() call that made this fit
        self.fitter = fitter                 # that function (hierfit.fit), for update()
        self.interrupted = interrupted       # sampling stopped by Ctrl-C: the draws so far
        self.engine_frame = engine_frame     # the lazy training frame of a fit from engine data (never saved)
        self.timing = dict(timing)
        self.kernel = kernel
        self._pymc_model = pymc_model
        self._summaries: dict[float, Summary] = {}
        #: Results computed from the draws and kept for reuse (e.g. the log-likelihood tree
        #: that LOO needs); never saved.
        self.cache: dict = {}

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
        return self.tree["posterior"].to_dataset()

    @property
    def posterior(self):
        """The fit as an ``xarray.DataTree`` with ArviZ's standard groups, ready for ArviZ.

        Groups: ``posterior``, ``sample_stats``, ``log_likelihood`` and ``observed_data`` (one
        variable named after the response, computed on first access; not for fits from
        engine data, which keep statistics instead of rows), and
        ``posterior_predictive`` after :meth:`posterior_predictive`.  ``fit.tree`` is the same
        DataTree without computing anything.

        Example
        -------
        >>> import arviz as az
        >>> az.loo(fit.posterior)  # doctest: +SKIP
        """
        from hierfit.analysis.loo import log_likelihood_tree

        if self.design.summary is not None:
            return self.tree  # engine data: no rows here (or count patterns) for a pointwise log-likelihood
        return log_likelihood_tree(self)

    @posterior.setter
    def posterior(self, tree) -> None:
        self.tree = tree

    def sample_prior(self, draws: int = 500, seed: int | None = None):
        """Add prior draws to ``fit.posterior`` as ArviZ's ``prior`` and ``prior_predictive`` groups; return it.

        The draws come from this fit's model and priors (brms's ``sample_prior = "yes"``),
        under the posterior's variable names, so prior and posterior can be compared
        directly (``arviz_plots.plot_prior_posterior``).

        Example
        -------
        >>> tree = fit.sample_prior(draws=200, seed=1)  # doctest: +SKIP
        >>> tree["prior"]["sigma"].shape  # doctest: +SKIP
        (1, 200)
        """
        from hierfit.results.prior_groups import add_prior_groups

        return add_prior_groups(self, draws=draws, seed=seed)

    def posterior_predictive(self, seed: int | None = None):
        """Add replicated data sets (one per draw) to ``fit.posterior`` as ``posterior_predictive``; return it.

        The result is the fit's DataTree, so ArviZ's posterior predictive plots take it directly.

        Example
        -------
        >>> import arviz_plots as azp
        >>> azp.plot_ppc_dist(fit.posterior_predictive(seed=1))  # doctest: +SKIP
        """
        from hierfit.analysis.loo import posterior_predictive_tree

        return posterior_predictive_tree(self, seed=seed)

    def to_dataframe(self, group_effects: bool = False) -> pd.DataFrame:
        """Posterior draws as a flat table, one row per draw, columns named as the summary names them.

        Columns: ``chain``, ``draw``, then ``b[(Intercept)]``, ``b[standLRT]``, ...,
        ``sd((Intercept) | school)``, ``cor((Intercept),standLRT | school)``, ``sigma`` (brms's
        ``as_draws_df`` with lme4's coefficient names); with ``group_effects=True`` also one
        column per level and coefficient, ``r_school[1,(Intercept)]``.

        Example
        -------
        >>> fit.to_dataframe()["sd((Intercept) | school)"].mean()  # doctest: +SKIP
        """
        from hierfit.results.diagnostics import reported_parameters

        post = self.draws
        chains, ndraw = post.sizes["chain"], post.sizes["draw"]
        cols = {"chain": np.repeat(post["chain"].values, ndraw), "draw": np.tile(post["draw"].values, chains)}
        for label, arr in reported_parameters(post, self.design):
            cols[label] = np.asarray(arr, dtype=float).reshape(-1)
        if group_effects:
            for blk in self.design.all_blocks:
                r = stack(post, f"r_{blk.key}")  # (draws, levels, coefs)
                label = self.design.predictors[blk.dpar].label
                for j, level in enumerate(blk.levels):
                    for k, c in enumerate(blk.coefs):
                        cols[f"r_{blk.name}[{level},{label(c)}]"] = r[:, j, k]
        return pd.DataFrame(cols)

    def update(self, formula=None, data: pd.DataFrame | None = None, **kwargs) -> "HierFit":
        """Refit with changes, like brms's ``update()``: a new formula, new data or other arguments.

        Every argument not given keeps its value from the original call.  In the formula
        ``.`` stands for the old left- or right-hand side: ``". ~ . + schavg"`` adds a
        predictor.  Nothing is recompiled, so the refit costs only its sampling.

        Example
        -------
        >>> fit2 = fit.update(". ~ . + schavg", seed=2)  # doctest: +SKIP
        >>> fit3 = fit.update(draws=2000)  # doctest: +SKIP
        """
        from hierfit.errors import HierfitError
        from hierfit.spec.formula_update import update_formula

        call = dict(self.call)
        refit = self.fitter
        if not call or refit is None:
            raise HierfitError("this fit cannot refit itself (a fit loaded from a file does not keep the function "
                               "that made it); call hierfit.fit() with the changed arguments instead")
        if data is not None:
            call["data"] = data
        if call.get("data") is None:
            raise HierfitError("the data of this fit were not saved with it: pass data=")
        if formula is not None:
            call["formula"] = update_formula(call["formula"], formula) if isinstance(formula, str) else formula
        call.update(kwargs)
        return refit(**call)

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
        from hierfit.engine.model import build_model

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
            with False the draws as an xarray DataArray (chain, draw, obs).  Ordinal
            families (``cumulative``) give one column per category instead: its posterior
            mean probability (``kind="mean"``, brms's ``posterior_epred``) or the share of
            predictive draws in it (``"response"``); the draws have a ``category`` dim
            (``"mean"``) or hold the category labels (``"response"``); ``"link"`` is eta.
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
        if newdata is not None and is_dask_frame(newdata):
            from hierfit.data.predict import predict_frame

            return predict_frame(self, newdata, re_form=re_form, kind=kind, ci=ci, ndraws=ndraws, seed=seed,
                                 allow_new_levels=allow_new_levels, summary=summary)
        from hierfit.analysis.predict import predict

        return predict(self, newdata, re_form=re_form, kind=kind, ci=ci, summary=summary,
                       allow_new_levels=allow_new_levels, seed=seed, ndraws=ndraws)

    def fitted(self, re_form=None, ci: float = 0.95, summary: bool = True):
        """Expected values for the training rows (conditional on the group effects by default).

        Example
        -------
        >>> fit.fitted(re_form=hierfit.NA).head()  # doctest: +SKIP
        """
        if not self.design.rows_held:
            from hierfit.data.predict import fitted_frame

            return fitted_frame(self, re_form=re_form, ci=ci, summary=summary)
        from hierfit.analysis.predict import fitted

        return fitted(self, re_form=re_form, ci=ci, summary=summary)

    def residuals(self, type: str = "response", re_form=None, seed: int | None = None):  # noqa: A002
        """Residuals: ``"response"`` (y - fitted), ``"pearson"``, or ``"quantile"`` (DHARMa-style).

        Conditional on the group effects by default (lme4); ``re_form=hierfit.NA`` for marginal.

        Example
        -------
        >>> fit.residuals("pearson").describe()  # doctest: +SKIP
        """
        if not self.design.rows_held:
            from hierfit.data.predict import residuals_frame

            return residuals_frame(self, type=type, re_form=re_form)
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

    def check_residuals(self, re_form=None, nsim: int = 500, seed: int | None = 1):
        """DHARMa-style tests of the quantile residuals, each with a verdict saying what to fit instead.

        Uniformity (KS), dispersion, zero-inflation and outliers; returns a DataFrame with
        columns ``test``, ``statistic``, ``p_value``, ``verdict`` (see
        :func:`hierfit.analysis.checks.check_residuals`).

        Example
        -------
        >>> fit.check_residuals()  # doctest: +SKIP
        """
        from hierfit.analysis.checks import check_residuals

        return check_residuals(self, re_form=re_form, nsim=nsim, seed=seed)

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
    def group_diagnostics(self) -> pd.DataFrame:
        """R-hat and bulk/tail ESS of the least converged group effects (empty for collapsed fits).

        See :mod:`hierfit.results.group_diagnostics`; ``fit.converged`` and the warnings use it.
        """
        return group_effect_diagnostics(self.draws, self.design if self.method.name != "collapsed" else None)

    @cached_property
    def warnings(self) -> list[str]:
        """Convergence warnings (divergences, R-hat, ESS, singular fit), each saying what to do."""
        stats = self.tree["sample_stats"].to_dataset() if "sample_stats" in self.tree.children else None
        msgs = convergence_messages(self.draws, stats, self.design, self.diagnostics, self.parametrization,
                                    self.settings)
        ranef_msg = group_effect_message(self.group_diagnostics, self.settings.draws)
        if ranef_msg and not self.n_divergent:
            msgs.append(ranef_msg)
        if self.interrupted:
            msgs.insert(0, f"sampling was interrupted (Ctrl-C): this fit keeps the {self.draws.sizes['draw']} draws "
                        f"per chain made after warm-up, of the {self.settings.draws} asked for; run the fit "
                        "again to finish it (fit.update() repeats the call)")
        return msgs

    @property
    def converged(self) -> bool:
        """False when any R-hat > 1.01, any ESS < 400, there were divergences, or sampling was interrupted."""
        d = pd.concat([self.diagnostics, self.group_diagnostics])
        rhat_ok = bool((d["Rhat"].fillna(1.0) <= RHAT_MAX).all())
        ess_ok = bool(((d["Bulk_ESS"] >= ESS_MIN) & (d["Tail_ESS"] >= ESS_MIN)).all())
        return rhat_ok and ess_ok and self.n_divergent == 0 and not self.interrupted

    @property
    def n_divergent(self) -> int:
        """Number of divergent transitions after warm-up."""
        if "sample_stats" not in self.tree.children:
            return 0
        ss = self.tree["sample_stats"]
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
        if d.summary is not None and d.summary.residual_quantiles is not None:
            scaled_res = pd.Series(d.summary.residual_quantiles)  # from one pass of the data engine
        else:
            point = prepare_draws(self, point=True)
            scaled = d.family.point_residuals(d.y, point)
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
        shown = [j for j, n in enumerate(d.fixed_names) if not SMOOTH_COEF.match(n)]  # smooths: Smooth Terms
        b = stack(post, "b") if "b" in post else np.zeros((2, 0))
        b = b if len(shown) == b.shape[1] else b[:, shown]
        corr = np.corrcoef(b, rowvar=False).reshape(b.shape[1], b.shape[1]) if b.shape[1] > 1 else np.eye(b.shape[1])
        header = dict(
            family=f"{d.family.name} ( {d.family.link.name} )",
            residuals=d.family.summary_residuals if skip or d.family.thresholds else "pearson",
            residuals_note=("quartiles approximate: one pass of the data engine" if d.summary is not None and
                            d.summary.residual_quantiles is not None else None if d.aggregation is None else
                            f"of the {d.nobs} count patterns the rows were aggregated into, not of the rows"),
            formula=(d.formula.text if d.aggregation is None  # aggregated counts: the
                     else d.aggregation["formula"]),  # formula as written, not the count columns'
            data=d.data_name,
            nobs=d.nobs,
            chains=self.settings.chains,
            draws=self.settings.draws,
            tune=self.settings.tune,
            sampler=self.settings.sampler,
            seed=self.settings.seed,
            divergences=self.n_divergent,
            extended=extension_note(self.settings.chains, self.settings.requested_draws or self.settings.draws,
                                    self.settings.draws, self.settings.ess_target or 0),
            method=str(self.method) + self._decomposition_note() + self._kernel_note(),
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
            fixef_correlation=pd.DataFrame(corr, index=[d.fixed_names[j] for j in shown],
                                           columns=[d.fixed_names[j] for j in shown]),
            diagnostics=diag,
            distributional=dist,
            smooth_terms=smooth_table(post, d, ci),
            warnings=list(self.warnings),
            ci=ci,
        )
        self._summaries[ci] = s
        return s

    def _kernel_note(self) -> str:
        """Which log density ran, when it was not hierfit's compiled kernel (the PyMC model's own graph)."""
        if self.kernel in (None, "hierfit"):
            return ""
        why = "" if self.design.family.has_kernel else f": the {self.design.family.name} family has no compiled kernel"
        return f"; log density: the PyMC model ({self.kernel} kernel{why})"

    def _decomposition_note(self) -> str:
        """How the compiled collapsed sampler parametrized sigma, when it used the variance decomposition."""
        keys = candidates(self.design) if self.method.name == "collapsed" and self.kernel == "hierfit" else []
        if not keys:
            return ""
        names = [b.name for b in self.design.all_blocks if b.key in keys]
        return (f"; sigma and sd of {', '.join(names)} sampled as their total sd and ratio "
                "(about one row per level)")

    def __repr__(self) -> str:
        return self.summary().to_text()

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    # -- persistence --------------------------------------------------------------------
    def save(self, path) -> None:
        """Save the fit to one file: data only (JSON description + numeric arrays), never Python objects.

        The file holds the formula, family, priors, the data columns the model uses (with
        their level orders and row index), method, parametrization, sampler settings and
        the draws; :func:`hierfit.load` rebuilds the fit from it. The write is atomic.

        Example
        -------
        >>> fit.save("exam_rs.hfit"); again = hierfit.load("exam_rs.hfit")  # doctest: +SKIP
        """
        from hierfit.results.fit_record import fit_to_record
        from hierfit.results.persist import FORMAT, FORMAT_VERSION, write_fit_file
        from hierfit.version import __version__

        model, arrays = fit_to_record(self)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "hierfit_version": __version__,
                "formula": self.formula, "nobs": self.nobs, "model": model}
        write_fit_file(path, meta, arrays)

    @classmethod
    def load(cls, path) -> "HierFit":
        """Load a fit written by :meth:`save` (also ``hierfit.load``); nothing in the file is executed.

        Raises :class:`hierfit.PersistenceError` for missing, damaged, foreign or oversized
        files, old pickle-format files and files from a newer hierfit.

        Example
        -------
        >>> fit = hierfit.load("exam_rs.hfit")  # doctest: +SKIP
        """
        from hierfit.results.fit_record import record_to_parts
        from hierfit.results.persist import read_fit_file

        meta, arrays = read_fit_file(path)
        return cls(**record_to_parts(meta, arrays, path))
