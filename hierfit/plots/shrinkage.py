"""Shrinkage plots: no pooling against partial pooling, in one or two dimensions, and along τ.

Artists carry ``gid`` labels so that a figure can be checked programmatically:
``"groups"`` (scatter of groups), ``"identity-line"``, ``"complete-pooling"``,
``"shrinkage-arrow"`` (one per group), ``"no-pooling"``, ``"partial-pooling"``,
``"population-mean"``, ``"group-distribution"`` (ellipses), ``"shrinkage-path"``
(a LineCollection, one segment list per group), ``"tau-posterior"``.
"""

from __future__ import annotations

import numpy as np

from hierfit.errors import HierfitError
from hierfit.plots.common import kde_density, figure_and_axes, group_sizes, resolve_term
from hierfit.plots.pooling import partial_draws, complete_pooling, no_pooling, shrinkage_path

__all__ = ["plot_shrinkage", "plot_shrinkage_path", "explore_shrinkage"]

_VIEWS = ("auto", "both", "scatter", "arrows", "2d")
_CMAP = "viridis"


def _size_norm(sizes):
    from matplotlib.colors import LogNorm, Normalize

    lo, hi = float(max(sizes.min(), 1)), float(sizes.max())
    return LogNorm(lo, hi) if hi > 3 * lo else Normalize(lo - 0.5, hi + 0.5)


def _count_ticks(lo: float, hi: float) -> list[float]:
    """Round tick values (1, 2, 5, 10, 20, ...) between lo and hi."""
    cands = [m * 10.0**e for e in range(8) for m in (1, 2, 5)]
    ticks = [c for c in cands if lo <= c <= hi]
    while len(ticks) > 7:
        ticks = ticks[::2]
    return ticks or [lo, hi]


