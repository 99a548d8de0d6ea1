"""The collapsed sampler for Gaussian models with one grouping factor, or one nested in another.

For ``y_j = X_j b + Z_j r_j + e_j`` with ``r_j ~ N(0, Sigma)`` and ``e_j ~ N(0, sigma^2 I)``
the group effects integrate out exactly: ``y_j ~ N(X_j b, sigma^2 I + Z_j Sigma Z_j')``.
With Woodbury's identity the log-likelihood needs only per-group sufficient
statistics (X'X, X'y, y'y, Z'X, Z'Z, Z'y and n of each level), so the cost of a
gradient does not grow with the number of rows::

    M_j   = Sigma^-1 + Z_j'Z_j / sigma^2                 (q x q, one Cholesky per level)
    log|V_j| = log|M_j| + log|Sigma| + n_j log sigma^2
    e'V^-1 e = e'e / sigma^2 - u_j' M_j^-1 u_j,   u_j = Z_j'e_j / sigma^2

NUTS samples only the fixed effects, the sds, the LKJ correlation and sigma; every
posterior draw then gets its group effects drawn exactly from their Gaussian
conditional ``r_j | b, Sigma, sigma, y ~ N(M_j^-1 u_j, M_j^-1)``.  The posterior
has the same variables (``r_<key>`` included) as the non-centred sampler's.

With an inner factor nested in an outer one the same holds per outer level, whose
effects ``(u_j, v_j1, ..., v_jK)`` have an arrow-shaped ``M_j``: it is handled through
one ``q2 x q2`` matrix per inner level and the Schur complement per outer level
(:func:`nested_marginal_loglik`), never formed whole.
"""


from __future__ import annotations

import numpy as np

from hierfit.spec.layout import collapsed_layout, sufficient_stats

from hierfit.spec.layout import collapsed_layout, sufficient_stats

__all__ = ["build_collapsed_model", "marginal_loglik", "nested_marginal_loglik"]


def _sigma_chol(blocks, sds, chols):
    """Cholesky factor of the block-diagonal group-level covariance, as a PyTensor matrix."""
    import pytensor.tensor as pt

    q = sum(b.n_coefs for b in blocks)
    L = pt.zeros((q, q))
    start = 0
    for blk, sd, lc in zip(blocks, sds, chols):
        k = blk.n_coefs
        if lc is not None:
            L = pt.set_subtensor(L[start:start + k, start:start + k], sd[:, None] * lc)
        else:  # diagonal block, written element-wise (pt.diag has no compiled kernel)
            diag = np.arange(start, start + k)
            L = pt.set_subtensor(L[diag, diag], sd)
        start += k
    return L


def build_collapsed_model(design, priors):
    """The PyMC model with the group effects integrated out (same fixed-effect, sd, cor and sigma variables).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> from hierfit.spec.priors import resolve_priors
    >>> d = build_design("normexam ~ standLRT + (standLRT | school)", hierfit.datasets.load("exam"))
    >>> m = build_collapsed_model(d, resolve_priors(d))
    >>> sorted(v.name for v in m.free_RVs)
    ['Intercept', 'L_school', 'beta', 'sd_school', 'sigma']
    """
    import pymc as pm

    from hierfit.engine.model import fixed_part, vector_rv
    from hierfit.engine.pymc_priors import dist_rv
    from hierfit.spec.centring import coords_for

    lay = collapsed_layout(design)
    stats = sufficient_stats(design, lay)
    pp = priors.predictors["mu"]
    with pm.Model(coords=coords_for(design)) as model:
        b = fixed_part(design.mu, pp).b
        sds, chols = [], []
        for blk in design.blocks:
            sd = vector_rv(f"sd_{blk.key}", pp.sd[blk.name], f"{blk.key}__coef", positive=True)
            lc = None
            if blk.is_correlated:
                lc = pm.LKJCorr(f"L_{blk.key}", n=blk.n_coefs, eta=pp.cor[blk.name].params[0])
                pm.Deterministic(f"cor_{blk.key}", lc @ lc.T, dims=(f"{blk.key}__coef", f"{blk.key}__coef_bis"))
            sds.append(sd)
            chols.append(lc)
        sigma = dist_rv(priors.dpars["sigma"], "sigma", positive=True)
        by_key = {blk.key: (sd, lc) for blk, sd, lc in zip(design.blocks, sds, chols)}
        stacked = lay.outer + lay.inner  # the sufficient statistics' column order
        L = _sigma_chol(stacked, [by_key[blk.key][0] for blk in stacked], [by_key[blk.key][1] for blk in stacked])
        data = {nm: pm.Data(f"ss_{nm}", getattr(stats, nm).astype(float)) for nm in ("n", "yy", "Xy", "XX", "Zy", "ZX", "ZZ")}
        if lay.nested:
            outer_of = np.repeat(np.arange(len(lay.starts) - 1), np.diff(lay.starts))
            loglik = nested_marginal_loglik(b, L, sigma, data, lay.q, lay.q1, outer_of)
        else:
            loglik = marginal_loglik(b, L, sigma, data, lay.q)
        pm.Potential("y_marginal", loglik.sum())
    return model


