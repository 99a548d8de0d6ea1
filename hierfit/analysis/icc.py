"""Variance components and the intraclass correlation (Nakagawa et al. 2017, ``performance::icc``).

Per posterior draw, on the link scale:

* s2_f: variance of the fixed-effect linear predictor over the fitted rows;
* s2_re: group-level variance, per group term the mean over rows of z' Sigma z
  (= the intercept variance for a random intercept; Johnson 2014);
* s2_e: the family's distribution-specific variance (sigma² for gaussian, pi²/3 for
  logit, log(1 + 1/lambda) for log-link counts; ``Family.link_scale_variance``).

A fit to rows aggregated exactly into counts (:mod:`hierfit.data.counts`) averages over
its original rows: each pattern as one of its rows, weighted by their number.

adjusted ICC = s2_re / (s2_re + s2_e) and conditional ICC = s2_re / (s2_f + s2_re + s2_e);
``by_group=True`` gives each term's share s2_re_g / (s2_re + s2_e).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.analysis.prepare import NA, prepare_draws
from hierfit.analysis.tables import summarise
from hierfit.errors import HierfitError
from hierfit.results.draws import stack
from hierfit.spec.layout import collapsed_layout

__all__ = ["block_cov", "variance_components", "icc"]


def block_cov(post, blk) -> np.ndarray:
    """Draws of a group term's covariance matrix, (S, k, k).

    Example
    -------
    >>> block_cov(fit.draws, fit.design.mu.blocks[0]).shape  # doctest: +SKIP
    (4000, 2, 2)
    """
    sd = stack(post, f"sd_{blk.key}")
    if blk.is_correlated:
        return stack(post, f"cor_{blk.key}") * sd[:, :, None] * sd[:, None, :]
    return np.einsum("si,ij->sij", sd**2, np.eye(blk.n_coefs))


def _components_from_sums(fit) -> dict:
    """Variance components of a Gaussian fit to engine data, from the per-level sums instead of the rows."""
    design = fit.design
    stats, post, n = design.summary.stats, fit.draws, design.summary.nobs
    if design.mu.offset_specs:
        raise HierfitError("variance components of an engine-data fit with an offset need the rows; compute them "
                           "on a sample")
    if not design.has_intercept:
        raise HierfitError("variance components of an engine-data fit without an intercept need the rows; compute "
                           "them on a sample")
    b = stack(post, "b")
    XX = stats.XX.sum(axis=0)
    sx = XX[design.fixed_names.index("(Intercept)")]
    s2_f = (np.einsum("si,ij,sj->s", b, XX, b) - (b @ sx) ** 2 / n) / (n - 1)
    ZZ = stats.ZZ.sum(axis=0)
    lay = collapsed_layout(design)
    random: dict[str, np.ndarray] = {}
    for blk in design.mu.blocks:
        k, start = blk.n_coefs, lay.qstart[blk.key]  # the statistics' column order
        random[blk.name if blk.name not in random else blk.key] = np.einsum(
            "sij,ij->s", block_cov(post, blk), ZZ[start:start + k, start:start + k] / n)
    return {"fixed": s2_f, "random": random, "residual": stack(post, "sigma") ** 2}


def variance_components(fit) -> dict:
    """Per-draw variance components of the mean's predictor: ``fixed``, ``random`` (per term), ``residual``.

    Example
    -------
    >>> vc = variance_components(fit); vc["random"]["school"].mean()  # doctest: +SKIP
    """
    design = fit.design
    post = fit.draws
    if not design.rows_held:
        return _components_from_sums(fit)  # data that stayed with an engine: from its sums
    w = None
    if design.aggregation is not None:  # rows aggregated into counts: the patterns,
        from hierfit.data.counts import pattern_rows               # each as one of its rows, weighted by their count

        rows, w = pattern_rows(design)
        marginal = prepare_draws(fit, rows, re_form=NA)
    else:
        marginal = prepare_draws(fit, None, re_form=NA)
    fixed = marginal.eta["mu"]
    n = fixed.shape[1] if w is None else w.sum()
    mean_f = np.average(fixed, axis=1, weights=w)
    s2_f = np.average((fixed - mean_f[:, None]) ** 2, axis=1, weights=w) * n / (n - 1)
    random: dict[str, np.ndarray] = {}
    for blk in design.mu.blocks:
        cov = block_cov(post, blk)
        Zw = blk.Z if w is None else blk.Z * w[:, None]
        zz = np.einsum("ni,nj->ij", Zw, blk.Z) / n
        random[blk.name if blk.name not in random else blk.key] = np.einsum("sij,ij->s", cov, zz)
    s2_re = sum(random.values()) if random else np.zeros_like(s2_f)
    fam = design.family
    s2_e = np.empty_like(s2_f)
    for s in range(len(s2_f)):
        dp = {k: v[s] for k, v in marginal.dpars.items()}
        mean_mu = float(np.average(fam.link.inv(fixed[s] + 0.5 * s2_re[s]), weights=w)) if fam.link.name == "log" \
            else float(np.average(marginal.mu[s], weights=w))
        s2_e[s] = fam.link_scale_variance(mean_mu, dp)
    return {"fixed": s2_f, "random": random, "residual": s2_e}


def icc(fit, by_group: bool = False, ci: float = 0.95, summary: bool = True):
    """Adjusted and conditional ICC with credible intervals (see :meth:`HierFit.icc`)."""
    if not fit.design.mu.blocks:
        raise HierfitError("the ICC needs a model with group terms for the mean; this one has none")
    vc = variance_components(fit)
    s2_re = sum(vc["random"].values())
    total_adj = s2_re + vc["residual"]
    if by_group:
        draws = np.column_stack([v / total_adj for v in vc["random"].values()])
        labels = pd.DataFrame({"Group": list(vc["random"])})
    else:
        draws = np.column_stack([s2_re / total_adj, s2_re / (total_adj + vc["fixed"])])
        labels = pd.DataFrame({"ICC": ["adjusted", "conditional"]})
    return summarise(draws, labels, ci, summary)
