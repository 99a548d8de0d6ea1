"""``PlotMethods``: the plot functions as methods of a fitted model (``fit.plot_shrinkage()``).

Each method passes the fit to the function of the same name in :mod:`hierfit.plots`
and has that function's documentation.  matplotlib is imported only when a plot is
made.
"""

from __future__ import annotations

from hierfit.analysis.prepare import NA
from hierfit.plots.checks import (
    plot_quantile_residuals,
    plot_ranef_qq,
    plot_ranef_vs,
    plot_residuals,
    plot_residuals_by_group,
)
from hierfit.plots.conditional import plot_comparisons, plot_predictions, plot_slopes
from hierfit.plots.check_model import check_model
from hierfit.plots.ppc import pp_check
from hierfit.plots.display import shown_once
from hierfit.plots.effects import plot_effects, plot_group_lines
from hierfit.plots.priors import plot_prior_posterior
from hierfit.plots.sampler import plot_rank, plot_trace
from hierfit.plots.shrinkage import explore_shrinkage, plot_shrinkage, plot_shrinkage_path

__all__ = ["PlotMethods"]


def _doc(func):
    """Give the method the plot function's docstring (its examples already use ``fit.<method>``); figures show once."""

    def deco(method):
        def plot(self, *args, **kwargs):
            return shown_once(method(self, *args, **kwargs))

        plot.__name__, plot.__qualname__ = method.__name__, method.__qualname__
        plot.__doc__ = func.__doc__
        plot.__wrapped__ = method
        return plot

    return deco


