"""Conditional plots of predictions, comparisons and slopes (marginaleffects' ``plot_*``).

``condition`` names up to three predictors: the x axis, the colour (one line or
point set per value) and the panels.  Numeric predictors on the x axis run over
their range; as colour or panels they take their mean and mean ± sd (as brms's
``conditional_effects``); factors take every level.  Everything else is held at
:func:`hierfit.datagrid`'s typical values.  Every number comes from the analysis
layer (so from ``prepare_draws``).

Artists carry ``gid`` labels: ``"effect-line"`` / ``"effect-band"`` (numeric x),
``"effect-points"`` (factor x), ``"spaghetti"`` (draws), ``"group-lines"`` (one
line per group level with ``re_form=None``), ``"data"`` (the scatter).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.analysis.grid import datagrid, model_frame
from hierfit.analysis.marginal import comparisons, slopes
from hierfit.analysis.population import is_marginal, response_draws
from hierfit.analysis.prepare import NA, select_blocks
from hierfit.errors import HierfitError
from hierfit.plots.common import figure_and_axes, per_row_divisor, response_label, row_weights

__all__ = ["plot_predictions", "plot_comparisons", "plot_slopes", "condition_grid", "draw_condition",
           "data_points", "group_lines"]


def _values(fit, var: str, frame: pd.DataFrame | None, axis: bool, ngrid: int,
            weights: np.ndarray | None = None) -> list:
    """Values of ``var`` in a conditional plot: its range (x axis), or mean and mean ± sd (colour, panels).

    ``weights`` (the rows per pattern of a fit aggregated into counts, aligned with
    ``frame``) make the mean and sd those of the original rows.
    """
    d = fit.design
    if var in d.categories:
        return list(d.categories[var])
    moments = d.engine_moments(var)  # when the rows stayed in a data engine, which measured them
    if (frame is None or var not in frame.columns) and moments is not None:
        lo, hi, m, s = (float(moments[k]) for k in ("min", "max", "mean", "sd"))
    elif frame is None or var not in frame.columns:
        raise HierfitError(f"cannot find the values of {var!r}; pass data= (the data the model was fitted to)")
    else:
        x = pd.to_numeric(frame[var]).to_numpy(dtype=float)
        if weights is None:
            lo, hi, m, s = float(x.min()), float(x.max()), float(x.mean()), float(x.std(ddof=1))
        else:  # one row per pattern: the original rows' mean and sd
            w = np.asarray(weights, dtype=float)
            m = float(np.average(x, weights=w))
            s = float(np.sqrt(np.sum(w * (x - m) ** 2) / max(w.sum() - 1.0, 1.0)))
            lo, hi = float(x.min()), float(x.max())
    if axis:
        return list(np.linspace(lo, hi, ngrid))
    return [m - s, m, m + s]


def condition_grid(fit, condition, data: pd.DataFrame | None = None, ngrid: int = 50) -> tuple[pd.DataFrame, list]:
    """The grid of a conditional plot and the (x, colour, panel) names (missing ones None).

    Example
    -------
    >>> grid, names = condition_grid(fit, ["standLRT", "sex"])  # doctest: +SKIP
    """
    if isinstance(condition, str):
        condition = [condition]
    condition = list(condition or [])
    if not 1 <= len(condition) <= 3:
        raise HierfitError(f"condition must name 1 to 3 predictors (x, colour, panels), got {condition!r}")
    from hierfit.analysis.grid import check_predictors

    check_predictors(fit.design, condition, noun="predictor", where=" in condition")
    try:
        frame = model_frame(fit, data)
    except HierfitError:
        frame = None
    # without data, an aggregated fit's frame has one row per pattern: weight each by its rows
    weights = row_weights(fit) if data is None and frame is not None else None
    values = {c: _values(fit, c, frame, k == 0, ngrid, weights) for k, c in enumerate(condition)}
    grid = datagrid(fit, newdata=data, **values)
    return grid, condition + [None] * (3 - len(condition))


def _label(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def draw_condition(axes, fit, grid: pd.DataFrame, draws: np.ndarray, names: list, ci: float = 0.95,
                   spaghetti: int = 0, ylabel: str | None = None, seed: int = 1) -> None:
    """Draw (S, len(grid)) draws over the x of ``names``: lines + bands, or points + intervals.

    Example
    -------
    >>> draw_condition(axes, fit, grid, draws, ["standLRT", "sex", None])  # doctest: +SKIP
    """
    x, colour, panel = names
    d = fit.design
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    panels = list(dict.fromkeys(grid[panel])) if panel else [None]
    colours = list(dict.fromkeys(grid[colour])) if colour else [None]
    rng = np.random.default_rng(seed)
    factor_x = x in d.categories
    for a, pv in zip(axes, panels):
        for k, cv in enumerate(colours):
            mask = np.ones(len(grid), dtype=bool)
            if panel:
                mask &= (grid[panel] == pv).to_numpy()
            if colour:
                mask &= (grid[colour] == cv).to_numpy()
            sub = draws[:, mask]
            est = sub.mean(axis=0)
            q = np.quantile(sub, [lo_q, hi_q], axis=0)
            label = f"{colour} = {_label(cv)}" if colour else None
            col = f"C{k % 10}"
            if factor_x:
                levels = grid.loc[mask, x].tolist()
                pos = np.array([list(d.categories[x]).index(v) for v in levels], dtype=float)
                pos = pos + (k - (len(colours) - 1) / 2) * 0.12
                a.errorbar(pos, est, yerr=np.vstack([est - q[0], q[1] - est]), fmt="o", color=col, capsize=4, ms=6,
                           gid="effect-points", label=label)
                a.plot(pos, est, color=col, lw=0.8, alpha=0.5)
                cats = list(d.categories[x])
                a.set_xticks(np.arange(len(cats)), [str(v) for v in cats])
                a.set_xlim(-0.5, len(cats) - 0.5)
            else:
                xv = grid.loc[mask, x].to_numpy(dtype=float)
                a.fill_between(xv, q[0], q[1], color=col, alpha=0.2, lw=0, gid="effect-band")
                a.plot(xv, est, color=col, lw=2, gid="effect-line", label=label)
                if spaghetti:
                    pick = rng.choice(sub.shape[0], size=min(int(spaghetti), sub.shape[0]), replace=False)
                    for s in pick:
                        a.plot(xv, sub[s], color=col, lw=0.5, alpha=0.25, gid="spaghetti")
        a.set_xlabel(x)
        a.set_ylabel(ylabel or response_label(fit))
        if panel:
            a.set_title(f"{panel} = {_label(pv)}", fontsize=10)
        if colour:
            a.legend(fontsize=8, frameon=False)


def data_points(axes, fit, names, data) -> None:
    """Scatter the fitted rows' response against the x of ``names`` (numeric x only).

    For a fit to rows aggregated exactly into count patterns each point is one pattern
    at its mean per row (successes / trials for binomial models, the count divided by
    the pattern's rows for Poisson ones), on the scale of the per-row predictions.

    Example
    -------
    >>> data_points(axes, fit, ["standLRT", None, None], None)  # doctest: +SKIP
    """
    x, colour, panel = names
    d = fit.design
    try:
        frame = model_frame(fit, data).reset_index(drop=True)
    except HierfitError:
        return
    if x not in frame.columns or x in d.categories or len(frame) != d.nobs:
        return
    y = np.asarray(d.y, dtype=float) / per_row_divisor(fit)
    panels = list(dict.fromkeys(frame[panel])) if panel and panel in d.categories else [None]
    for a, pv in zip(axes, panels):
        mask = np.ones(len(frame), dtype=bool) if pv is None else (frame[panel] == pv).to_numpy()
        a.scatter(pd.to_numeric(frame.loc[mask, x]), y[mask], s=5, color="0.55", alpha=0.35, lw=0, gid="data",
                  rasterized=True)


def group_lines(axes, fit, grid, names, re_form, ndraws) -> None:
    """One thin line per level of the first kept group term (point estimates)."""
    from matplotlib.collections import LineCollection

    x, colour, panel = names
    d = fit.design
    keep = select_blocks(d, re_form)
    blocks = [b for b in d.blocks if b.key in keep]
    if not blocks or x in d.categories:
        return
    blk = blocks[0]
    base = grid
    frames = []
    for lev in blk.levels:
        f = base.copy()
        parts = str(lev).split(":") if len(blk.factors) > 1 else [lev]
        for fac, p in zip(blk.factors, parts):
            f[fac] = p
        frames.append(f)
    stacked = pd.concat(frames, ignore_index=True)
    est = response_draws(fit, stacked, re_form=f"~ (1 | {blk.factor})", allow_new_levels=True,
                         ndraws=ndraws).mean(axis=0).reshape(len(frames), len(base))
    panels = list(dict.fromkeys(base[panel])) if panel else [None]
    for a, pv in zip(axes, panels):
        mask = np.ones(len(base), dtype=bool) if pv is None else (base[panel] == pv).to_numpy()
        if colour:
            mask &= (base[colour] == base[colour].iloc[0]).to_numpy()
        xv = base.loc[mask, x].to_numpy(dtype=float)
        segs = [np.column_stack([xv, est[j, mask]]) for j in range(len(frames))]
        a.add_collection(LineCollection(segs, colors="0.5", linewidths=0.6, alpha=0.5, gid="group-lines"))


def _figure(names, grid, ax, figsize, what):
    panel = names[2]
    n = len(dict.fromkeys(grid[panel])) if panel else 1
    return figure_and_axes(ax, n, ncols=min(n, 3), figsize=figsize, what=what)


def plot_predictions(fit, condition, *, re_form=NA, kind="mean", data=None, points=False, spaghetti=0,
                     ci=0.95, ngrid=50, ndraws=None, nsim=100, seed=1, ax=None, figsize=None):
    """Predictions over a grid of one to three predictors (marginaleffects' ``plot_predictions``).

    Parameters
    ----------
    fit : HierFit
    condition : str or list
        ``[x, colour, panels]``: e.g. ``["standLRT", "sex"]``.
    re_form : hierfit.NA (default), "marginal" or None
        The typical group, the population average, or -- with None -- the typical
        group plus one thin line per level of the first group term.
    kind : {"mean", "link"}
    data : DataFrame, optional
        The fitted data; needed for transformed predictors and used for ``points``.
    points : bool
        Draw the data (numeric x).
    spaghetti : int
        Draw this many posterior draws as thin lines.
    ci, ngrid, ndraws, nsim, seed, ax, figsize : optional

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_predictions(["standLRT", "sex"], points=True)  # doctest: +SKIP
    """
    grid, names = condition_grid(fit, condition, data, ngrid)
    typical = NA if re_form is None else re_form
    draws = response_draws(fit, grid, re_form=typical, kind=kind, ndraws=ndraws, nsim=nsim, seed=seed,
                           offset="mean")
    fig, axes = _figure(names, grid, ax, figsize, "plot_predictions")
    if points:
        data_points(axes, fit, names, data)
    if re_form is not NA and not is_marginal(re_form):
        group_lines(axes, fit, grid, names, re_form, ndraws)
    draw_condition(axes, fit, grid, draws, names, ci=ci, spaghetti=spaghetti,
                   ylabel=None if kind == "mean" else f"{fit.design.response} (link scale)", seed=seed)
    return fig


def plot_comparisons(fit, variables, condition, *, comparison="difference", re_form=NA, data=None, spaghetti=0,
                     ci=0.95, ngrid=30, ndraws=None, nsim=100, seed=1, ax=None, figsize=None):
    """A comparison (one contrast of ``variables``) over a grid of ``condition`` (marginaleffects' ``plot_comparisons``).

    Example
    -------
    >>> fig = fit.plot_comparisons("sex", condition="standLRT")  # doctest: +SKIP
    """
    grid, names = condition_grid(fit, condition, data, ngrid)
    draws = comparisons(fit, variables, newdata=grid, comparison=comparison, re_form=re_form, ndraws=ndraws,
                        nsim=nsim, seed=seed, summary=False).to_numpy()
    if draws.shape[1] != len(grid):
        raise HierfitError(f"plot_comparisons shows one contrast; {variables!r} gives {draws.shape[1] // len(grid)} "
                           "(pick one, e.g. {'sex': ['F', 'M']})")
    fig, axes = _figure(names, grid, ax, figsize, "plot_comparisons")
    draw_condition(axes, fit, grid, draws, names, ci=ci, spaghetti=spaghetti, seed=seed,
                   ylabel=f"{comparison} in {fit.design.response}: {variables}")
    for a in axes:
        a.axhline(0.0 if "ratio" not in comparison or comparison.startswith("ln") else 1.0, color="0.6", lw=0.8)
    return fig


def plot_slopes(fit, variables, condition, *, slope="dydx", re_form=NA, data=None, spaghetti=0, ci=0.95,
                ngrid=30, ndraws=None, nsim=100, seed=1, ax=None, figsize=None):
    """The slope of one numeric predictor over a grid of ``condition`` (marginaleffects' ``plot_slopes``).

    Example
    -------
    >>> fig = fit.plot_slopes("standLRT", condition="sex")  # doctest: +SKIP
    """
    grid, names = condition_grid(fit, condition, data, ngrid)
    draws = slopes(fit, variables, newdata=grid, slope=slope, re_form=re_form, ndraws=ndraws, nsim=nsim, seed=seed,
                   summary=False).to_numpy()
    if draws.shape[1] != len(grid):
        raise HierfitError("plot_slopes shows the slope of one predictor; pass one name")
    fig, axes = _figure(names, grid, ax, figsize, "plot_slopes")
    draw_condition(axes, fit, grid, draws, names, ci=ci, spaghetti=spaghetti, seed=seed,
                   ylabel=f"{slope} of {fit.design.response} by {variables}")
    for a in axes:
        a.axhline(0.0, color="0.6", lw=0.8)
    return fig
