"""Posterior predictive checks, brms's / bayesplot's ``pp_check(type = ...)``.

Every type compares the observed response with data sets simulated from the
posterior (group effects at their fitted values):

``dens_overlay``      densities (relative frequencies for counts) of y over those of y_rep
``hist``              histograms of y and of a few y_rep
``ecdf_overlay``      empirical CDFs
``bars``              counts per value: observed bars, replicated mean and 90 % interval
``rootogram``         hanging rootogram: sqrt(observed counts) hanging from sqrt(expected counts)
``stat``              distribution of T(y_rep) against T(y), T = mean, sd, prop_zero or max
``stat_grouped``      the same per group
``intervals_grouped`` 50 % and 90 % predictive intervals of every observation, per group
"""

from __future__ import annotations

import numpy as np

from hierfit.analysis.prepare import prepare_draws
from hierfit.errors import HierfitError
from hierfit.plots.common import column_values, figure_and_axes

__all__ = ["pp_check", "PP_TYPES", "STATS", "replicate"]

PP_TYPES = ("dens_overlay", "hist", "ecdf_overlay", "bars", "rootogram", "stat", "stat_grouped", "intervals_grouped")
_DEFAULT_NDRAWS = {"dens_overlay": 50, "hist": 8, "ecdf_overlay": 50, "bars": 500, "rootogram": 500, "stat": 1000,
                   "stat_grouped": 1000, "intervals_grouped": 1000}

#: Test statistics for ``type="stat"``.
STATS = {
    "mean": np.mean,
    "sd": lambda v, axis=None: np.std(v, axis=axis, ddof=1),
    "prop_zero": lambda v, axis=None: np.mean(v == 0, axis=axis),
    "max": np.max,
    "min": np.min,
    "median": np.median,
}


def replicate(fit, ndraws: int, seed: int | None = 1) -> tuple[np.ndarray, np.ndarray]:
    """(y, y_rep): the observed response and ``ndraws`` simulated data sets (ndraws, n).

    Example
    -------
    >>> y, yrep = replicate(fit, 10)  # doctest: +SKIP
    """
    if int(ndraws) < 1:
        raise HierfitError(f"ndraws must be at least 1, got {ndraws}")
    rng = np.random.default_rng(seed)
    prepared = prepare_draws(fit, None, ndraws=int(ndraws), seed=None if seed is None else seed + 1)
    return np.asarray(fit.design.y, dtype=float), prepared.simulate(rng)


def _group_labels(fit, group, data):
    if group is None:
        raise HierfitError("this pp_check type needs group= (a grouping factor of the model or a column of data=)")
    for blk in fit.design.all_blocks:
        if group in (blk.factor, blk.name):
            return np.asarray(blk.levels, dtype=object)[blk.index]
    values = column_values(fit, group, data, purpose="pp_check")
    return np.asarray(values.astype(str) if hasattr(values, "categories") else values, dtype=object)


def _stat_fn(stat):
    if callable(stat):
        return stat, getattr(stat, "__name__", "T")
    if stat not in STATS:
        raise HierfitError(f"stat must be one of {', '.join(STATS)} or a function, got {stat!r}")
    return STATS[stat], stat


def _dens_overlay(a, y, yrep, discrete):
    from scipy.stats import gaussian_kde

    if discrete:
        values = np.unique(np.concatenate([y, yrep.ravel()]))
        for s in range(yrep.shape[0]):
            a.plot(values, [(yrep[s] == k).mean() for k in values], color="C0", alpha=0.25, lw=0.8,
                   drawstyle="steps-mid", gid="y-rep", label="y_rep (replicated)" if s == 0 else None)
        a.plot(values, [(y == k).mean() for k in values], color="k", lw=2, drawstyle="steps-mid",
               gid="y-observed", label="y (observed)")
        a.set_ylabel("relative frequency")
        return
    lo, hi = min(y.min(), np.quantile(yrep, 0.001)), max(y.max(), np.quantile(yrep, 0.999))
    grid = np.linspace(lo, hi, 256)
    for s in range(yrep.shape[0]):
        a.plot(grid, gaussian_kde(yrep[s])(grid), color="C0", alpha=0.25, lw=0.8, gid="y-rep",
               label="y_rep (replicated)" if s == 0 else None)
    a.plot(grid, gaussian_kde(y)(grid), color="k", lw=2, gid="y-observed", label="y (observed)")
    a.set_ylabel("density")


