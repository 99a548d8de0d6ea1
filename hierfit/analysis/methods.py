"""``AnalysisMethods``: the posterior-analysis questions as methods of a fitted model.

Each method hands the fit to a function of :mod:`hierfit.analysis` (``marginal``,
``emmeans``, ``hypothesis``, ``icc``).  Every table has one row per quantity with
Estimate, Est.Error and the ``ci`` interval (``l-95% CI``, ``u-95% CI``), computed
from the posterior draws; ``summary=False`` returns the draws instead (one column per
table row, one row per draw).

``re_form`` everywhere: ``None`` includes the fitted group effects (rows need the
grouping columns), ``hierfit.NA`` sets them to zero (the typical group), and
``"marginal"`` averages over the fitted group-effect distribution (population-averaged;
the same as ``hierfit.NA`` for identity links).
"""

from __future__ import annotations

from hierfit.analysis import marginal
from hierfit.analysis.emmeans import emmeans as emmeans_table
from hierfit.analysis.hypothesis import hypothesis as hypothesis_table
from hierfit.analysis.icc import icc as icc_table
from hierfit.analysis.prepare import NA

__all__ = ["AnalysisMethods"]


class AnalysisMethods:
    """Mixin with the analysis methods of :class:`hierfit.HierFit`.

    Example
    -------
    >>> fit.avg_comparisons("sex")  # doctest: +SKIP
    """

    def predictions(self, newdata=None, by=None, re_form=None, kind="mean", allow_new_levels=False, ci=0.95,
                    summary=True, seed=None, ndraws=None, nsim=200):
        """Expected response for each row of ``newdata`` (marginaleffects' ``predictions``).

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict (e.g. :func:`hierfit.datagrid`); default the fitted rows.
        by : str or list, optional
            Average within groups of these columns instead (as ``avg_predictions``).
        re_form : None, hierfit.NA, "~(1|school)" or "marginal"
        kind : {"mean", "link", "response"}
        allow_new_levels : bool
        ci : float
        summary : bool
        seed, ndraws, nsim : optional
            Random seed, number of posterior draws used, number of simulated groups
            per draw for ``re_form="marginal"``.

        Example
        -------
        >>> fit.predictions(hierfit.datagrid(fit, sex=["F", "M"]), re_form=hierfit.NA)  # doctest: +SKIP
        """
        return marginal.predictions(self, newdata, by=by, re_form=re_form, kind=kind,
                                    allow_new_levels=allow_new_levels, ci=ci, summary=summary, seed=seed,
                                    ndraws=ndraws, nsim=nsim)

    def avg_predictions(self, newdata=None, by=None, re_form=None, kind="mean", allow_new_levels=False, ci=0.95,
                        summary=True, seed=None, ndraws=None, nsim=200):
        """Predictions averaged over the rows of ``newdata`` (per ``by`` group), per draw.

        Same parameters as :meth:`predictions`.

        Example
        -------
        >>> fit.avg_predictions(by="sex")  # doctest: +SKIP
        """
        return marginal.avg_predictions(self, newdata, by=by, re_form=re_form, kind=kind,
                                        allow_new_levels=allow_new_levels, ci=ci, summary=summary, seed=seed,
                                        ndraws=ndraws, nsim=nsim)

    def comparisons(self, variables, newdata=None, comparison="difference", by=None, re_form=None, kind="mean",
                    allow_new_levels=False, ci=0.95, summary=True, seed=None, ndraws=None, nsim=200, rope=None):
        """Counterfactual comparisons per row (marginaleffects' ``comparisons``).

        Each row is predicted twice, with ``variable`` at a low and a high value and
        everything else as it is; the table compares the two predictions per draw.

        Parameters
        ----------
        variables : str, list or dict
            A factor compares every level with the reference level; a numeric
            variable adds 1.  A dict sets the change: ``{"standLRT": 10}``,
            ``{"standLRT": "sd" | "iqr" | "minmax" | (lo, hi)}``,
            ``{"sex": ["F", "M"]}`` (M - F), ``{"sex": "pairwise" | "sequential"}``.
        comparison : {"difference", "ratio", "lnratio", "lnor"} or "<that>avg"
            The ``...avg`` forms compare row averages (avg_comparisons only).
        rope : (low, high), optional
            Adds the share of draws inside this region of practical equivalence.
        Other parameters as :meth:`predictions`.

        Example
        -------
        >>> fit.comparisons("sex", newdata=hierfit.datagrid(fit, standLRT=[-1, 1]))  # doctest: +SKIP
        """
        return marginal.comparisons(self, variables, newdata, comparison=comparison, by=by, re_form=re_form,
                                    kind=kind, allow_new_levels=allow_new_levels, ci=ci, summary=summary, seed=seed,
                                    ndraws=ndraws, nsim=nsim, rope=rope)

    def avg_comparisons(self, variables, newdata=None, comparison="difference", by=None, re_form=None, kind="mean",
                        allow_new_levels=False, ci=0.95, summary=True, seed=None, ndraws=None, nsim=200, rope=None):
        """Comparisons averaged over rows (per ``by`` group): the average effect of a change.

        Same parameters as :meth:`comparisons`.  For a Gaussian model with
        identity link, ``avg_comparisons("sex")`` is the ``sexM`` coefficient.

        Example
        -------
        >>> fit.avg_comparisons("sex")  # the gender gap averaged over students  # doctest: +SKIP
        """
        return marginal.avg_comparisons(self, variables, newdata, by=by, comparison=comparison, re_form=re_form,
                                        kind=kind, allow_new_levels=allow_new_levels, ci=ci, summary=summary,
                                        seed=seed, ndraws=ndraws, nsim=nsim, rope=rope)

    def slopes(self, variables, newdata=None, slope="dydx", by=None, re_form=None, kind="mean",
               allow_new_levels=False, ci=0.95, summary=True, seed=None, ndraws=None, nsim=200, eps=None, rope=None):
        """Partial derivatives per row by a centred finite difference (marginaleffects' ``slopes``).

        Parameters
        ----------
        variables : str or list of numeric predictors
        slope : {"dydx", "eyex", "eydx", "dyex"}
            Derivative, elasticity, semi-elasticities.
        eps : float, optional
            Step (default 1e-4 times the predictor's range).
        Other parameters as :meth:`comparisons`.

        Example
        -------
        >>> fit.slopes("standLRT", newdata=hierfit.datagrid(fit, sex=["F", "M"]))  # doctest: +SKIP
        """
        return marginal.slopes(self, variables, newdata, slope=slope, by=by, re_form=re_form, kind=kind,
                               allow_new_levels=allow_new_levels, ci=ci, summary=summary, seed=seed, ndraws=ndraws,
                               nsim=nsim, eps=eps, rope=rope)

    def avg_slopes(self, variables, newdata=None, slope="dydx", by=None, re_form=None, kind="mean",
                   allow_new_levels=False, ci=0.95, summary=True, seed=None, ndraws=None, nsim=200, eps=None,
                   rope=None):
        """Slopes averaged over rows (per ``by`` group); same parameters as :meth:`slopes`.

        Example
        -------
        >>> fit.avg_slopes("standLRT", by="sex")  # doctest: +SKIP
        """
        return marginal.avg_slopes(self, variables, newdata, by=by, slope=slope, re_form=re_form, kind=kind,
                                   allow_new_levels=allow_new_levels, ci=ci, summary=summary, seed=seed,
                                   ndraws=ndraws, nsim=nsim, eps=eps, rope=rope)

    def emmeans(self, specs, by=None, re_form=NA, kind="mean", contrasts=None, at=None, newdata=None, ci=0.95,
                summary=True, seed=None, ndraws=None, nsim=200, rope=None):
        """Estimated marginal means on the reference grid, or their contrasts (R's emmeans).

        Parameters
        ----------
        specs : str or list
            Factor(s) whose levels get a marginal mean.
        by : str or list, optional
            Factor(s) to condition on (one set of means or contrasts per level).
        re_form : default hierfit.NA (the typical group), or "marginal"
        kind : {"mean", "link"}
            Average on the response scale (emmeans' ``regrid = "response"``) or the link scale.
        contrasts : {"pairwise", "revpairwise", "trt.vs.ctrl", "consec"}, optional
        at : dict, optional
            Values for numeric predictors (default their mean), e.g. ``{"standLRT": [0, 1]}``.

        Example
        -------
        >>> fit.emmeans("sex", contrasts="pairwise")  # doctest: +SKIP
        """
        return emmeans_table(self, specs, by=by, re_form=re_form, kind=kind, contrasts=contrasts, at=at,
                                    newdata=newdata, ci=ci, summary=summary, seed=seed, ndraws=ndraws, nsim=nsim,
                                    rope=rope)

    def hypothesis(self, hypotheses, alpha=0.05, group=None, scope="coef", summary=True):
        """brms's ``hypothesis()``: one- or two-sided tests of parameter expressions.

        Parameters
        ----------
        hypotheses : str or list of str
            ``"sexM < 0"``, ``"standLRT + sexM = 0.4"``, ``"sd(Intercept | school) > 0.2"``;
            parsed (numbers, parameter names, + - * / ^, one of <, >, =), never run as Python.
        alpha : float
            1 - alpha intervals (one-sided for < and >, as brms).
        group : str, optional
            Test per level of this grouping factor (``scope="coef"``: fixed + group
            effect; ``"ranef"``: the group effect).
        summary : bool

        Example
        -------
        >>> fit.hypothesis(["sexM < 0", "sd(Intercept | school) > 0.2"])  # doctest: +SKIP
        """
        return hypothesis_table(self, hypotheses, alpha=alpha, group=group, scope=scope, summary=summary)

    def icc(self, by_group=False, ci=0.95, summary=True):
        """Adjusted and conditional intraclass correlation (``performance::icc``), per draw.

        Example
        -------
        >>> fit.icc()  # doctest: +SKIP
        """
        return icc_table(self, by_group=by_group, ci=ci, summary=summary)