def _count_axis(axis, lo: float, hi: float) -> None:
    """Plain numbers (2, 5, 10, 20) instead of 2x10^0 on a log axis of group sizes."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    axis.set_major_locator(FixedLocator(_count_ticks(lo, hi)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _size_colorbar(fig, mappable, axes, factor):
    cb = fig.colorbar(mappable, ax=axes, shrink=0.85, pad=0.02)
    cb.set_label(f"observations per {factor}")
    norm = mappable.norm
    _count_axis(cb.ax.yaxis, max(norm.vmin, 1), norm.vmax)
    return cb


def _jitter(sizes: np.ndarray, scale: float = 0.04) -> np.ndarray:
    """Group sizes spread a little (multiplicatively) so that groups of equal size do not overlap."""
    rng = np.random.default_rng(0)
    return sizes * np.exp(rng.uniform(-scale, scale, len(sizes)))


def _arrow(ax, start, end, color, lw=0.9, alpha=0.85):
    from matplotlib.patches import FancyArrowPatch

    arr = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=7, color=color, lw=lw, alpha=alpha,
                          shrinkA=0, shrinkB=3, gid="shrinkage-arrow", zorder=2)
    ax.add_patch(arr)
    return arr


#: Above this many groups the arrows are drawn as one LineCollection (no heads), which renders fast.
MAX_ARROW_PATCHES = 300


def _arrows(ax, starts: np.ndarray, ends: np.ndarray, colors) -> None:
    """One arrow per group from ``starts`` to ``ends`` (rows are groups)."""
    if len(starts) <= MAX_ARROW_PATCHES:
        for a, b, c in zip(starts, ends, colors):
            _arrow(ax, tuple(a), tuple(b), c)
        return
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(np.stack([starts, ends], axis=1), colors=colors, linewidths=0.6, alpha=0.6,
                                     zorder=2, gid="shrinkage-arrow"))


def _scatter_panel(ax, info, coef, npool, ppool, cpool, sizes, norm):
    ok = np.isfinite(npool)
    sc = ax.scatter(npool[ok], ppool[ok], c=sizes[ok], cmap=_CMAP, norm=norm, s=22, edgecolors="k", linewidths=0.3,
                    zorder=3, gid="groups", label=f"{info.factor} ({ok.sum()})")
    ax.axline((float(np.nanmean(npool)), float(np.nanmean(npool))), slope=1, color="0.35", lw=1, ls="-",
              gid="identity-line", label="1:1 (no shrinkage)", zorder=1)
    ax.axhline(cpool, color="C3", ls="--", lw=1, gid="complete-pooling", label="complete pooling", zorder=1)
    ax.set_xlabel(f"no pooling: {coef_words(coef, info.factor)} (least squares)")
    ax.set_ylabel(f"partial pooling: {coef_words(coef, info.factor)}\n(posterior mean)")
    ax.set_title(f"{info.label}: {coef}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    if (~ok).any():
        ax.text(0.99, 0.01, f"{(~ok).sum()} {info.factor}(s) without a no-pooling estimate not shown",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.3")
    return sc


def _arrows_panel(ax, info, coef, npool, ppool, cpool, sizes, norm):
    import matplotlib as mpl

    cmap = mpl.colormaps[_CMAP]
    x = _jitter(sizes.astype(float))
    ok = np.isfinite(npool)
    ax.scatter(x[ok], npool[ok], facecolors="none", edgecolors="0.45", s=16, lw=0.8, zorder=3, gid="no-pooling",
               label="no pooling")
    sc = ax.scatter(x, ppool, c=sizes, cmap=_CMAP, norm=norm, s=18, edgecolors="k", linewidths=0.3, zorder=4,
                    gid="partial-pooling", label="partial pooling (posterior mean)")
    _arrows(ax, np.column_stack([x, npool])[ok], np.column_stack([x, ppool])[ok], cmap(norm(sizes[ok])))
    ax.axhline(cpool, color="C3", ls="--", lw=1, gid="complete-pooling", label="complete pooling", zorder=1)
    if sizes.max() > 3 * max(sizes.min(), 1):
        ax.set_xscale("log")
        _count_axis(ax.xaxis, x.min() / 1.1, x.max() * 1.1)
    ax.set_xlabel(f"observations per {info.factor}")
    ax.set_ylabel(coef_words(coef, info.factor))
    ax.set_title(f"no pooling → partial pooling: small {info.factor}s move most", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    return sc


def _cov_ellipse(ax, center, cov, prob, **kw):
    from matplotlib.patches import Ellipse
    from scipy import stats

    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0, None)
    r = np.sqrt(stats.chi2.ppf(prob, 2))
    angle = np.degrees(np.arctan2(vecs[1, -1], vecs[0, -1]))
    e = Ellipse(center, 2 * r * np.sqrt(vals[-1]), 2 * r * np.sqrt(vals[0]), angle=angle, fill=False,
                gid="group-distribution", **kw)
    ax.add_patch(e)
    half = r * np.sqrt(np.diag(cov))
    return center - half, center + half


def coef_words(coef: str, factor: str) -> str:
    """A coefficient of a group term in words, for axis labels.

    Example
    -------
    >>> coef_words("(Intercept)", "school"), coef_words("standLRT", "school")
    ('school intercept', 'school slope of standLRT')
    """
    return f"{factor} intercept" if coef == "(Intercept)" else f"{factor} slope of {coef}"


#: Up to this many groups each group is labelled with its level.
MAX_LABELLED = 12


def _label_groups(ax, levels, points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Each group's level next to its point; labels that would overlap are moved up, with a leader line."""
    frac = (points - lo) / np.where(hi > lo, hi - lo, 1.0)
    placed: list[tuple[float, float]] = []
    for k in np.argsort(frac[:, 1]):
        x, y = frac[k, 0] + 0.015, frac[k, 1] + 0.015
        while any(abs(x - px) < 0.16 and abs(y - py) < 0.04 for px, py in placed):
            y += 0.04
        placed.append((x, y))
        moved = y - frac[k, 1] > 0.03
        ax.annotate(str(levels[k]), tuple(points[k]), xytext=(x, y), textcoords="axes fraction", fontsize=8,
                    zorder=7, gid="group-label", va="bottom",
                    arrowprops=dict(arrowstyle="-", color="0.5", lw=0.6) if moved else None)


