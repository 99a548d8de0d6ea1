"""Prior against posterior densities (prior sensitivity).

Artists carry ``gid`` labels: ``"prior"`` (the prior density line) and
``"posterior"`` (the posterior density) in every panel.
"""

from __future__ import annotations

import numpy as np

from hierfit.results.draws import stack
from hierfit.errors import HierfitError
from hierfit.plots.common import kde_density, figure_and_axes, resolve_term

__all__ = ["plot_prior_posterior"]

_VARS = ("sd", "sigma", "b", "cor")


def _panels(fit, var: str, term: str | None):
    """(title, xlabel, posterior draws, prior logpdf or None, prior text, lower, upper) per panel."""
    from scipy import stats

    d = fit.design
    post = fit.draws
    pri = fit.priors
    out = []
    if var == "sd":
        blocks = resolve_term(fit, term).blocks if term is not None else list(d.blocks)
        if not blocks:
            raise HierfitError("the model has no group terms, so there are no group-level sds to plot")
        for blk in blocks:
            draws = stack(post, f"sd_{blk.key}")
            for k, c in enumerate(blk.coefs):
                dist = pri.sd[blk.name][k]
                out.append((f"{blk.name}: sd of {c}", f"sd_{blk.key}[{c}]", draws[:, k],
                            lambda x, dist=dist: np.exp(dist.logpdf(x, positive=True)), str(dist), 0.0, None))
    elif var == "sigma":
        if "sigma" not in post or pri.sigma is None:
            raise HierfitError(f"the model has no scalar sigma (family {d.family.name}"
                               f"{', sigma has its own formula' if 'sigma' in d.predictors else ''})")
        dist = pri.sigma
        out.append(("residual sd", "sigma", stack(post, "sigma"),
                    lambda x: np.exp(dist.logpdf(x, positive=True)), str(dist), 0.0, None))
    elif var == "b":
        b = stack(post, "b")
        for j, name in enumerate(d.fixed_names):
            if name == "(Intercept)":
                if "Intercept" in post and pri.intercept is not None:
                    dist = pri.intercept
                    out.append(("Intercept at the predictor means", "Intercept", stack(post, "Intercept"),
                                lambda x, dist=dist: np.exp(dist.logpdf(x, positive=False)), str(dist), None, None))
                continue
            dist = pri.b[name]
            out.append((f"fixed effect of {name}", f"b[{name}]", b[:, j],
                        lambda x, dist=dist: np.exp(dist.logpdf(x, positive=False)), str(dist), None, None))
    elif var == "cor":
        candidates = resolve_term(fit, term).blocks if term is not None else d.blocks
        blocks = [blk for blk in candidates if blk.is_correlated]
        if not blocks:
            raise HierfitError("the model has no correlated group terms (like (x | g)), so no correlations to plot")
        for blk in blocks:
            cor = stack(post, f"cor_{blk.key}")
            eta = pri.cor[blk.name].params[0]
            q = blk.n_coefs
            a = eta - 1 + q / 2  # marginal of one correlation under LKJ(eta): (r + 1) / 2 ~ Beta(a, a)
            for i in range(q):
                for j in range(i + 1, q):
                    out.append((f"{blk.name}: cor({blk.coefs[i]}, {blk.coefs[j]})",
                                f"cor_{blk.key}[{blk.coefs[i]}, {blk.coefs[j]}]", cor[:, i, j],
                                lambda x, a=a: stats.beta(a, a).pdf((x + 1) / 2) / 2, f"lkj({eta:g})", -1.0, 1.0))
    else:
        raise HierfitError(f"var must be one of {', '.join(_VARS)}, got {var!r}")
    if not out:
        raise HierfitError(f"the model has no parameters of class {var!r} to plot")
    return out


def plot_prior_posterior(fit, var: str = "sd", term: str | None = None, *, ax=None, figsize=None, label=None):
    """Prior and posterior densities, one panel per parameter of a class.

    With ``var="sd"`` (the default) the group-level sds: a teacher can refit with a
    tighter prior (e.g. ``{"sd": "exponential(10)"}``) and show that the posterior
    moves towards 0, so that the group effects shrink more (compare the two fits'
    :func:`plot_shrinkage`).

    Parameters
    ----------
    fit : HierFit
    var : {"sd", "sigma", "b", "cor"}
        Group-level sds, residual sd, fixed effects (the intercept at the predictor
        means, as the prior is set), or group-level correlations (LKJ marginal).
    term : str, optional
        Only this grouping factor's sds/correlations.
    ax : Axes or sequence of Axes, optional
        One per panel.
    figsize : tuple, optional
    label : str, optional
        Prefix for the panel titles (e.g. ``"tight prior"`` when comparing fits).

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> import hierfit
    >>> fig = hierfit.plot_prior_posterior(fit, var="sd")  # doctest: +SKIP
    """
    panels = _panels(fit, var, term)
    n = len(panels)
    fig, axes = figure_and_axes(ax, n, ncols=min(n, 3), figsize=figsize, what=f"plot_prior_posterior(var={var!r})")
    for a, (title, xlabel, draws, prior_pdf, prior_text, lower, upper) in zip(axes, panels):
        qlo, qhi = np.quantile(draws, [0.001, 0.999])
        span = qhi - qlo or max(abs(qhi), 1.0)
        lo = lower if lower is not None else qlo - 1.5 * span
        hi = upper if upper is not None else qhi + 1.5 * span
        if lower is not None and upper is None:
            hi = qhi * 1.6 if qhi > 0 else 1.0
        grid = np.linspace(lo, hi, 400)
        if lower is not None:
            grid = grid[grid >= lower]
        if lower is not None and upper is not None:
            dens = _reflect_both(draws, grid, lower, upper)
        else:
            dens = kde_density(draws, grid, lower=lower)
        a.fill_between(grid, dens, color="C0", alpha=0.35, lw=0, gid="posterior", label="posterior")
        a.plot(grid, dens, color="C0", lw=1.2)
        pdens = prior_pdf(grid)
        a.plot(grid, pdens, color="0.2", ls="--", lw=1.4, gid="prior", label=f"prior {prior_text}")
        a.set_xlim(grid[0], grid[-1])
        a.set_ylim(0, max(np.max(dens), np.max(np.where(np.isfinite(pdens), pdens, 0))) * 1.08 or 1.0)
        a.set_xlabel(xlabel)
        a.set_ylabel("density")
        a.set_title(f"{label}: {title}" if label else title, fontsize=10)
        a.legend(fontsize=8, frameon=False)
    return fig


def _reflect_both(draws, grid, lower, upper):
    from scipy.stats import gaussian_kde

    if np.ptp(draws) == 0:
        return np.zeros_like(grid)
    kde = gaussian_kde(draws)
    return kde(grid) + kde(2 * lower - grid) + kde(2 * upper - grid)
