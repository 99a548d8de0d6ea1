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

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .draws import stack
from .errors import HierfitError

__all__ = ["collapsible", "collapsed_layout", "CollapsedLayout", "SufficientStats", "sufficient_stats", "build_collapsed_model", "draw_group_effects"]


@dataclass
class CollapsedLayout:
    """How the collapsed sampler groups the rows: one grouping factor, or an inner factor nested in an outer one.

    The group coefficients are stacked outer blocks first (``q1`` of them), then inner
    blocks; ``qstart`` gives each block's first column.  Inner levels are sorted by
    their outer level: inner level ``order[k]`` is the k-th, and the inner levels of
    outer level ``j`` are ``starts[j]:starts[j + 1]``.  With one factor the inner and
    outer levels coincide (``order`` is the identity).
    """

    outer: list
    inner: list
    inner_index: np.ndarray  # (n,) original inner level of each row
    order: np.ndarray  # (K,) original inner level at each sorted position
    starts: np.ndarray  # (J + 1,)
    q1: int
    qstart: dict

    @property
    def nested(self) -> bool:
        return bool(self.inner)

    @property
    def q(self) -> int:
        return sum(b.n_coefs for b in self.outer + self.inner)


def _nesting(design):
    """(outer factor, inner factor) when the design's two grouping factors are nested, else a reason."""
    blocks = design.blocks
    first = {}
    for b in blocks:
        first.setdefault(b.factor, b)
    if len(first) == 1:
        return next(iter(first.values())), None
    names = ", ".join(first)
    if len(first) > 2:
        return None, f"several grouping factors ({names}); the collapsed sampler handles one, or one nested in another"
    a, b = sorted(first.values(), key=lambda blk: blk.n_levels)
    pairs = np.unique(b.index.astype(np.int64) * a.n_levels + a.index)
    if len(pairs) != b.n_levels:  # some inner level meets two outer levels: crossed, not nested
        return None, (f"several grouping factors ({names}) that are crossed, not nested; the collapsed sampler "
                      "handles one, or one nested in another")
    return a, b


def collapsed_layout(design) -> CollapsedLayout:
    """The outer/inner grouping of a collapsible design (see :func:`collapsible`).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.design import build_design
    >>> lay = collapsed_layout(build_design("normexam ~ standLRT + (1 | school/student)", hierfit.datasets.load("exam")))
    >>> lay.nested, lay.q1, len(lay.starts) - 1, len(lay.order)
    (True, 1, 65, 4055)
    """
    outer_blk, inner_blk = _nesting(design)
    if outer_blk is None:
        raise HierfitError(f"the collapsed sampler does not apply: {inner_blk}")
    outer = [b for b in design.blocks if b.factor == outer_blk.factor]
    inner = [b for b in design.blocks if inner_blk is not None and b.factor == inner_blk.factor]
    qstart, start = {}, 0
    for b in outer + inner:
        qstart[b.key] = start
        start += b.n_coefs
    J = outer_blk.n_levels
    if inner_blk is None:
        K, inner_index, outer_of = J, outer_blk.index, np.arange(J)
    else:
        K, inner_index = inner_blk.n_levels, inner_blk.index
        outer_of = np.zeros(K, dtype=np.int64)
        outer_of[inner_blk.index] = outer_blk.index
    order = np.argsort(outer_of, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(outer_of, minlength=J))])
    return CollapsedLayout(outer, inner, np.asarray(inner_index), order, starts,
                           sum(b.n_coefs for b in outer), qstart)


