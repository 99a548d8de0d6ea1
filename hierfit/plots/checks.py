"""Model checks (residuals, group effects, quantile residuals, posterior predictive).

Artists carry ``gid`` labels: ``"residuals"``, ``"smooth"``, ``"zero-line"``,
``"qq-points"``, ``"qq-line"``, ``"ranef-points"`` (one point per group),
``"reference-line"``, ``"trend-line"``, ``"identity-line"``, ``"quantile-line"``,
``"reference-quantile"``, ``"y-observed"``, ``"y-rep"`` and ``"cap-note"`` (the
figure text saying that not every group got a panel).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.errors import HierfitError
from hierfit.analysis.prepare import prepare_draws
from hierfit.plots.common import binned_smooth, cap_note, column_values, figure_and_axes, resolve_term

__all__ = ["plot_residuals", "plot_residuals_by_group", "plot_ranef_qq", "plot_ranef_vs", "plot_quantile_residuals"]


def _fitted_pearson(fit, re_form):
    """Posterior-mean fitted values and Pearson residuals of the training rows."""
    prepared = prepare_draws(fit, None, re_form=re_form)
    fitted = prepared.expected().mean(axis=0)
    sd = np.sqrt(prepared.variance().mean(axis=0))
    return fitted, (fit.design.y - fitted) / sd


def _which(re_form) -> str:
    return "conditional on the group effects" if re_form is None else f"re_form={re_form!r}"


def plot_residuals(fit, *, re_form=None, ax=None, figsize=None):
    """Residuals against fitted values, a normal QQ plot, and scale–location, in one figure.

    Residuals are Pearson residuals (response residuals divided by the model's sd,
    i.e. standardised residuals for Gaussian models), conditional on the group
    effects as in lme4's ``plot(mod)``.  The red curves are binned means (a smoother).
    For non-Gaussian families prefer :func:`plot_quantile_residuals`.

    Parameters
    ----------
    fit : HierFit
    re_form : None or hierfit.NA
        Conditional (default) or marginal residuals.
    ax : sequence of three Axes, optional
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_residuals()  # doctest: +SKIP
    """
    from scipy import stats

    fitted, res = _fitted_pearson(fit, re_form)
    resp = fit.design.response
    fig, axes = figure_and_axes(ax, 3, figsize=figsize or (13, 4.0), what="plot_residuals")
    a1, a2, a3 = axes
    a1.scatter(fitted, res, s=6, alpha=0.35, lw=0, color="C0", gid="residuals", rasterized=True)
    a1.axhline(0, color="0.3", lw=1, ls="--", gid="zero-line")
    sx, sy = binned_smooth(fitted, res)
    a1.plot(sx, sy, color="C3", lw=1.8, gid="smooth")
    a1.set_xlabel(f"fitted values ({resp})")
    a1.set_ylabel("Pearson residuals")
    a1.set_title("Residuals vs fitted", fontsize=10)

    n = len(res)
    theo = stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n)
    srt = np.sort(res)
    a2.scatter(theo, srt, s=6, alpha=0.5, lw=0, color="C0", gid="qq-points", rasterized=True)
    q1, q3 = np.quantile(res, [0.25, 0.75])
    t1, t3 = stats.norm.ppf([0.25, 0.75])
    slope = (q3 - q1) / (t3 - t1)
    a2.axline((t1, q1), slope=slope, color="C3", lw=1.2, gid="qq-line")
    a2.set_xlabel("standard normal quantiles")
    a2.set_ylabel("Pearson residuals (sorted)")
    a2.set_title("Normal Q-Q", fontsize=10)

    root = np.sqrt(np.abs(res))
    a3.scatter(fitted, root, s=6, alpha=0.35, lw=0, color="C0", gid="residuals", rasterized=True)
    sx, sy = binned_smooth(fitted, root)
    a3.plot(sx, sy, color="C3", lw=1.8, gid="smooth")
    a3.set_xlabel(f"fitted values ({resp})")
    a3.set_ylabel("√|Pearson residuals|")
    a3.set_title("Scale-location", fontsize=10)
    if ax is None:
        fig.suptitle(f"Residual checks of {fit.design.formula.text} ({_which(re_form)})", fontsize=10)
    return fig


def plot_residuals_by_group(fit, term: str | None = None, x: str = "fitted", *, re_form=None,
                            data: pd.DataFrame | None = None, max_panels: int = 20, levels=None, ncols: int = 5,
                            figsize=None):
    """Residuals against fitted values (or a predictor), one small panel per group.

    lme4's ``plot(mod, resid(.) ~ fitted(.) | school)``.  With many groups only
    ``max_panels`` are drawn (the first levels, or those given in ``levels``) and a
    note at the bottom of the figure says so.

    Parameters
    ----------
    fit : HierFit
    term : str, optional
        Grouping factor.
    x : str
        ``"fitted"`` or a predictor (a model column, or a column of ``data``).
    re_form : None or hierfit.NA
    data : DataFrame, optional
        The data the model was fitted to, for an ``x`` that is not in the model.
    max_panels : int
        At most this many panels.
    levels : list, optional
        The levels to show (default the first ``max_panels``).
    ncols : int
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_residuals_by_group(term="school", x="fitted")  # doctest: +SKIP
    """
    info = resolve_term(fit, term)
    fitted, res = _fitted_pearson(fit, re_form)
    if x == "fitted":
        xv, xlabel = fitted, f"fitted values ({fit.design.response})"
    else:
        xv = column_values(fit, x, data, purpose="plot_residuals_by_group")
        if isinstance(xv, pd.Categorical):
            raise HierfitError(f"x must be 'fitted' or a numeric column; {x!r} is a factor")
        xlabel = x
    if levels is None:
        chosen = list(range(min(info.n_levels, max_panels)))
    else:
        lookup = {lev: i for i, lev in enumerate(info.levels)}
        wanted = [str(v) for v in (levels if isinstance(levels, (list, tuple, np.ndarray, pd.Index)) else [levels])]
        unknown = [v for v in wanted if v not in lookup]
        if unknown:
            raise HierfitError(f"unknown level(s) {', '.join(map(repr, unknown[:5]))} of {info.factor!r}")
        chosen = [lookup[v] for v in wanted][:max_panels]
    n = len(chosen)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = figure_and_axes(None, n, ncols=ncols, figsize=figsize or (2.4 * ncols + 0.6, 2.0 * nrows + 0.9),
                                sharex=True, sharey=True)
    for a, j in zip(axes, chosen):
        sel = info.index == j
        a.scatter(xv[sel], res[sel], s=7, alpha=0.6, lw=0, color="C0", gid="residuals")
        a.axhline(0, color="0.4", lw=0.8, ls="--", gid="zero-line")
        a.set_title(f"{info.factor} {info.levels[j]}", fontsize=8, pad=2)
        a.tick_params(labelsize=7)
    fig.supxlabel(xlabel, fontsize=10)
    fig.supylabel("Pearson residuals", fontsize=10)
    title = f"Residuals by {info.factor} ({_which(re_form)})"
    if n < info.n_levels:
        title += "\n" + cap_note(n, info.n_levels, f"{info.factor}s",
                                 f"max_panels={max_panels}; choose others with levels=[...]")
    sup = fig.suptitle(title, fontsize=10)
    if n < info.n_levels:
        sup.set_gid("cap-note")
    return fig


def _ranef_summary(fit, info, k, ci):
    r = info.ranef_draws(fit.draws)[:, :, k]
    lo, hi = np.quantile(r, [(1 - ci) / 2, 1 - (1 - ci) / 2], axis=0)
    return r.mean(axis=0), lo, hi


def _coef_list(info, coef):
    if coef is None:
        return list(range(info.q))
    if isinstance(coef, str):
        return [info.coef_index(coef)]
    return [info.coef_index(c) for c in coef]


def plot_ranef_qq(fit, term: str | None = None, coef=None, *, ci: float = 0.95, ax=None, figsize=None):
    """Normal QQ plot of the group effects, with their posterior intervals.

    Sorted posterior means of the group effects (deviations, lme4's ``ranef()``)
    against standard normal quantiles, like lme4's ``qqmath(ranef(mod, condVar =
    TRUE))``.  The line is the fitted group-level distribution N(0, τ²) (τ at its
    posterior mean): points should scatter around it.

    Parameters
    ----------
    fit : HierFit
    term : str, optional
        Grouping factor.
    coef : str or list of str, optional
        Coefficients to show (default all, one panel each).
    ci : float
        Interval probability.
    ax : Axes or sequence of Axes, optional
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_ranef_qq(term="school")  # doctest: +SKIP
    """
    from scipy import stats

    info = resolve_term(fit, term)
    ks = _coef_list(info, coef)
    fig, axes = figure_and_axes(ax, len(ks), figsize=figsize, what="plot_ranef_qq")
    sd = info.sd_draws(fit.draws).mean(axis=0)
    J = info.n_levels
    theo = stats.norm.ppf((np.arange(1, J + 1) - 0.5) / J)
    for a, k in zip(axes, ks):
        mean, lo, hi = _ranef_summary(fit, info, k, ci)
        order = np.argsort(mean)
        a.errorbar(theo, mean[order], yerr=np.vstack([mean[order] - lo[order], hi[order] - mean[order]]), fmt="o",
                   ms=3.5, color="C0", ecolor="C0", elinewidth=0.7, alpha=0.85, gid="ranef-points",
                   label=f"posterior mean, {100 * ci:g} % interval")
        a.axline((0, 0), slope=float(sd[k]), color="C3", lw=1.2, gid="reference-line",
                 label=f"N(0, τ²), τ = {sd[k]:.3g}")
        a.axhline(0, color="0.6", lw=0.6)
        a.set_xlabel("standard normal quantiles")
        a.set_ylabel(f"{info.coefs[k]} effect ({info.factor})")
        a.set_title(f"{info.label}: Q-Q of the {info.coefs[k]} effects", fontsize=10)
        a.legend(fontsize=8, frameon=False, loc="upper left")
    return fig


def _group_summary(info, values):
    """Per-group mean of a numeric column, or per-group category (constant within groups) / share of a level.

    Means and shares are over the original rows: a fit aggregated into count patterns
    weights each pattern by its rows (``info.rows``).
    """
    idx = info.index
    J = info.n_levels
    w = np.ones(len(idx)) if info.rows is None else np.asarray(info.rows, dtype=float)
    n = np.bincount(idx, weights=w, minlength=J)
    if not isinstance(values, pd.Categorical):
        v = np.asarray(values, dtype=float)
        return np.bincount(idx, weights=w * v, minlength=J) / np.where(n > 0, n, 1.0), "mean", None
    codes = np.asarray(values.codes)
    cats = list(values.categories)
    constant = np.all([len(np.unique(codes[idx == j])) <= 1 for j in range(J)])
    if constant:
        first = np.full(J, -1)
        first[idx[::-1]] = codes[::-1]
        return pd.Categorical.from_codes(first, categories=cats), "category", cats
    if len(cats) == 2:
        share = np.bincount(idx, weights=w * (codes == 1), minlength=J) / n
        return share, f"proportion {cats[1]}", cats
    raise HierfitError(f"x is a factor with {len(cats)} levels that varies within groups; give a numeric column, "
                       "a two-level factor, or a factor that is constant within each group")


def plot_ranef_vs(fit, term: str | None = None, x: str | None = None, coef=None, *,
                  data: pd.DataFrame | None = None, ci: float = 0.95, ax=None, figsize=None):
    """Group effects against the group mean of a predictor.

    If the group effects trend with the group mean of ``x`` they are absorbing misfit
    that belongs in the fixed part (e.g. a contextual effect of the school's mean
    intake).  A numeric ``x`` is averaged per group (the line is a least-squares
    trend, its correlation in the legend); a two-level factor gives the share of its
    second level; a group-level factor (constant within groups, such as a school's
    type) gives one strip per category.

    Parameters
    ----------
    fit : HierFit
    term : str, optional
        Grouping factor.
    x : str
        A model column (``standLRT``), a factor of the model (``sex``), or, with
        ``data``, any column of the data.
    coef : str or list of str, optional
        Coefficients to show (default all).
    data : DataFrame, optional
        The data the model was fitted to, for columns that are not in the model.
    ci : float
    ax : Axes or sequence of Axes, optional
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_ranef_vs(term="school", x="standLRT")  # doctest: +SKIP
    >>> fig = fit.plot_ranef_vs(term="school", x="schgend", data=exam)  # doctest: +SKIP
    """
    info = resolve_term(fit, term)
    if x is None:
        raise HierfitError("plot_ranef_vs needs x=, a predictor whose group means to plot against")
    values = column_values(fit, x, data, purpose="plot_ranef_vs")
    gx, kind, cats = _group_summary(info, values)
    ks = _coef_list(info, coef)
    fig, axes = figure_and_axes(ax, len(ks), figsize=figsize, what="plot_ranef_vs")
    for a, k in zip(axes, ks):
        mean, lo, hi = _ranef_summary(fit, info, k, ci)
        err = np.vstack([mean - lo, hi - mean])
        label = f"{info.factor} (posterior mean, {100 * ci:g} % interval)"
        if kind == "category":
            codes = np.asarray(gx.codes)
            jitter = np.random.default_rng(0).uniform(-0.18, 0.18, len(codes))
            a.errorbar(codes + jitter, mean, yerr=err, fmt="o", ms=3.5, elinewidth=0.6, alpha=0.8, color="C0",
                       gid="ranef-points", label=label)
            for c in range(len(cats)):
                sel = codes == c
                if sel.any():
                    a.plot([c - 0.3, c + 0.3], [mean[sel].mean()] * 2, color="C3", lw=2, gid="trend-line")
            a.set_xticks(range(len(cats)), [str(c) for c in cats])
            a.set_xlabel(f"{x} of the {info.factor}")
        else:
            gxv = np.asarray(gx, dtype=float)
            a.errorbar(gxv, mean, yerr=err, fmt="o", ms=3.5, elinewidth=0.6, alpha=0.8, color="C0",
                       gid="ranef-points", label=label)
            if np.ptp(gxv) > 0:
                slope, icept = np.polyfit(gxv, mean, 1)
                r = np.corrcoef(gxv, mean)[0, 1]
                a.axline((0.0, icept), slope=slope, color="C3", lw=1.3, gid="trend-line",
                         label=f"least-squares trend (r = {r:.2f})")
            a.set_xlabel(f"{kind} {x} per {info.factor}" if kind == "mean" else f"{kind} ({x}) per {info.factor}")
        a.axhline(0, color="0.5", lw=0.8, ls="--", gid="zero-line")
        a.set_ylabel(f"{info.coefs[k]} effect ({info.factor})")
        a.set_title(f"{info.factor} {info.coefs[k]} effects vs {x}", fontsize=10)
        a.legend(fontsize=7.5, frameon=False, loc="best")
    return fig


def plot_quantile_residuals(fit, *, re_form=None, seed: int | None = 1, nsim: int | None = 1000, ax=None,
                            figsize=None, bins: int = 10):
    """DHARMa-style checks: a QQ-uniform plot and residuals against predictions with quantile lines.

    Quantile residuals are uniform on (0, 1) under a correct model, whatever the
    family.  Left: sorted residuals against uniform quantiles, with the 1:1 line
    and the Kolmogorov-Smirnov p-value.  Right: residuals against the rank-transformed
    predictions; the dashed lines are the 0.25, 0.5 and 0.75 quantiles expected
    under the model, the solid lines the residuals' quantiles within bins of the
    predictions (red where a bin deviates by more than 3 standard errors).

    Parameters
    ----------
    fit : HierFit
    re_form : None or hierfit.NA
        Conditional (default) or unconditional simulation (DHARMa's default).
    seed : int, optional
    nsim : int, optional
        Number of simulations.
    ax : sequence of two Axes, optional
    figsize : tuple, optional
    bins : int
        Bins along the predictions for the quantile lines.

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_quantile_residuals(seed=1)  # doctest: +SKIP
    """
    from hierfit.analysis.predict import quantile_residuals

    qr = quantile_residuals(fit, re_form=re_form, seed=seed, nsim=nsim)
    u = qr.residuals.dropna().to_numpy()
    n = len(u)
    fig, axes = figure_and_axes(ax, 2, figsize=figsize or (10.5, 4.3), what="plot_quantile_residuals")
    a1, a2 = axes
    expected = (np.arange(1, n + 1) - 0.5) / n
    a1.scatter(expected, np.sort(u), s=5, lw=0, alpha=0.6, color="C0", gid="qq-points", rasterized=True)
    a1.axline((0, 0), slope=1, color="C3", lw=1.2, gid="identity-line")
    a1.set_xlim(0, 1)
    a1.set_ylim(0, 1)
    a1.set_xlabel("expected (uniform quantiles)")
    a1.set_ylabel("observed quantile residuals")
    verdict = "" if qr.uniform else "  ← deviation"
    a1.set_title(f"QQ plot of quantile residuals\nKS test p = {qr.ks_pvalue:.3g}{verdict}", fontsize=10)

    from scipy.stats import rankdata

    xr = (rankdata(qr.fitted) - 0.5) / n
    a2.scatter(xr, u, s=5, lw=0, alpha=0.4, color="C0", gid="residuals", rasterized=True)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.searchsorted(edges, xr, side="right") - 1, 0, bins - 1)
    centers = 0.5 * (edges[1:] + edges[:-1])
    for q in (0.25, 0.5, 0.75):
        a2.axhline(q, color="0.3", ls="--", lw=0.9, gid="reference-quantile")
        qs = np.array([np.quantile(u[which == b], q) if (which == b).sum() >= 5 else np.nan for b in range(bins)])
        m = np.array([(which == b).sum() for b in range(bins)])
        se = np.sqrt(q * (1 - q) / np.maximum(m, 1))
        bad = np.nanmax(np.abs(qs - q) / se) > 3 if np.isfinite(qs).any() else False
        a2.plot(centers, qs, color="C3" if bad else "k", lw=1.6, marker="o", ms=3, gid="quantile-line")
    a2.set_xlim(0, 1)
    a2.set_ylim(0, 1)
    a2.set_xlabel(f"model predictions of {fit.design.response} (rank transformed)")
    a2.set_ylabel("quantile residuals")
    a2.set_title("Residuals vs predicted (quantile lines)", fontsize=10)
    if ax is None:
        kind = "conditional" if qr.conditional else "unconditional"
        fig.suptitle(f"Quantile residuals ({kind}, {qr.simulated.shape[0]} simulations)", fontsize=10)
    return fig