def _two_d_panel(ax, fit, info, ks, npool, ppool, cpool, sizes, norm):
    import matplotlib as mpl

    cmap = mpl.colormaps[_CMAP]
    post = fit.draws
    c0, c1 = (info.coefs[k] for k in ks)
    fixed = fit.fixef()["Estimate"]
    pop = np.array([fixed[c] if c in fixed.index else 0.0 for c in (c0, c1)])
    cov = info.cov_draws(post).mean(axis=0)[np.ix_(ks, ks)]
    npz, ppz = npool[:, ks], ppool[:, ks]
    ok = np.all(np.isfinite(npz), axis=1)
    few = len(ppz) <= MAX_LABELLED

    boxes = [ppz.min(axis=0), ppz.max(axis=0), pop, np.asarray(cpool)[ks]]
    for prob, ls in ((0.5, "--"), (0.95, "-")):
        lo, hi = _cov_ellipse(ax, pop, cov, prob, color="0.25", lw=1.1, ls=ls)
        boxes += [lo, hi]
    if ok.any():
        boxes += [np.quantile(npz[ok], 0.03, axis=0), np.quantile(npz[ok], 0.97, axis=0)]
    box = np.array(boxes)
    lo, hi = box.min(axis=0), box.max(axis=0)
    pad = 0.06 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    # a no-pooling estimate far outside (a tiny group) is drawn on the edge, on its arrow's line
    npz = npz.copy()
    outside = ok & np.any((npz < lo) | (npz > hi), axis=1)
    edge_lo, edge_hi = lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo)
    for g in np.flatnonzero(outside):
        d = npz[g] - ppz[g]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(d > 0, (edge_hi - ppz[g]) / d, np.where(d < 0, (edge_lo - ppz[g]) / d, np.inf))
        npz[g] = ppz[g] + max(0.0, min(1.0, float(np.min(t)))) * d
    ok_in = ok & ~outside

    size = 60 if few else 18
    ax.scatter(npz[ok_in, 0], npz[ok_in, 1], facecolors="none", edgecolors="0.35", s=size, lw=1.0, zorder=3,
               gid="no-pooling", label=f"no pooling: each {info.factor}'s own least-squares line")
    if outside.any():
        ax.scatter(npz[outside, 0], npz[outside, 1], marker="s", facecolors="none", edgecolors="C3", s=size * 1.2,
                   lw=1.0, zorder=3, gid="no-pooling-outside", clip_on=False,
                   label=f"no pooling, far outside: drawn on the edge ({outside.sum()})")
    sc = ax.scatter(ppz[ok, 0], ppz[ok, 1], c=sizes[ok], cmap=_CMAP, norm=norm, s=size, edgecolors="k",
                    linewidths=0.4, zorder=4, gid="partial-pooling", label="partial pooling: posterior mean")
    if (~ok).any():
        ax.scatter(ppz[~ok, 0], ppz[~ok, 1], c=sizes[~ok], cmap=_CMAP, norm=norm, s=size * 1.6, marker="D",
                   edgecolors="C3", linewidths=1.5, zorder=5, gid="no-own-estimate",
                   label=f"partial pooling, {info.factor} too small for its own line")
    if few:
        for a, b, c in zip(npz[ok], ppz[ok], cmap(norm(sizes[ok]))):
            _arrow(ax, tuple(a), tuple(b), c, lw=1.8, alpha=0.9)
        _label_groups(ax, info.levels, ppz, lo, hi)
    else:
        _arrows(ax, npz[ok], ppz[ok], cmap(norm(sizes[ok])))
    ax.scatter([pop[0]], [pop[1]], marker="X", s=120, color="C3", edgecolors="w", zorder=6, gid="population-mean",
               label="average " + info.factor + " (fixed effects): centre of the ellipses")
    ax.scatter([cpool[ks[0]]], [cpool[ks[1]]], marker="P", s=90, color="C1", edgecolors="k", zorder=5,
               gid="complete-pooling", label=f"complete pooling: one line for all {info.factor}s")
    ax.plot([], [], color="0.25", lw=1.1, label=f"fitted distribution of the {info.factor}s (50 %, 95 %)")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel(coef_words(c0, info.factor))
    ax.set_ylabel(coef_words(c1, info.factor))
    ax.set_title(f"{info.label}: each {info.factor} moves from its own line towards the average", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.11), ncol=1, frameon=False)
    return sc