def _ecdf(a, y, yrep):
    for s in range(yrep.shape[0]):
        v = np.sort(yrep[s])
        a.step(v, np.arange(1, v.size + 1) / v.size, where="post", color="C0", alpha=0.25, lw=0.8, gid="y-rep",
               label="y_rep (replicated)" if s == 0 else None)
    v = np.sort(y)
    a.step(v, np.arange(1, v.size + 1) / v.size, where="post", color="k", lw=2, gid="y-observed",
           label="y (observed)")
    a.set_ylabel("ECDF")


def _counts(y, yrep):
    values = np.arange(int(min(y.min(), yrep.min())), int(max(y.max(), np.quantile(yrep, 0.999))) + 1)
    obs = np.array([(y == k).sum() for k in values])
    rep = np.stack([(yrep == k).sum(axis=1) for k in values], axis=1)
    return values, obs, rep


def _bars(a, y, yrep):
    values, obs, rep = _counts(y, yrep)
    a.bar(values, obs, color="0.75", width=0.9, gid="y-observed", label="y (observed)")
    lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
    mid = rep.mean(axis=0)
    a.errorbar(values, mid, yerr=[np.maximum(mid - lo, 0), np.maximum(hi - mid, 0)], fmt="o", ms=3,
               color="C0", lw=1, gid="y-rep", label="y_rep mean and 90 % interval")
    a.set_ylabel("count")


def _rootogram(a, y, yrep):
    values, obs, rep = _counts(y, yrep)
    expected = np.sqrt(rep.mean(axis=0))
    a.bar(values, np.sqrt(obs), bottom=expected - np.sqrt(obs), color="0.75", width=0.9, gid="y-observed",
          label="sqrt(observed count), hanging")
    a.plot(values, expected, color="C3", lw=1.6, marker="o", ms=3, gid="y-rep", label="sqrt(expected count)")
    a.axhline(0, color="k", lw=0.8)
    a.set_ylabel("sqrt(frequency)")


def _stat(a, y, yrep, fn, name):
    t_rep = np.asarray(fn(yrep, axis=1), dtype=float)
    t_obs = float(fn(y))
    a.hist(t_rep, bins=30, color="C0", alpha=0.6, gid="y-rep", label=f"T(y_rep), T = {name}")
    a.axvline(t_obs, color="k", lw=2, gid="y-observed", label="T(y)")
    p = float(np.mean(t_rep >= t_obs))
    a.set_title(f"{name}: T(y) = {t_obs:.3g}, P(T(y_rep) >= T(y)) = {p:.3f}", fontsize=9)


