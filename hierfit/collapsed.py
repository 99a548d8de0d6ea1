"""The collapsed sampler for Gaussian models with one grouping factor.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .draws import stack

__all__ = ["collapsible", "SufficientStats", "sufficient_stats", "build_collapsed_model", "draw_group_effects"]


def collapsible(design) -> tuple[bool, str]:
    """Whether the collapsed sampler applies, and why (not).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.design import build_design
    >>> collapsible(build_design("normexam ~ standLRT + (standLRT | school)", hierfit.datasets.load("exam")))
    (True, 'Gaussian with one grouping factor (school)')
    """
    fam = design.family
    if fam.name != "gaussian" or fam.link.name != "identity":
        return False, f"the {fam.name} family ({fam.link.name} link) has no closed-form marginal likelihood"
    if len(design.predictors) > 1:
        return False, "distributional formulas (e.g. sigma ~ x) make the residual variance vary by row"
    blocks = design.blocks
    if not blocks:
        return False, "the model has no group terms"
    factors = {b.factors for b in blocks}
    if len(factors) > 1:
        names = ", ".join(dict.fromkeys(b.factor for b in blocks))
        return False, f"several grouping factors ({names}); the collapsed sampler handles one"
    return True, f"Gaussian with one grouping factor ({blocks[0].factor})"


@dataclass
class SufficientStats:
    """Per-level sums the collapsed likelihood needs (J levels, p fixed effects, q group coefficients)."""

    n: np.ndarray  # (J,)
    yy: np.ndarray  # (J,)
    Xy: np.ndarray  # (J, p)
    XX: np.ndarray  # (J, p, p)
    Zy: np.ndarray  # (J, q)
    ZX: np.ndarray  # (J, q, p)
    ZZ: np.ndarray  # (J, q, q)


def _combined_Z(design) -> np.ndarray:
    return np.hstack([b.Z for b in design.blocks])


def sufficient_stats(design) -> SufficientStats:
    """Per-level sufficient statistics, computed in one pass over the rows (vectorised, O(n (p + q)^2)).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.design import build_design
    >>> s = sufficient_stats(build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam")))
    >>> s.n.sum(), s.XX.shape, s.ZZ.shape
    (np.int64(4059), (65, 2, 2), (65, 1, 1))
    """
    idx = design.blocks[0].index
    J = design.blocks[0].n_levels
    y = design.y - (design.mu.offset if design.mu.offset is not None else 0.0)
    X = design.X
    Z = _combined_Z(design)
    W = np.hstack([X, Z, y[:, None]])
    k = W.shape[1]
    cross = np.zeros((J, k, k))
    # accumulate W_i W_i' per level without an n x k x k temporary
    for a in range(k):
        cross[:, a, :] = np.stack([np.bincount(idx, weights=W[:, a] * W[:, c], minlength=J) for c in range(k)], axis=1)
    p, q = X.shape[1], Z.shape[1]
    return SufficientStats(
        n=np.bincount(idx, minlength=J),
        yy=cross[:, -1, -1],
        Xy=cross[:, :p, -1],
        XX=cross[:, :p, :p],
        Zy=cross[:, p:p + q, -1],
        ZX=cross[:, p:p + q, :p],
        ZZ=cross[:, p:p + q, p:p + q],
    )


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
    >>> from hierfit.design import build_design
    >>> from hierfit.priors import resolve_priors
    >>> d = build_design("normexam ~ standLRT + (standLRT | school)", hierfit.datasets.load("exam"))
    >>> m = build_collapsed_model(d, resolve_priors(d))
    >>> sorted(v.name for v in m.free_RVs)
    ['Intercept', 'L_school', 'beta', 'sd_school', 'sigma']
    """
    import pymc as pm

    from .model import _vector_rv, coords_for, fixed_part

    stats = sufficient_stats(design)
    pp = priors.predictors["mu"]
    with pm.Model(coords=coords_for(design)) as model:
        b = fixed_part(design.mu, pp).b
        sds, chols = [], []
        for blk in design.blocks:
            sd = _vector_rv(f"sd_{blk.key}", pp.sd[blk.name], f"{blk.key}__coef", positive=True)
            lc = None
            if blk.is_correlated:
                lc = pm.LKJCorr(f"L_{blk.key}", n=blk.n_coefs, eta=pp.cor[blk.name].params[0])
                pm.Deterministic(f"cor_{blk.key}", lc @ lc.T, dims=(f"{blk.key}__coef", f"{blk.key}__coef_bis"))
            sds.append(sd)
            chols.append(lc)
        sigma = priors.dpars["sigma"].to_pymc("sigma", positive=True)
        L = _sigma_chol(design.blocks, sds, chols)
        data = {nm: pm.Data(f"ss_{nm}", getattr(stats, nm).astype(float)) for nm in ("n", "yy", "Xy", "XX", "Zy", "ZX", "ZZ")}
        loglik = marginal_loglik(b, L, sigma, data, sum(blk.n_coefs for blk in design.blocks))
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


def _gaussian_conditional(M: np.ndarray, u: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Draws of N(M^-1 u, M^-1) from standard normals z, batched over leading axes (closed forms for q <= 2)."""
    q = M.shape[-1]
    if q == 1:
        m = M[..., 0, 0]
        return (u[..., 0] / m + z[..., 0] / np.sqrt(m))[..., None]
    if q == 2:
        a, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 1]
        det = a * d - c * c
        i11, i12, i22 = d / det, -c / det, a / det  # M^-1
        mean0 = i11 * u[..., 0] + i12 * u[..., 1]
        mean1 = i12 * u[..., 0] + i22 * u[..., 1]
        l11 = np.sqrt(i11)
        l21 = i12 / l11
        l22 = np.sqrt(np.maximum(i22 - l21 * l21, 0.0))
        return np.stack([mean0 + l11 * z[..., 0], mean1 + l21 * z[..., 0] + l22 * z[..., 1]], axis=-1)
    C = np.linalg.cholesky(M)
    mean = np.linalg.solve(M, u[..., None])[..., 0]
    # mean + C^-T z has covariance M^-1
    return mean + np.linalg.solve(np.swapaxes(C, -1, -2), z[..., None])[..., 0]


def draw_group_effects(posterior: xr.Dataset, design, seed: int | None) -> xr.Dataset:
    """Add ``r_<key>`` draws from r_j | b, Sigma, sigma, y ~ N(M_j^-1 u_j, M_j^-1) to the posterior."""
    rng = np.random.default_rng(seed)
    stats = sufficient_stats(design)
    chains, ndraw = posterior.sizes["chain"], posterior.sizes["draw"]
    b = stack(posterior, "b") if design.fixed_names else np.zeros((chains * ndraw, 0))
    s2 = stack(posterior, "sigma") ** 2
    S = b.shape[0]
    blocks = design.blocks
    q = sum(blk.n_coefs for blk in blocks)
    L = np.zeros((S, q, q))
    start = 0
    for blk in blocks:
        k = blk.n_coefs
        sd = stack(posterior, f"sd_{blk.key}")
        if blk.is_correlated:
            lc = np.linalg.cholesky(stack(posterior, f"cor_{blk.key}") + 1e-12 * np.eye(k))
            L[:, start:start + k, start:start + k] = sd[:, :, None] * lc
        else:
            L[:, np.arange(start, start + k), np.arange(start, start + k)] = sd
        start += k
    eye = np.eye(q)
    Linv = np.linalg.solve(L, eye[None])
    sigma_inv = np.einsum("sji,sjk->sik", Linv, Linv)
    J = stats.n.shape[0]
    r = np.empty((S, J, q))
    ZX_flat = stats.ZX.reshape(J * q, -1)
    chunk = max(1, int(2e6 // max(J * q * q, 1)))  # about 16 MB temporaries: fast in cache
    for lo in range(0, S, chunk):
        hi = min(S, lo + chunk)
        M = sigma_inv[lo:hi, None] + stats.ZZ[None] / s2[lo:hi, None, None, None]
        zxb = (b[lo:hi] @ ZX_flat.T).reshape(hi - lo, J, q)  # (Z'X)_j b for every draw, by one matrix product
        u = (stats.Zy[None] - zxb) / s2[lo:hi, None, None]
        z = rng.standard_normal(u.shape)
        r[lo:hi] = _gaussian_conditional(M, u, z)
    out = posterior.copy()
    start = 0
    for blk in blocks:
        k = blk.n_coefs
        out[f"r_{blk.key}"] = xr.DataArray(
            r[:, :, start:start + k].reshape(chains, ndraw, J, k),
            dims=("chain", "draw", f"{blk.key}__level", f"{blk.key}__coef"),
            coords={"chain": posterior["chain"], "draw": posterior["draw"], f"{blk.key}__level": blk.levels,
                    f"{blk.key}__coef": blk.coefs})
        start += k
    return out