def plot_shrinkage(fit, term: str | None = None, coef=None, *, view: str = "auto", ax=None, figsize=None):
    """No pooling against partial pooling for each group of a group term.

    For one coefficient (a random intercept) two panels: the chapter's
    ``plot(ef, er); abline(0, 1)`` (no-pooling estimate against posterior mean, with
    the 1:1 line) and an arrow view (no pooling → partial pooling against group size,
    complete pooling dashed), where small groups visibly move most.  For an
    intercept + slope term the default is the 2-D view: each group an arrow from its
    no-pooling (intercept, slope) to its posterior mean, the population mean, and the
    50 %/95 % ellipses of the fitted group-level normal distribution.

    Parameters
    ----------
    fit : HierFit
    term : str, optional
        Grouping factor (``"school"``); needed when the model has several.
    coef : str or pair of str, optional
        The coefficient for the 1-D views (default the first, usually ``(Intercept)``),
        or two coefficients for the 2-D view (default the first two).
    view : {"auto", "both", "scatter", "arrows", "2d"}
        ``auto`` is ``2d`` for terms with a slope and ``both`` otherwise.
    ax : matplotlib Axes, optional
        One Axes for ``scatter``, ``arrows`` or ``2d``; two for ``both``.
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_shrinkage(term="school")  # doctest: +SKIP
    >>> fig.savefig("shrinkage.png")  # doctest: +SKIP
    """
    if view not in _VIEWS:
        raise HierfitError(f"view must be one of {', '.join(_VIEWS)}, got {view!r}")
    info = resolve_term(fit, term)
    if view == "auto":
        view = "2d" if info.q >= 2 and (coef is None or not isinstance(coef, str)) else "both"
    if view == "2d":
        if info.q < 2:
            raise HierfitError(f"the 2-D shrinkage view needs a term with an intercept and a slope; "
                               f"{info.label} has only {info.coefs[0]} (use view='both')")
        names = list(coef) if coef is not None and not isinstance(coef, str) else info.coefs[:2]
        if isinstance(coef, str) or len(names) != 2:
            raise HierfitError(f"the 2-D view needs two coefficients, e.g. coef={tuple(info.coefs[:2])!r}")
        ks = [info.coef_index(c) for c in names]
    else:
        if coef is not None and not isinstance(coef, str):
            raise HierfitError(f"view={view!r} shows one coefficient; pass coef as a string such as {info.coefs[0]!r}")
        k = info.coef_index(coef) if coef is not None else 0

    npool = no_pooling(fit, info.factor).to_numpy()
    ppool = partial_draws(fit, info).mean(axis=0)
    cpool = complete_pooling(fit, info.factor).to_numpy()
    sizes = group_sizes(info)
    norm = _size_norm(sizes)

    if view == "2d":
        fig, axes = figure_and_axes(ax, 1, figsize=figsize or (7.6, 6.6), what="view='2d'")
        sc = _two_d_panel(axes[0], fit, info, ks, npool, ppool, cpool, sizes, norm)
    elif view == "both":
        fig, axes = figure_and_axes(ax, 2, figsize=figsize or (10.5, 4.3), what="view='both'")
        _scatter_panel(axes[0], info, info.coefs[k], npool[:, k], ppool[:, k], cpool[k], sizes, norm)
        sc = _arrows_panel(axes[1], info, info.coefs[k], npool[:, k], ppool[:, k], cpool[k], sizes, norm)
    else:
        fig, axes = figure_and_axes(ax, 1, figsize=figsize or (5.6, 4.4), what=f"view={view!r}")
        panel = _scatter_panel if view == "scatter" else _arrows_panel
        sc = panel(axes[0], info, info.coefs[k], npool[:, k], ppool[:, k], cpool[k], sizes, norm)
    if ax is None:
        _size_colorbar(fig, sc, axes, info.factor)
    return fig