def pp_check(fit, type: str = "dens_overlay", *, ndraws: int | None = None, stat="mean",  # noqa: A002
             group: str | None = None, data=None, seed: int | None = 1, max_panels: int = 12, ax=None,
             figsize=None):
    """Posterior predictive check (brms's ``pp_check``): the observed response against replicated data.

    Parameters
    ----------
    fit : HierFit
    type : str
        One of ``dens_overlay`` (default), ``hist``, ``ecdf_overlay``, ``bars``, ``rootogram``
        (ordered categories: ``bars``, labelled by category; not ``dens_overlay``/``rootogram``),
        ``stat``, ``stat_grouped``, ``intervals_grouped`` (see :mod:`hierfit.plots.ppc`).
    ndraws : int, optional
        Number of replicated data sets (defaults: 50 for overlays, 8 for ``hist``, 500 for
        ``bars``/``rootogram``, 1000 for statistics).
    stat : str or callable, or a list of them
        For ``stat``/``stat_grouped``: ``mean``, ``sd``, ``prop_zero``, ``max`` (also ``min``, ``median``),
        or a function of an array with an ``axis`` argument.
    group : str
        For the grouped types: a grouping factor of the model (``"Nest"``) or a column of ``data``.
    data : DataFrame, optional
        The data the model was fitted to, for a ``group`` that is not in the model.
    seed : int, optional
    max_panels : int
        At most this many groups are drawn.
    ax, figsize : optional

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.pp_check("rootogram")  # doctest: +SKIP
    >>> fig = fit.pp_check("stat", stat=["mean", "prop_zero"])  # doctest: +SKIP
    """
    if type not in PP_TYPES:
        raise HierfitError(f"type must be one of {', '.join(PP_TYPES)}, got {type!r}")
    levels = fit.design.response_levels
    if levels is not None and type in ("dens_overlay", "rootogram"):
        raise HierfitError(f"pp_check type {type!r} treats the response as a number or a count; the "
                           f"{fit.family.name} response is an ordered category: use type='bars' (or 'ecdf_overlay', "
                           "'hist', 'stat' on the category codes 0..K-1)")
    y, yrep = replicate(fit, _DEFAULT_NDRAWS[type] if ndraws is None else ndraws, seed)
    discrete = bool(fit.family.discrete)
    if type in ("bars", "rootogram") and not discrete:
        raise HierfitError(f"pp_check type {type!r} is for counts; the {fit.family.name} response is continuous "
                           "(use 'dens_overlay', 'hist' or 'ecdf_overlay')")
    resp = fit.design.response
    if type == "stat":
        stats_ = stat if isinstance(stat, (list, tuple)) else [stat]
        fig, axes = figure_and_axes(ax, len(stats_), ncols=min(3, len(stats_)),
                                    figsize=figsize or (4.2 * min(3, len(stats_)), 3.6), what="pp_check")
        for a, st in zip(axes, stats_):
            _stat(a, y, yrep, *_stat_fn(st))
            a.set_xlabel(f"{_stat_fn(st)[1]}({resp})")
        axes[0].legend(fontsize=8, frameon=False)
        return fig
    if type in ("stat_grouped", "intervals_grouped"):
        labels = _group_labels(fit, group, data)
        levels = list(dict.fromkeys(labels))[:max_panels]
        ncols = min(4, len(levels))
        fig, axes = figure_and_axes(ax, len(levels), ncols=ncols, figsize=figsize or (3.2 * ncols, 2.6 * (
            (len(levels) + ncols - 1) // ncols)), what="pp_check")
        fn, name = _stat_fn(stat if not isinstance(stat, (list, tuple)) else stat[0])
        for a, lev in zip(axes, levels):
            rows = labels == lev
            if type == "stat_grouped":
                _stat(a, y[rows], yrep[:, rows], fn, name)
                a.set_title(f"{group} = {lev}", fontsize=9)
            else:
                idx = np.arange(rows.sum())
                q = np.quantile(yrep[:, rows], [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
                a.vlines(idx, q[0], q[4], color="C0", alpha=0.4, lw=1, gid="y-rep-90")
                a.vlines(idx, q[1], q[3], color="C0", lw=2.5, gid="y-rep-50")
                a.plot(idx, y[rows], "o", color="k", ms=3, gid="y-observed")
                a.set_title(f"{group} = {lev}", fontsize=9)
        fig.suptitle(f"Posterior predictive {type.replace('_', ' ')} by {group} ({yrep.shape[0]} draws)",
                     fontsize=10)
        return fig
    if type == "hist":
        k = yrep.shape[0] + 1
        ncols = min(3, k)
        size = figsize or (3.2 * ncols, 2.4 * ((k + ncols - 1) // ncols))
        fig, axes = figure_and_axes(ax, k, ncols=ncols, figsize=size, sharex=True, what="pp_check")
        bins = np.histogram_bin_edges(np.concatenate([y, yrep.ravel()]), bins=30)
        axes[0].hist(y, bins=bins, color="k", alpha=0.8, gid="y-observed")
        axes[0].set_title("y (observed)", fontsize=9)
        for s in range(yrep.shape[0]):
            axes[s + 1].hist(yrep[s], bins=bins, color="C0", alpha=0.7, gid="y-rep")
            axes[s + 1].set_title(f"y_rep {s + 1}", fontsize=9)
        return fig
    fig, axes = figure_and_axes(ax, 1, figsize=figsize or (6.4, 4.4), what="pp_check")
    a = axes[0]
    {"dens_overlay": lambda: _dens_overlay(a, y, yrep, discrete and np.unique(
        np.concatenate([y, yrep.ravel()])).size <= 60), "ecdf_overlay": lambda: _ecdf(a, y, yrep),
     "bars": lambda: _bars(a, y, yrep), "rootogram": lambda: _rootogram(a, y, yrep)}[type]()
    a.set_xlabel(resp)
    if levels is not None and type == "bars":  # the categories by their labels
        a.set_xticks(range(len(levels)), [str(v) for v in levels])
    a.set_title(f"Posterior predictive check: {type} ({yrep.shape[0]} replicated data sets)", fontsize=10)
    a.legend(fontsize=8, frameon=False)
    return fig
