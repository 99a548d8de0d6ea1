"""Exact draws of the group effects of a collapsed fit, one per posterior draw.

Every posterior draw of (b, Sigma, sigma) gets its group effects drawn from their
Gaussian conditional ``r_j | b, Sigma, sigma, y ~ N(M_j^-1 u_j, M_j^-1)`` (see
:mod:`hierfit.engine.collapsed`), outer levels first and then each inner level given
its outer one, from the per-level sufficient statistics of :mod:`hierfit.spec.layout`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import xarray as xr

from hierfit.memory import small_pages
from hierfit.results.draws import index_coords, stack, variable
from hierfit.spec.layout import collapsed_layout, sufficient_stats

__all__ = ["draw_group_effects", "ALGEBRA_ELEMENTS", "NORMAL_ELEMENTS"]

#: elements of Z'Z per block of the conditional draws' algebra (draws x levels x q^2)
ALGEBRA_ELEMENTS = 1.25e5
#: elements (draws x levels x q^2) per chunk of the random stream: the seed's normals are drawn chunk by chunk
NORMAL_ELEMENTS = 2e6


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


@numba.njit(cache=True, nogil=True)
def _one_factor_draws(sigma_inv, b, s2, Zy, ZX, ZZ, z, out):  # pragma: no cover - compiled
    """:func:`_conditional_chunk` for one grouping factor with q <= 2 coefficients, in one compiled sweep.

    The same closed forms as :func:`_gaussian_conditional`, element by element, without
    the (draws, levels, q, q) temporaries: ``out[s, k] ~ N(M^-1 w, M^-1)`` with
    ``M = Sigma_s^-1 + Z'Z_k / sigma_s^2`` and ``w = (Z'y_k - Z'X_k b_s) / sigma_s^2``.
    """
    S, K, q = out.shape
    p = b.shape[1]
    for s in range(S):
        v = s2[s]
        for k in range(K):
            w0 = Zy[k, 0]
            for j in range(p):
                w0 -= ZX[k, 0, j] * b[s, j]
            w0 = w0 / v
            a = sigma_inv[s, 0, 0] + ZZ[k, 0, 0] / v
            if q == 1:
                out[s, k, 0] = w0 / a + z[s, k, 0] / np.sqrt(a)
                continue
            w1 = Zy[k, 1]
            for j in range(p):
                w1 -= ZX[k, 1, j] * b[s, j]
            w1 = w1 / v
            c = sigma_inv[s, 0, 1] + ZZ[k, 0, 1] / v
            d = sigma_inv[s, 1, 1] + ZZ[k, 1, 1] / v
            det = a * d - c * c
            i11, i12, i22 = d / det, -c / det, a / det
            l11 = np.sqrt(i11)
            l21 = i12 / l11
            l22 = np.sqrt(max(i22 - l21 * l21, 0.0))
            out[s, k, 0] = i11 * w0 + i12 * w1 + l11 * z[s, k, 0]
            out[s, k, 1] = i12 * w0 + i22 * w1 + l21 * z[s, k, 0] + l22 * z[s, k, 1]


def _normal_shapes(lay, stats) -> list[tuple[int, ...]]:
    """Per posterior draw, the shapes of the standard normals one draw of the group effects uses, in order."""
    K, q = stats.Zy.shape
    if not lay.nested:
        return [(K, q)]
    return [(len(lay.starts) - 1, lay.q1), (K, q - lay.q1)]


def _conditional_chunk(lay, stats, sigma_inv, b, s2, z):
    """Exact draws of the stacked group effects for a block of posterior draws: (draws, levels, q) per factor.

    ``z`` holds the block's standard normals, shaped as :func:`_normal_shapes` says.
    """
    S = b.shape[0]
    K, q = stats.Zy.shape
    q1 = lay.q1
    zx_flat = stats.ZX.reshape(K * q, -1)
    zxb = (b @ zx_flat.T).reshape(S, K, q)  # (Z'X)_k b for every draw, by one matrix product
    w = (stats.Zy[None] - zxb) / s2[:, None, None]

    def zz(rows, cols):  # a block of Z'Z / sigma^2 for every draw: only the blocks used are made
        block = stats.ZZ[:, rows, cols]
        return block[None] / s2.reshape((-1,) + (1,) * block.ndim)

    if not lay.nested:
        M = sigma_inv[:, None] + zz(slice(None), slice(None))
        return [_gaussian_conditional(M, w, z[0])]
    heads = lay.starts[:-1]
    if q == q1 + 1:  # one inner coefficient: the same algebra with scalars instead of 1 x 1 matrices
        B = zz(slice(None, q1), q1)
        d = sigma_inv[:, None, q1, q1] + zz(q1, q1)
        Y = B / d[..., None]
        y2 = w[..., q1] / d
        Sj = sigma_inv[:, None, :q1, :q1] + np.add.reduceat(zz(slice(None, q1), slice(None, q1))
                                                            - B[..., :, None] * Y[..., None, :], heads, axis=1)
        cj = np.add.reduceat(w[..., :q1] - B * y2[..., None], heads, axis=1)
        u = _gaussian_conditional(Sj, cj, z[0])
        u_k = np.repeat(u, np.diff(lay.starts), axis=1)
        mean_part = w[..., q1] - (B * u_k).sum(axis=-1)
        v = (mean_part / d + z[1][..., 0] / np.sqrt(d))[..., None]
        unsorted = np.empty_like(v)
        unsorted[:, lay.order] = v
        return [u, unsorted]
    # arrow-shaped precision: first the outer effects with the inner ones integrated out, then each inner one
    D = sigma_inv[:, None, q1:, q1:] + zz(slice(q1, None), slice(q1, None))
    B = zz(slice(None, q1), slice(q1, None))
    Dinv = np.linalg.inv(D)
    Y = Dinv @ np.swapaxes(B, -1, -2)
    y2 = (Dinv @ w[..., q1:, None])[..., 0]
    Sj = sigma_inv[:, None, :q1, :q1] + np.add.reduceat(zz(slice(None, q1), slice(None, q1)) - B @ Y, heads, axis=1)
    cj = np.add.reduceat(w[..., :q1] - (B @ y2[..., None])[..., 0], heads, axis=1)
    u = _gaussian_conditional(Sj, cj, z[0])
    u_k = np.repeat(u, np.diff(lay.starts), axis=1)
    mean_part = w[..., q1:] - (np.swapaxes(B, -1, -2) @ u_k[..., None])[..., 0]
    v = _gaussian_conditional(D, mean_part, z[1])
    unsorted = np.empty_like(v)
    unsorted[:, lay.order] = v
    return [u, unsorted]


def _pipelined_draws(rng, chunk: int, shape: tuple, per_draw: tuple, per_level: tuple, out: np.ndarray) -> None:
    """:func:`_one_factor_draws` chunk by chunk: the compiled sweep of one chunk (no GIL) runs in a second thread while
    the next chunk's normals are drawn, in the order of the seed's stream.

    ``per_draw`` is ``(sigma_inv, b, s2)`` for every posterior draw, ``per_level`` ``(Zy, ZX, ZZ)``.
    """
    S = out.shape[0]
    with ThreadPoolExecutor(1) as pool:
        pending = None
        for lo in range(0, S, chunk):
            hi = min(S, lo + chunk)
            z = rng.standard_normal((hi - lo,) + shape)
            if pending is not None:
                pending.result()
            pending = pool.submit(_one_factor_draws, *(a[lo:hi] for a in per_draw), *per_level, z, out[lo:hi])
        if pending is not None:
            pending.result()


@small_pages()  # the draws are written once: huge pages would cost more to fault in than the draws (hierfit.memory)
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
    # The random stream is drawn in chunks of about 2e6 / (K q^2) posterior draws (its order fixes the
    # draws for a seed); the algebra runs on blocks of about ALGEBRA_ELEMENTS / (K q^2) draws, whose temporaries
    # (about 1 MB) stay in the processor's cache: 4-5x faster on thousands of levels.  Each block's draws are
    # written in place into their final arrays: no list of chunks, no concatenated copy (peak memory).
    chunk = max(1, int(NORMAL_ELEMENTS // max(K * q * q, 1)))
    block = max(1, int(ALGEBRA_ELEMENTS // max(K * q * q, 1)))
    shapes = _normal_shapes(lay, stats)
    factors = [(lay.outer, 0)] + ([(lay.inner, lay.q1)] if lay.nested else [])
    out_arrays = [{blk.key: np.empty((S, blk.n_levels, blk.n_coefs)) for blk in blocks} for blocks, _ in factors]
    compiled = not lay.nested and q <= 2  # one factor, q <= 2: one compiled sweep per chunk
    whole = None
    if compiled:
        whole = out_arrays[0][lay.outer[0].key] if len(lay.outer) == 1 else np.empty((S, K, q))
        ZX = stats.ZX if stats.ZX.shape[-1] else np.zeros((K, q, 1))
        bb = b if b.shape[1] else np.zeros((S, 1))
        _pipelined_draws(rng, chunk, shapes[0], (sigma_inv, bb, s2), (stats.Zy, ZX, stats.ZZ), whole)
    else:
        for lo in range(0, S, chunk):
            hi = min(S, lo + chunk)
            z = [rng.standard_normal((hi - lo,) + shape) for shape in shapes]
            for a in range(lo, hi, block):
                e = min(hi, a + block)
                parts = _conditional_chunk(lay, stats, sigma_inv[a:e], b[a:e], s2[a:e],
                                           [zi[a - lo:e - lo] for zi in z])
                for (blocks, offset), arrays, r in zip(factors, out_arrays, parts):
                    for blk in blocks:
                        start = lay.qstart[blk.key] - offset
                        arrays[blk.key][a:e] = r[:, :, start:start + blk.n_coefs]
    if compiled and len(lay.outer) > 1:
        for blk in lay.outer:
            start = lay.qstart[blk.key]
            out_arrays[0][blk.key][:] = whole[:, :, start:start + blk.n_coefs]
    out = posterior.copy()
    for (blocks, _), arrays in zip(factors, out_arrays):
        for blk in blocks:
            level, coef = f"{blk.key}__level", f"{blk.key}__coef"
            out = out.assign_coords(index_coords({level: blk.levels, coef: blk.coefs}))
            out[f"r_{blk.key}"] = variable(("chain", "draw", level, coef),
                                           arrays.pop(blk.key).reshape(chains, ndraw, blk.n_levels, blk.n_coefs))
    return out