def _path_panel(ax, path, k, norm, show_tau=True):
    import matplotlib as mpl
    from matplotlib.collections import LineCollection

    tau = path.tau[:, k]
    est = path.estimates[:, :, k]
    segs = [np.column_stack([tau, est[:, j]]) for j in range(est.shape[1])]
    lc = LineCollection(segs, cmap=mpl.colormaps[_CMAP], norm=norm, linewidths=0.9, alpha=0.85, gid="shrinkage-path")
    lc.set_array(path.sizes.astype(float))
    ax.add_collection(lc)
    ax.set_xscale("log")
    ax.set_xlim(tau[0], tau[-1])
    lo, hi = _robust_limits(path, k)
    npool = path.no_pooling[:, k]
    inside = np.isfinite(npool) & (npool >= lo) & (npool <= hi)
    ax.scatter(np.full(inside.sum(), tau[-1]), npool[inside], facecolors="none", edgecolors="0.3", s=14,
               lw=0.7, zorder=4, clip_on=False, gid="no-pooling", label="no pooling")
    ax.scatter([tau[0]], [path.complete[k]], marker="o", s=40, color="C3", zorder=5, clip_on=False,
               gid="complete-pooling", label="complete pooling")
    ax.scatter(np.full(len(path.levels), path.sd_mean[k]), path.partial[:, k], marker="_", s=40, color="k", lw=1,
               zorder=5, gid="partial-pooling", label="posterior means (at mean τ)")
    ax.set_ylim(lo, hi)
    leaving = int(np.sum(np.any((est < lo) | (est > hi), axis=0)))
    coef = path.coefs[k]
    # the annotations sit outside the plotting area, so they never cover a path
    ax.set_xlabel(f"spread of the {path.factor}s: sd τ of the {coef_words(coef, path.factor)} (log scale)")
    ax.set_ylabel(coef_words(coef, path.factor))
    ax.text(0.0, 1.01, "← complete pooling", transform=ax.transAxes, ha="left", va="bottom", fontsize=8, color="C3")
    ax.text(1.0, 1.01, "no pooling →", transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="0.3")
    if leaving:
        ax.text(0.5, 1.01, f"({leaving} {path.factor} path(s) leave the view)", transform=ax.transAxes,
                ha="center", va="bottom", fontsize=7, color="0.3")
    if show_tau:
        tw = ax.twinx()
        grid = np.geomspace(tau[0], tau[-1], 400)
        dens = kde_density(path.sd_draws[:, k], grid, lower=0.0)
        tw.fill_between(grid, dens, color="C1", alpha=0.3, lw=0, gid="tau-posterior", label="posterior density of τ")
        tw.plot(grid, dens, color="C1", lw=1)
        tw.axvline(path.sd_mean[k], color="C1", ls=":", lw=1.2, gid="tau-mean")
        tw.set_ylim(0, dens.max() * 3.2 if dens.max() > 0 else 1)
        tw.set_yticks([])
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = tw.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2,
                  frameon=False)
    else:
        ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    return lc