def marginal_loglik(b, L, sigma, data: dict, q: int):
    """Per-level marginal log-likelihood (PyTensor), from the sufficient statistics in ``data``.

    ``b`` are the fixed effects, ``L`` the Cholesky factor of the group-level covariance,
    ``sigma`` the residual sd; ``data`` maps n, yy, Xy, XX, Zy, ZX, ZZ to tensors; ``q`` is
    the number of group coefficients (1 and 2 use closed forms).
    """
    import pytensor.tensor as pt

    s2 = sigma**2
    n = data["n"]
    if b.type.shape[0] != 0 and data["Xy"].type.ndim == 2:
        ee = data["yy"] - 2.0 * pt.dot(data["Xy"], b) + pt.einsum("jab,a,b->j", data["XX"], b, b)
        Ze = data["Zy"] - pt.einsum("jqp,p->jq", data["ZX"], b)
    else:
        ee, Ze = data["yy"], data["Zy"]
    ZZ = data["ZZ"] / s2
    u = Ze / s2
    logdet_sigma = 2.0 * pt.log(pt.diagonal(L)).sum()
    if q == 1:  # closed forms for one and two coefficients: cheap to compile, cheap to run
        m = 1.0 / L[0, 0] ** 2 + ZZ[:, 0, 0]
        logdet_M = pt.log(m)
        uMu = u[:, 0] ** 2 / m
    elif q == 2:
        l11, l21, l22 = L[0, 0], L[1, 0], L[1, 1]
        i11, i21, i22 = 1.0 / l11, -l21 / (l11 * l22), 1.0 / l22  # L^-1 (lower)
        a = i11**2 + i21**2 + ZZ[:, 0, 0]  # Sigma^-1 = L^-T L^-1, plus Z'Z / s2
        c = i21 * i22 + ZZ[:, 0, 1]
        d = i22**2 + ZZ[:, 1, 1]
        det = a * d - c**2
        logdet_M = pt.log(det)
        uMu = (d * u[:, 0] ** 2 - 2.0 * c * u[:, 0] * u[:, 1] + a * u[:, 1] ** 2) / det
    else:
        Linv = pt.linalg.solve_triangular(L, pt.eye(q), lower=True)
        M = (Linv.T @ Linv)[None, :, :] + ZZ
        C = pt.linalg.cholesky(M)
        w = pt.linalg.solve_triangular(C, u[:, :, None], lower=True)[:, :, 0]
        logdet_M = 2.0 * pt.log(pt.diagonal(C, axis1=1, axis2=2)).sum(axis=1)
        uMu = (w**2).sum(axis=1)
    quad = ee / s2 - uMu
    return -0.5 * (n * np.log(2 * np.pi) + logdet_M + logdet_sigma + n * pt.log(s2) + quad)


def nested_marginal_loglik(b, L, sigma, data: dict, q: int, q1: int, outer_of: np.ndarray):
    """Per-outer-level marginal log-likelihood (PyTensor) of an inner factor nested in an outer one.

    For outer level ``j`` the group effects are ``(u_j, v_j1, ..., v_jK)`` (outer, inner);
    their posterior precision has an arrow shape, so its determinant and solve reduce
    to one ``q2 x q2`` matrix ``D_k = Sigma_2^-1 + Z2_k'Z2_k / sigma^2`` per inner level
    and the Schur complement ``S_j = Sigma_1^-1 + sum_k (Z1_k'Z1_k / sigma^2 - B_k D_k^-1 B_k')``
    per outer level, with ``B_k = Z1_k'Z2_k / sigma^2``.  ``data`` holds the inner
    levels' sufficient statistics (sorted by outer level; ``outer_of`` gives it).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> from hierfit.spec.priors import resolve_priors
    >>> d = build_design("normexam ~ standLRT + (1 | school/student)", hierfit.datasets.load("exam"))
    >>> m = build_collapsed_model(d, resolve_priors(d))  # calls nested_marginal_loglik
    >>> [p.name for p in m.potentials]
    ['y_marginal']
    """
    import pytensor.tensor as pt

    s2 = sigma**2
    J = int(outer_of.max()) + 1 if len(outer_of) else 0
    counts = np.bincount(outer_of, minlength=J)
    if b.type.shape[0] != 0:
        ee = data["yy"] - 2.0 * pt.dot(data["Xy"], b) + pt.einsum("jab,a,b->j", data["XX"], b, b)
        Ze = data["Zy"] - pt.einsum("jqp,p->jq", data["ZX"], b)
    else:
        ee, Ze = data["yy"], data["Zy"]
    w = Ze / s2
    ZZ = data["ZZ"] / s2
    P = pt.linalg.solve_triangular(L, pt.eye(q), lower=True)
    P = P.T @ P
    D = P[None, q1:, q1:] + ZZ[:, q1:, q1:]
    B = ZZ[:, :q1, q1:]
    Dinv = pt.linalg.inv(D)
    Y = Dinv @ pt.swapaxes(B, 1, 2)  # D^-1 B'
    y2 = (Dinv @ w[:, q1:, None])[:, :, 0]
    logdet_D = 2.0 * pt.log(pt.diagonal(pt.linalg.cholesky(D), axis1=1, axis2=2)).sum(axis=1)
    by_outer = lambda v: pt.inc_subtensor(pt.zeros((J,) + tuple(v.shape[1:]))[outer_of], v)  # noqa: E731
    S = P[None, :q1, :q1] + by_outer(ZZ[:, :q1, :q1] - B @ Y)
    c = by_outer(w[:, :q1] - (B @ y2[:, :, None])[:, :, 0])
    CS = pt.linalg.cholesky(S)
    logdet_S = 2.0 * pt.log(pt.diagonal(CS, axis1=1, axis2=2)).sum(axis=1)
    quad_S = (c * (pt.linalg.inv(S) @ c[:, :, None])[:, :, 0]).sum(axis=1)
    diag = 2.0 * pt.log(pt.diagonal(L))
    logdet_1, logdet_2 = diag[:q1].sum(), diag[q1:].sum()
    n = by_outer(data["n"])
    inner = by_outer(logdet_D + ee / s2 - (w[:, q1:] * y2).sum(axis=1))
    return -0.5 * (n * np.log(2 * np.pi) + logdet_S + logdet_1 + counts * logdet_2 + n * pt.log(s2) + inner
                   - quad_S)
