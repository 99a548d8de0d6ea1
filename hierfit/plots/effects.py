"""Effect plots: marginal effects of the fixed predictors, and per-group regression lines.

Artists carry ``gid`` labels: ``"effect-line"`` and ``"effect-band"`` (numeric
predictors), ``"effect-points"`` (factors), ``"group-lines"`` (a LineCollection with
one line per group), ``"population-line"`` and ``"data"`` (the scatter).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.errors import HierfitError
from hierfit.analysis.prepare import NA, prepare_draws, required_columns
from hierfit.analysis.population import is_marginal, response_draws
from hierfit.plots.conditional import condition_grid, data_points, draw_condition, group_lines
from hierfit.plots.common import (
    column_values,
    numeric_response,
    figure_and_axes,
    per_row_divisor,
    fixed_variables,
    resolve_term,
    response_label,
    typical_values,
    variable_range,
)

__all__ = ["plot_effects", "plot_group_lines", "effect_table", "effect_terms"]


def _needed(fit, keep_all: bool) -> list[str]:
    return required_columns(fit.design, None if keep_all else NA)


def _complete_newdata(fit, frame: pd.DataFrame, typical: dict, keep_all: bool = False) -> pd.DataFrame:
    """Add every column prediction needs but the plot does not vary (held at typical values)."""
    d = fit.design
    for col in _needed(fit, keep_all):
        if col in frame.columns:
            continue
        if col in typical:
            frame[col] = typical[col]
        elif col in d.categories:
            frame[col] = d.categories[col][0]
        else:  # offsets and trials: removed below (offset) or giving the response scale per trial
            frame[col] = 1.0
    return frame


def _mean_scale(fit, newdata: pd.DataFrame, re_form, point: bool = False, ndraws: int | None = None) -> np.ndarray:
    """Mean parameter (response scale, per trial for binomial) of new rows, at the mean training offset: (S, n)."""
    return prepare_draws(fit, newdata, re_form=re_form, point=point, ndraws=ndraws, offset="mean").mu


def effect_table(fit, var: str, *, data: pd.DataFrame | None = None, ci: float = 0.95, ngrid: int = 50,
                 ndraws: int | None = None) -> pd.DataFrame:
    """Marginal (``re_form=NA``) expected response over one predictor, others at mean/reference level.

    Returns a DataFrame with the predictor's values and Estimate, lower, upper.

    Example
    -------
    >>> from hierfit.plots.effects import effect_table
    >>> effect_table(fit, "standLRT").head()  # doctest: +SKIP
    """
    d = fit.design
    variables = fixed_variables(fit)
    if var not in variables:
        raise HierfitError(f"unknown predictor {var!r}: the fixed part {d.formula.fixed!r} uses "
                           f"{', '.join(variables) or 'no variables'}")
    typical = typical_values(fit, data, purpose="plot_effects")
    if var in d.categories:
        values = list(d.categories[var])
    else:
        lo, hi = variable_range(fit, var, data, purpose="plot_effects")
        values = np.linspace(lo, hi, ngrid)
    frame = pd.DataFrame({var: values})
    for other, v in typical.items():
        if other != var:
            frame[other] = v
    frame = _complete_newdata(fit, frame, typical)
    mu = _mean_scale(fit, frame, NA, ndraws=ndraws)
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    q = np.quantile(mu, [lo_q, hi_q], axis=0)
    return pd.DataFrame({var: values, "Estimate": mu.mean(axis=0), "lower": q[0], "upper": q[1]})


def plot_effects(fit, predictors=None, *, data: pd.DataFrame | None = None, ci: float = 0.95, ngrid: int = 50,
                 ndraws: int | None = None, points: bool = False, spaghetti: int = 0, re_form=NA, ax=None,
                 figsize=None):
    """One panel per fixed term: the marginal prediction with its credible band.

    As ``plot(allEffects(mod))`` and brms's ``conditional_effects``: every term of
    the fixed part not contained in a higher-order term gets a panel.  A main effect
    varies its predictor over its range (factors: each level, as points with
    intervals); an interaction (``standLRT:sex``, ``FoodTreatment:SexParent``) shows
    one line or point set per level of its second predictor (numeric ones at mean
    and mean ± sd).  Other predictors are held at their mean or reference level and
    offsets at their mean; predictions are without group effects
    (``re_form=hierfit.NA``) on the response scale (probabilities for binomial
    models, counts for Poisson), through :func:`hierfit.datagrid` and the analysis
    layer.  Naming ``predictors`` gives one panel per named predictor instead.

    Parameters
    ----------
    fit : HierFit
    predictors : str or list of str, optional
        Variables to show (default every variable of the fixed part).
    data : DataFrame, optional
        The data the model was fitted to; only needed for variables that enter the
        model through a transformation (``log(x)``), whose raw range the fit does not keep.
    ci : float
        Probability of the band.
    ngrid : int
        Points along numeric predictors.
    ndraws : int, optional
        Use this many posterior draws (faster for big models).
    points : bool
        Draw the data in panels with a numeric x.  A count model whose rows were
        aggregated exactly into patterns shows one point per pattern at its mean per
        row (successes / trials, or the count divided by the pattern's rows).
    spaghetti : int
        Draw this many posterior draws as thin lines.
    re_form : hierfit.NA (default), "marginal" or None
        The typical group, the population average, or the typical group with one thin
        line per level of the first group term.
    ax : Axes or sequence of Axes, optional
        One per panel.
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_effects()  # doctest: +SKIP
    """
    numeric_response(fit, "plot_effects")
    d = fit.design
    variables = fixed_variables(fit)
    if predictors is None:
        terms = effect_terms(fit)
    else:
        terms = [[p] for p in ([predictors] if isinstance(predictors, str) else predictors)]
    if not terms:
        raise HierfitError(f"the model {d.formula.text!r} has no fixed predictors to plot")
    for term in terms:
        for var in term:
            if var not in variables:
                raise HierfitError(f"unknown predictor {var!r}: the fixed part {d.formula.fixed!r} uses "
                                   f"{', '.join(variables) or 'no variables'}")
    n = len(terms)
    fig, axes = figure_and_axes(ax, n, ncols=min(n, 3), figsize=figsize, what="plot_effects")
    for a, term in zip(axes, terms):
        numeric = [v for v in term if v not in d.categories]
        order = (numeric[:1] + [v for v in term if v not in numeric[:1]])[:2]
        grid, names = condition_grid(fit, order, data, ngrid)
        draws = response_draws(fit, grid, re_form=NA if re_form is None else re_form, ndraws=ndraws,
                               offset="mean", seed=1)
        if points:
            data_points([a], fit, names, data)
        if re_form is None:
            group_lines([a], fit, grid, names, None, ndraws)
        draw_condition([a], fit, grid, draws, names, ci=ci, spaghetti=spaghetti)
        if len(term) == 1 and term[0] in d.fixed_names and d.rows_held:  # a rug of the fitted rows' values
            x = d.X[:, d.fixed_names.index(term[0])]
            a.plot(x, np.zeros_like(x), "|", color="0.4", ms=6, alpha=0.3, transform=a.get_xaxis_transform(),
                   gid="rug")
        a.set_title(f"{':'.join(term)} effect plot", fontsize=10)
    held = typical_values(fit, data, purpose="plot_effects")
    note = ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}" for k, v in held.items())
    how = "population-averaged over group effects" if is_marginal(re_form) else "no group effects"
    if ax is None:
        fig.suptitle(f"Marginal effects ({how}); others held at {note}" if n > 1 else
                     f"Marginal effect ({how})", fontsize=10)
    return fig


def effect_terms(fit) -> list[list[str]]:
    """The fixed part's highest-order terms as lists of predictors (``[['standLRT', 'sex']]``).

    Example
    -------
    >>> effect_terms(fit)  # doctest: +SKIP
    [['standLRT', 'sex']]
    """
    d = fit.design
    order = fixed_variables(fit)
    if not d.mu.fixed_columns:
        return []
    sets = []
    for vs in d.mu.fixed_spec.term_variables.values():
        vs = [v for v in order if v in vs]
        if vs and vs not in sets:
            sets.append(vs)
    return [s for s in sets if not any(set(s) < set(o) for o in sets)]


def plot_group_lines(fit, x: str | None = None, term: str | None = None, *, data: pd.DataFrame | None = None,
                     ax=None, figsize=None, points: bool = True, ngrid: int = 20):
    """Each group's fitted regression line (fixed + its group effects) over the data.

    The chapter's per-school regression lines: for every level of the group term a
    line over that group's range of ``x``, with its own intercept (and slope, when the
    term has one); other predictors are held at their mean or reference level.  The
    thick black line is the population line (``re_form=hierfit.NA``).

    Parameters
    ----------
    fit : HierFit
    x : str, optional
        A numeric predictor of the fixed part (default the first numeric one).
    term : str, optional
        Grouping factor.
    data : DataFrame, optional
        Only needed when ``x`` enters the model through a transformation.
    ax : Axes, optional
    figsize : tuple, optional
    points : bool
        Draw the data (grey points). For a model fitted to data read through a data
        engine (Dask), whose rows are not in memory, there are no points and every
        group's line spans the range of ``x`` over all rows.  A count model whose rows
        were aggregated exactly into patterns shows one point per pattern at its mean
        per row (successes / trials, or the count divided by the pattern's rows).
    ngrid : int
        Points per line (lines are curves for non-identity links).

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_group_lines(x="standLRT")  # doctest: +SKIP
    """
    numeric_response(fit, "plot_group_lines")
    from matplotlib.collections import LineCollection

    d = fit.design
    info = resolve_term(fit, term)
    variables = fixed_variables(fit)
    numeric = [v for v in variables if v not in d.categories]
    if x is None:
        if not numeric:
            raise HierfitError("plot_group_lines needs a numeric predictor; the fixed part has none")
        x = numeric[0]
    if x not in variables:
        raise HierfitError(f"unknown x {x!r}: the fixed part {d.formula.fixed!r} uses "
                           f"{', '.join(variables) or 'no variables'}")
    if x in d.categories:
        raise HierfitError(f"x must be a numeric predictor, but {x!r} is a factor (levels: "
                           f"{', '.join(map(str, d.categories[x]))}); use plot_effects for factors")
    typical = typical_values(fit, data, purpose="plot_group_lines")
    J = info.n_levels
    if not d.rows_held:  # the rows stayed in a data engine: every line spans the range of x over all rows
        points = False
        lo_all, hi_all = variable_range(fit, x, data, purpose="plot_group_lines")
        lo, hi = np.full(J, lo_all), np.full(J, hi_all)
    else:
        if x in d.fixed_names:
            xv = d.X[:, d.fixed_names.index(x)]
        else:
            xv = np.asarray(column_values(fit, x, data, purpose="plot_group_lines"), dtype=float)
        idx = info.index
        lo = np.full(J, np.inf)
        hi = np.full(J, -np.inf)
        np.minimum.at(lo, idx, xv)
        np.maximum.at(hi, idx, xv)
    linear = d.family.link_name == "identity"
    m = 2 if linear else ngrid
    t = np.linspace(0, 1, m)
    grid = lo[:, None] + (hi - lo)[:, None] * t[None, :]
    frame = pd.DataFrame({x: grid.ravel()})
    labels = np.repeat(np.asarray(info.levels, dtype=object), m)
    factors = info.blocks[0].factors
    if len(factors) == 1:
        frame[factors[0]] = labels
    else:
        parts = [lab.split(":") for lab in labels]
        for i, f in enumerate(factors):
            frame[f] = [p[i] for p in parts]
    for other, v in typical.items():
        if other != x:
            frame[other] = v
    other_factors = {b.factor for b in d.blocks} - {info.factor}
    re_form = None if not other_factors else f"~ (1 | {info.factor})"
    frame = _complete_newdata(fit, frame, typical, keep_all=True)
    mu = _mean_scale(fit, frame, re_form, point=True)[0].reshape(J, m)

    fig, axes = figure_and_axes(ax, 1, figsize=figsize or (6.4, 4.8), what="plot_group_lines")
    a = axes[0]
    yv = np.asarray(d.y, dtype=float) / per_row_divisor(fit)
    if points:
        a.scatter(xv, yv, s=5, color="0.55", alpha=0.35, lw=0, gid="data", label="data", rasterized=True)
    import matplotlib as mpl

    cmap = mpl.colormaps["tab20"]
    lc = LineCollection([np.column_stack([grid[j], mu[j]]) for j in range(J)], colors=[cmap(j % 20) for j in range(J)],
                        linewidths=1.0, alpha=0.85, gid="group-lines", label=f"one line per {info.factor} ({J})")
    a.add_collection(lc)
    pop_x = np.linspace(lo.min(), hi.max(), m if not linear else 2)
    pop = pd.DataFrame({x: pop_x})
    for other, v in typical.items():
        if other != x:
            pop[other] = v
    pop = _complete_newdata(fit, pop, typical)
    pop_mu = _mean_scale(fit, pop, NA, point=True)[0]
    a.plot(pop_x, pop_mu, color="k", lw=2.5, gid="population-line", label="population (fixed effects)")
    a.autoscale_view()
    a.set_xlabel(x)
    a.set_ylabel(response_label(fit))
    held = ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}"
                     for k, v in typical.items() if k != x)
    a.set_title(f"{d.response} ~ {x}: one line per {info.factor}" + (f"\n(at {held})" if held else ""), fontsize=10)
    a.legend(fontsize=8, frameon=False, loc="upper left")
    return fig