def _robust_limits(path, k: int) -> tuple[float, float]:
    """y-limits that show the posterior means, complete pooling and most no-pooling estimates."""
    npool = path.no_pooling[:, k]
    vals = [path.partial[:, k], [path.complete[k]]]
    if np.isfinite(npool).any():
        vals.append(np.nanquantile(npool, [0.03, 0.97]))
    vals = np.concatenate([np.asarray(v, dtype=float) for v in vals])
    lo, hi = float(np.min(vals)), float(np.max(vals))
    pad = 0.08 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def plot_shrinkage_path(fit, term: str | None = None, coef: str | None = None, *, tau=None, n: int = 100, ax=None,
                        figsize=None):
    """Each group's estimate as a function of the group-level sd τ, with the posterior of τ.

    The group term as an adaptive ridge: with τ → 0 every group gets the complete-
    pooling estimate, with large τ its own no-pooling estimate.  The posterior of τ
    (shaded, on the same axis) shows where the data put the prior's strength; the
    short black ticks are the posterior means, drawn at the posterior mean of τ.
    For Gaussian models the curves are the closed-form conditional posterior means
    given τ (σ at its posterior mean); for other families the conditional modes.
    For an intercept + slope term the covariance is scaled as a whole (one panel per
    coefficient; its x-axis is that coefficient's sd).

    Parameters
    ----------
    fit : HierFit
    term : str, optional
        Grouping factor.
    coef : str, optional
        Only this coefficient's panel (then ``ax`` may be one Axes).
    tau : array, optional
        Grid of sds of the term's first coefficient; default from complete to no pooling.
    n : int
        Grid size of the default grid.
    ax : Axes or sequence of Axes, optional
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_shrinkage_path(term="school")  # doctest: +SKIP
    """
    info = resolve_term(fit, term)
    ks = [info.coef_index(coef)] if coef is not None else list(range(info.q))
    path = shrinkage_path(fit, info.factor, tau=tau, n=n)
    if len(path.tau) < 2:
        raise HierfitError("tau must hold at least two values for a path")
    fig, axes = figure_and_axes(ax, len(ks), figsize=figsize or (5.6 * len(ks) + 0.8, 4.4), what="this plot")
    norm = _size_norm(path.sizes)
    lc = None
    for a, k in zip(axes, ks):
        lc = _path_panel(a, path, k, norm)
    fig.suptitle(f"{info.label}: estimates along the group-level sd"
                 + ("" if path.exact else " (conditional modes)"), fontsize=11)
    if ax is None:
        _size_colorbar(fig, lc, axes, info.factor)
    return fig


# -- Jupyter explorer -------------------------------------------------------------------------------
_INSTALL = ("explore_shrinkage needs ipywidgets (and Jupyter); install it with "
            "pip install 'hierfit[explore]' (or pip install ipywidgets)")


