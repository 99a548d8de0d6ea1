"""``check_model()``: a panel of model checks, like R's ``performance::check_model``.

Six panels: the posterior predictive density (or counts), the QQ plot of the quantile
residuals, quantile residuals against the predictions, the dispersion test's simulated
distribution, the zero-inflation test's (counts) or the residuals' histogram
(continuous), and a normal QQ plot of the group effects of the first term.  The title
of each test panel carries its plain-words verdict from
:func:`hierfit.analysis.checks.check_residuals`.
"""

from __future__ import annotations

import textwrap

import numpy as np

from hierfit.analysis.checks import residual_checks
from hierfit.plots.common import figure_and_axes
from hierfit.plots.ppc import replicate

__all__ = ["check_model"]


def _title(a, text: str, verdict: str) -> None:
    a.set_title(text + "\n" + textwrap.fill(verdict, 52), fontsize=8)


def check_model(fit, *, nsim: int = 500, ndraws: int = 50, seed: int | None = 1, figsize=None):
    """A figure of model checks with verdicts (performance::check_model for hierfit fits).

    Parameters
    ----------
    fit : HierFit
    nsim : int
        Simulated data sets for the residual tests.
    ndraws : int
        Replicated data sets in the posterior predictive panel.
    seed : int, optional
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.check_model()  # doctest: +SKIP
    """
    from scipy import stats

    checks = residual_checks(fit, nsim=nsim, seed=seed)
    tab = checks.table.set_index("test")
    fig, axes = figure_and_axes(None, 6, ncols=3, figsize=figsize or (13.5, 8.2), what="check_model")
    y, yrep = replicate(fit, ndraws, seed)
    a = axes[0]
    if checks.discrete:
        values = np.arange(int(y.min()), int(max(y.max(), np.quantile(yrep, 0.99))) + 1)
        a.bar(values, [(y == k).mean() for k in values], color="0.75", width=0.9, gid="y-observed", label="y")
        a.plot(values, [(yrep == k).mean() for k in values], "o-", color="C0", ms=3, gid="y-rep", label="y_rep")
        a.set_ylabel("relative frequency")
    else:
        kde = stats.gaussian_kde
        grid = np.linspace(min(y.min(), yrep.min()), max(y.max(), yrep.max()), 200)
        for s in range(yrep.shape[0]):
            a.plot(grid, kde(yrep[s])(grid), color="C0", alpha=0.2, lw=0.7, gid="y-rep")
        a.plot(grid, kde(y)(grid), color="k", lw=2, gid="y-observed", label="y")
        a.set_ylabel("density")
    a.legend(fontsize=7, frameon=False)
    a.set_title("Posterior predictive check\nmodel-predicted data should look like the observed data", fontsize=8)
    u = np.sort(checks.residuals)
    n = u.size
    a = axes[1]
    a.plot((np.arange(1, n + 1) - 0.5) / n, u, ".", ms=3, gid="residuals")
    a.plot([0, 1], [0, 1], color="C3", lw=1)
    a.set_xlabel("expected (uniform)")
    a.set_ylabel("quantile residual")
    _title(a, "Uniformity of quantile residuals", tab.loc["uniformity (KS)", "verdict"])
    a = axes[2]
    pred = yrep.mean(axis=0)
    a.scatter(stats.rankdata(pred) / n, checks.residuals, s=4, alpha=0.4, gid="residuals")
    for q in (0.25, 0.5, 0.75):
        a.axhline(q, color="0.4", ls="--", lw=0.8)
    a.set_xlabel("prediction (rank transformed)")
    a.set_ylabel("quantile residual")
    a.set_title("Residuals vs predicted\npoints should spread evenly around the dashed lines", fontsize=8)
    a = axes[3]
    ratio = tab.loc["dispersion", "statistic"]
    sim = checks.simulated_dispersion
    a.hist(sim, bins=30, color="C0", alpha=0.6, gid="simulated")
    a.axvline(ratio * sim.mean(), color="C3", lw=2, gid="observed")
    a.set_xlabel("variance of residuals (simulated; red: observed)")
    _title(a, "Dispersion", tab.loc["dispersion", "verdict"])
    a = axes[4]
    if checks.simulated_zeros is not None:
        a.hist(checks.simulated_zeros, bins=30, color="C0", alpha=0.6, gid="simulated")
        a.axvline(checks.observed_zeros, color="C3", lw=2, gid="observed")
        a.set_xlabel("number of zeros (simulated; red: observed)")
        _title(a, "Zero-inflation", tab.loc["zero-inflation", "verdict"])
    else:
        a.hist(checks.residuals, bins=20, color="C0", alpha=0.6, gid="residuals")
        a.set_xlabel("quantile residual")
        _title(a, "Outliers and residual distribution", tab.loc["outliers", "verdict"])
    a = axes[5]
    blocks = fit.design.all_blocks
    if blocks:
        blk = blocks[0]
        r = np.asarray(fit.draws[f"r_{blk.key}"]).mean(axis=(0, 1))[:, 0]
        theo = stats.norm.ppf((np.arange(1, r.size + 1) - 0.5) / r.size)
        a.plot(theo, np.sort(r), "o", ms=3, gid="group-effects")
        slope = np.std(r, ddof=1) if r.size > 1 else 1.0
        a.plot(theo, theo * slope + r.mean(), color="C3", lw=1)
        a.set_xlabel("normal quantiles")
        a.set_ylabel(f"{blk.coefs[0]} | {blk.name}")
        a.set_title(f"Normality of group effects ({blk.name})\npoints should lie along the line", fontsize=8)
    else:
        a.axis("off")
    fig.suptitle(f"Model checks: {fit.design.formula.text} ({fit.family.name})", fontsize=10)
    return fig
