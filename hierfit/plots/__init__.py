"""Plots of fitted models: shrinkage, effects, model checks, priors and sampler diagnostics.

Every function takes a fitted model first and returns a matplotlib Figure; the same
functions are methods of the fit (``fit.plot_shrinkage()``, through
:class:`hierfit.plots.methods.PlotMethods`).  matplotlib is imported only when a plot
is drawn, and no display is needed (save with ``fig.savefig``).

Modules
-------
``pooling``    no/complete/partial pooling estimates and the shrinkage path (numbers, no plots)
``shrinkage``  plot_shrinkage, plot_shrinkage_path, explore_shrinkage
``priors``     plot_prior_posterior
``effects``    plot_effects, plot_group_lines
``conditional`` plot_predictions, plot_comparisons, plot_slopes
``checks``     plot_residuals, plot_residuals_by_group, plot_ranef_qq, plot_ranef_vs,
               plot_quantile_residuals
``ppc``        pp_check (every brms type); ``check_model`` the panel of model checks
``sampler``    plot_trace, plot_rank (arviz-plots)

Example
-------
>>> import hierfit
>>> from hierfit.plots import plot_shrinkage
>>> fig = plot_shrinkage(fit, term="school")  # doctest: +SKIP
"""

from __future__ import annotations

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
from hierfit.plots.effects import effect_table, plot_effects, plot_group_lines
from hierfit.plots.methods import PlotMethods
from hierfit.plots.pooling import ShrinkagePath, complete_pooling, no_pooling, partial_pooling, shrinkage_path
from hierfit.plots.priors import plot_prior_posterior
from hierfit.plots.sampler import plot_rank, plot_trace
from hierfit.plots.shrinkage import explore_shrinkage, plot_shrinkage, plot_shrinkage_path

__all__ = [
    "PlotMethods",
    "plot_shrinkage",
    "plot_shrinkage_path",
    "explore_shrinkage",
    "plot_prior_posterior",
    "plot_effects",
    "plot_group_lines",
    "plot_predictions",
    "plot_comparisons",
    "plot_slopes",
    "effect_table",
    "plot_residuals",
    "plot_residuals_by_group",
    "plot_ranef_qq",
    "plot_ranef_vs",
    "plot_quantile_residuals",
    "pp_check",
    "check_model",
    "plot_trace",
    "plot_rank",
    "no_pooling",
    "complete_pooling",
    "partial_pooling",
    "shrinkage_path",
    "ShrinkagePath",
]