class _Explorer:
    """The explorer's figure: drawn once, then only the estimates, arrows and τ cursor move."""

    def __init__(self, path, k: int, tau: float):
        import matplotlib as mpl
        from matplotlib.figure import Figure

        self.path, self.k = path, k
        self.fig = Figure(figsize=(11, 4.4), layout="constrained")
        ax_a, ax_p = self.fig.subplots(1, 2)
        sizes = path.sizes
        norm = _size_norm(sizes)
        cmap = mpl.colormaps[_CMAP]
        self.x = _jitter(sizes.astype(float))
        npool = path.no_pooling[:, k]
        self.ok = np.isfinite(npool)
        est = path.at(tau, k)[:, k]
        ax_a.scatter(self.x[self.ok], npool[self.ok], facecolors="none", edgecolors="0.45", s=16, lw=0.8,
                     gid="no-pooling", label="no pooling")
        self.points = ax_a.scatter(self.x, est, c=sizes, cmap=_CMAP, norm=norm, s=18, edgecolors="k",
                                   linewidths=0.3, zorder=4, gid="estimate-at-tau", label="estimate at τ")
        ok = self.ok
        _arrows(ax_a, np.column_stack([self.x, npool])[ok], np.column_stack([self.x, est])[ok],
                cmap(norm(sizes[ok])))
        self.arrows = [a for a in ax_a.get_children() if a.get_gid() == "shrinkage-arrow"]
        ax_a.axhline(path.complete[k], color="C3", ls="--", lw=1, gid="complete-pooling", label="complete pooling")
        if sizes.max() > 3 * max(sizes.min(), 1):
            ax_a.set_xscale("log")
            _count_axis(ax_a.xaxis, self.x.min() / 1.1, self.x.max() * 1.1)
        ax_a.set_ylim(*_robust_limits(path, k))
        ax_a.set_xlabel(f"rows per {path.factor} (group size)")
        ax_a.set_ylabel(f"{path.coefs[k]} per {path.factor}")
        ax_a.legend(fontsize=8, loc="upper left", frameon=False)
        self.ax_a = ax_a
        _path_panel(ax_p, path, k, norm)
        self.cursor = ax_p.axvline(tau, color="k", lw=1.2, gid="tau-cursor")
        self.update(tau)

    def update(self, tau: float):
        est = self.path.at(tau, self.k)[:, self.k]
        self.points.set_offsets(np.column_stack([self.x, est]))
        npool = self.path.no_pooling[:, self.k]
        ok = self.ok
        starts, ends = np.column_stack([self.x, npool])[ok], np.column_stack([self.x, est])[ok]
        if len(self.arrows) == 1 and not hasattr(self.arrows[0], "set_positions"):  # a LineCollection
            self.arrows[0].set_segments(np.stack([starts, ends], axis=1))
        else:
            for arr, a, b in zip(self.arrows, starts, ends):
                arr.set_positions(tuple(a), tuple(b))
        self.cursor.set_xdata([tau, tau])
        self.ax_a.set_title(f"{self.path.label}: τ = {tau:.3g}", fontsize=10)
        return self.fig


def _explorer_figure(path, k: int, tau: float):
    """The explorer's picture at one τ (arrow view against group size, and the path with a cursor)."""
    return _Explorer(path, k, tau).fig


def explore_shrinkage(fit, term: str | None = None, coef: str | None = None, *, n: int = 200):
    """A slider over the group-level sd τ that redraws every group's estimate (Jupyter).

    The path is computed once (closed form for Gaussian models), so moving the slider
    only redraws.  Needs the optional ``ipywidgets`` (``pip install 'hierfit[explore]'``).

    Parameters
    ----------
    fit : HierFit
    term : str, optional
        Grouping factor.
    coef : str, optional
        Coefficient to show (default the first).
    n : int
        Grid points along τ.

    Returns
    -------
    ipywidgets.VBox
        Display it (the last line of a cell does).

    Example
    -------
    >>> fit.explore_shrinkage(term="school")  # in a notebook  # doctest: +SKIP
    """
    try:
        import ipywidgets as widgets
    except ImportError as err:
        raise HierfitError(_INSTALL) from err
    import io

    info = resolve_term(fit, term)
    k = info.coef_index(coef) if coef is not None else 0
    path = shrinkage_path(fit, info.factor, n=n)
    tau = path.tau[:, k]
    slider = widgets.FloatLogSlider(value=float(path.sd_mean[k]), base=10, min=float(np.log10(tau[0])),
                                    max=float(np.log10(tau[-1])), step=(np.log10(tau[-1]) - np.log10(tau[0])) / 200,
                                    description="τ", readout_format=".3g", continuous_update=True,
                                    layout=widgets.Layout(width="80%"))
    image = widgets.Image(format="png")
    explorer = _Explorer(path, k, slider.value)

    def redraw(change=None):
        # rendered to PNG here, so the widget works with any matplotlib backend
        buf = io.BytesIO()
        explorer.update(slider.value).savefig(buf, format="png", dpi=80)
        image.value = buf.getvalue()

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HTML(f"<b>{info.label}</b>: drag τ from complete pooling (left) to no pooling "
                                      "(right)"), slider, image])