class PlotMethods:
    """Mixin with the plot methods of :class:`hierfit.HierFit`; every method returns a matplotlib Figure.

    Example
    -------
    >>> fig = fit.plot_shrinkage(term="school")  # doctest: +SKIP
    >>> fig.savefig("shrinkage.png", dpi=100)  # doctest: +SKIP
    """

    # -- shrinkage ------------------------------------------------------------------------------
    @_doc(plot_shrinkage)
    def plot_shrinkage(self, term=None, coef=None, *, view="auto", ax=None, figsize=None):
        return plot_shrinkage(self, term, coef, view=view, ax=ax, figsize=figsize)

    @_doc(plot_shrinkage_path)
    def plot_shrinkage_path(self, term=None, coef=None, *, tau=None, n=100, ax=None, figsize=None):
        return plot_shrinkage_path(self, term, coef, tau=tau, n=n, ax=ax, figsize=figsize)

    @_doc(explore_shrinkage)
    def explore_shrinkage(self, term=None, coef=None, *, n=200):
        return explore_shrinkage(self, term, coef, n=n)

    @_doc(plot_prior_posterior)
    def plot_prior_posterior(self, var="sd", term=None, *, ax=None, figsize=None, label=None):
        return plot_prior_posterior(self, var, term, ax=ax, figsize=figsize, label=label)

    # -- effects --------------------------------------------------------------------------------
    @_doc(plot_effects)
    def plot_effects(self, predictors=None, *, data=None, ci=0.95, ngrid=50, ndraws=None, points=False, spaghetti=0,
                     re_form=NA, ax=None, figsize=None):
        return plot_effects(self, predictors, data=data, ci=ci, ngrid=ngrid, ndraws=ndraws, points=points,
                            spaghetti=spaghetti, re_form=re_form, ax=ax, figsize=figsize)

    @_doc(plot_group_lines)
    def plot_group_lines(self, x=None, term=None, *, data=None, ax=None, figsize=None, points=True, ngrid=20):
        return plot_group_lines(self, x, term, data=data, ax=ax, figsize=figsize, points=points, ngrid=ngrid)

    @_doc(plot_predictions)
    def plot_predictions(self, condition, *, re_form=NA, kind="mean", data=None, points=False, spaghetti=0, ci=0.95,
                         ngrid=50, ndraws=None, nsim=100, seed=1, ax=None, figsize=None):
        return plot_predictions(self, condition, re_form=re_form, kind=kind, data=data, points=points,
                                spaghetti=spaghetti, ci=ci, ngrid=ngrid, ndraws=ndraws, nsim=nsim, seed=seed, ax=ax,
                                figsize=figsize)

    @_doc(plot_comparisons)
    def plot_comparisons(self, variables, condition, *, comparison="difference", re_form=NA, data=None, spaghetti=0,
                         ci=0.95, ngrid=30, ndraws=None, nsim=100, seed=1, ax=None, figsize=None):
        return plot_comparisons(self, variables, condition, comparison=comparison, re_form=re_form, data=data,
                                spaghetti=spaghetti, ci=ci, ngrid=ngrid, ndraws=ndraws, nsim=nsim, seed=seed, ax=ax,
                                figsize=figsize)

    @_doc(plot_slopes)
    def plot_slopes(self, variables, condition, *, slope="dydx", re_form=NA, data=None, spaghetti=0, ci=0.95,
                    ngrid=30, ndraws=None, nsim=100, seed=1, ax=None, figsize=None):
        return plot_slopes(self, variables, condition, slope=slope, re_form=re_form, data=data, spaghetti=spaghetti,
                           ci=ci, ngrid=ngrid, ndraws=ndraws, nsim=nsim, seed=seed, ax=ax, figsize=figsize)

    # -- model checks ---------------------------------------------------------------------------
    @_doc(plot_residuals)
    def plot_residuals(self, *, re_form=None, ax=None, figsize=None):
        return plot_residuals(self, re_form=re_form, ax=ax, figsize=figsize)

    @_doc(plot_residuals_by_group)
    def plot_residuals_by_group(self, term=None, x="fitted", *, re_form=None, data=None, max_panels=20, levels=None,
                                ncols=5, figsize=None):
        return plot_residuals_by_group(self, term, x, re_form=re_form, data=data, max_panels=max_panels,
                                       levels=levels, ncols=ncols, figsize=figsize)

    @_doc(plot_ranef_qq)
    def plot_ranef_qq(self, term=None, coef=None, *, ci=0.95, ax=None, figsize=None):
        return plot_ranef_qq(self, term, coef, ci=ci, ax=ax, figsize=figsize)

    @_doc(plot_ranef_vs)
    def plot_ranef_vs(self, term=None, x=None, coef=None, *, data=None, ci=0.95, ax=None, figsize=None):
        return plot_ranef_vs(self, term, x, coef, data=data, ci=ci, ax=ax, figsize=figsize)

    @_doc(plot_quantile_residuals)
    def plot_quantile_residuals(self, *, re_form=None, seed=1, nsim=1000, ax=None, figsize=None, bins=10):
        return plot_quantile_residuals(self, re_form=re_form, seed=seed, nsim=nsim, ax=ax, figsize=figsize, bins=bins)

    @_doc(pp_check)
    def pp_check(self, type="dens_overlay", *, ndraws=None, stat="mean", group=None, data=None, seed=1,  # noqa: A002
                 max_panels=12, ax=None, figsize=None):
        return pp_check(self, type, ndraws=ndraws, stat=stat, group=group, data=data, seed=seed,
                        max_panels=max_panels, ax=ax, figsize=figsize)

    @_doc(check_model)
    def check_model(self, *, nsim=500, ndraws=50, seed=1, figsize=None):
        return check_model(self, nsim=nsim, ndraws=ndraws, seed=seed, figsize=figsize)

    # -- sampler --------------------------------------------------------------------------------
    @_doc(plot_trace)
    def plot_trace(self, var_names=None, *, compact=False, **kwargs):
        return plot_trace(self, var_names, compact=compact, **kwargs)

    @_doc(plot_rank)
    def plot_rank(self, var_names=None, **kwargs):
        return plot_rank(self, var_names, **kwargs)