def collapsible(design) -> tuple[bool, str]:
    """Whether the collapsed sampler applies, and why (not).

    It applies to Gaussian models (identity link, one residual sd) whose group terms
    use one grouping factor, or two factors of which one is nested in the other
    (``(1 | school/class)``, or two columns whose levels happen to nest).

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
    if not design.blocks:
        return False, "the model has no group terms"
    outer, inner = _nesting(design)
    if outer is None:
        return False, inner
    if inner is None:
        return True, f"Gaussian with one grouping factor ({outer.factor})"
    return True, f"Gaussian with {inner.factor} nested in {outer.factor}"


@dataclass
class SufficientStats:
    """Per-level sums the collapsed likelihood needs (K inner levels sorted by outer level, p fixed effects,
    q group coefficients, outer ones first; see :class:`CollapsedLayout`)."""

    n: np.ndarray  # (K,)
    yy: np.ndarray  # (K,)
    Xy: np.ndarray  # (K, p)
    XX: np.ndarray  # (K, p, p)
    Zy: np.ndarray  # (K, q)
    ZX: np.ndarray  # (K, q, p)
    ZZ: np.ndarray  # (K, q, q)


def sufficient_stats(design, layout: CollapsedLayout | None = None) -> SufficientStats:
    """Per-level sufficient statistics, computed in one pass over the rows (vectorised, O(n (p + q)^2)).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.design import build_design
    >>> s = sufficient_stats(build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam")))
    >>> s.n.sum(), s.XX.shape, s.ZZ.shape
    (np.int64(4059), (65, 2, 2), (65, 1, 1))
    """
    lay = layout if layout is not None else collapsed_layout(design)
    K = len(lay.order)
    position = np.empty(K, dtype=np.int64)
    position[lay.order] = np.arange(K)
    idx = position[lay.inner_index]
    y = design.y - (design.mu.offset if design.mu.offset is not None else 0.0)
    X = design.X
    Z = np.hstack([b.Z for b in lay.outer + lay.inner])
    W = np.hstack([X, Z, y[:, None]])
    k = W.shape[1]
    cross = np.zeros((K, k, k))
    # accumulate W_i W_i' per level without an n x k x k temporary
    for a in range(k):
        cross[:, a, :] = np.stack([np.bincount(idx, weights=W[:, a] * W[:, c], minlength=K) for c in range(k)], axis=1)
    p, q = X.shape[1], Z.shape[1]
    return SufficientStats(
        n=np.bincount(idx, minlength=K),
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

    lay = collapsed_layout(design)
    stats = sufficient_stats(design, lay)
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
    >>> from hierfit.design import build_design
    >>> from hierfit.priors import resolve_priors
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


def _conditional_chunk(lay, stats, sigma_inv, b, s2, rng):
    """Exact draws of the stacked group effects for a chunk of posterior draws: (draws, levels, q) per factor."""
    S = b.shape[0]
    K, q = stats.Zy.shape
    q1 = lay.q1
    zx_flat = stats.ZX.reshape(K * q, -1)
    zxb = (b @ zx_flat.T).reshape(S, K, q)  # (Z'X)_k b for every draw, by one matrix product
    w = (stats.Zy[None] - zxb) / s2[:, None, None]
    ZZ = stats.ZZ[None] / s2[:, None, None, None]
    if not lay.nested:
        M = sigma_inv[:, None] + ZZ
        return [_gaussian_conditional(M, w, rng.standard_normal(w.shape))]
    # arrow-shaped precision: first the outer effects with the inner ones integrated out, then each inner one
    D = sigma_inv[:, None, q1:, q1:] + ZZ[:, :, q1:, q1:]
    B = ZZ[:, :, :q1, q1:]
    Dinv = np.linalg.inv(D)
    Y = Dinv @ np.swapaxes(B, -1, -2)
    y2 = (Dinv @ w[..., q1:, None])[..., 0]
    heads = lay.starts[:-1]
    Sj = sigma_inv[:, None, :q1, :q1] + np.add.reduceat(ZZ[:, :, :q1, :q1] - B @ Y, heads, axis=1)
    cj = np.add.reduceat(w[..., :q1] - (B @ y2[..., None])[..., 0], heads, axis=1)
    u = _gaussian_conditional(Sj, cj, rng.standard_normal(cj.shape))
    u_k = np.repeat(u, np.diff(lay.starts), axis=1)
    mean_part = w[..., q1:] - (np.swapaxes(B, -1, -2) @ u_k[..., None])[..., 0]
    v = _gaussian_conditional(D, mean_part, rng.standard_normal(mean_part.shape))
    unsorted = np.empty_like(v)
    unsorted[:, lay.order] = v
    return [u, unsorted]


def draw_group_effects(posterior: xr.Dataset, design, seed: int | None) -> xr.Dataset:
    """Add ``r_<key>`` draws from their exact Gaussian conditional given b, Sigma, sigma and y to the posterior.

    One factor: ``r_j ~ N(M_j^-1 u_j, M_j^-1)``.  Nested factors: the outer effects
    from their conditional with the inner ones integrated out, then each inner level's
    effects given its outer level's.
    """
    rng = np.random.default_rng(seed)
    lay = collapsed_layout(design)
    stats = sufficient_stats(design, lay)
    chains, ndraw = posterior.sizes["chain"], posterior.sizes["draw"]
    b = stack(posterior, "b") if design.fixed_names else np.zeros((chains * ndraw, 0))
    s2 = stack(posterior, "sigma") ** 2
    S = b.shape[0]
    q = lay.q
    L = np.zeros((S, q, q))
    for blk in lay.outer + lay.inner:
        k, start = blk.n_coefs, lay.qstart[blk.key]
        sd = stack(posterior, f"sd_{blk.key}")
        if blk.is_correlated:
            lc = np.linalg.cholesky(stack(posterior, f"cor_{blk.key}") + 1e-12 * np.eye(k))
            L[:, start:start + k, start:start + k] = sd[:, :, None] * lc
        else:
            L[:, np.arange(start, start + k), np.arange(start, start + k)] = sd
    Linv = np.linalg.solve(L, np.eye(q)[None])
    sigma_inv = np.einsum("sji,sjk->sik", Linv, Linv)
    K = stats.n.shape[0]
    chunk = max(1, int(2e6 // max(K * q * q, 1)))  # about 16 MB temporaries: fast in cache
    parts = [[] for _ in range(2 if lay.nested else 1)]
    for lo in range(0, S, chunk):
        hi = min(S, lo + chunk)
        for acc, r in zip(parts, _conditional_chunk(lay, stats, sigma_inv[lo:hi], b[lo:hi], s2[lo:hi], rng)):
            acc.append(r)
    factors = [(lay.outer, np.concatenate(parts[0]), 0)]
    if lay.nested:
        factors.append((lay.inner, np.concatenate(parts[1]), lay.q1))
    out = posterior.copy()
    for blocks, r, offset in factors:
        for blk in blocks:
            k, start = blk.n_coefs, lay.qstart[blk.key] - offset
            out[f"r_{blk.key}"] = xr.DataArray(
                r[:, :, start:start + k].reshape(chains, ndraw, blk.n_levels, k),
                dims=("chain", "draw", f"{blk.key}__level", f"{blk.key}__coef"),
                coords={"chain": posterior["chain"], "draw": posterior["draw"], f"{blk.key}__level": blk.levels,
                        f"{blk.key}__coef": blk.coefs})
    return out
