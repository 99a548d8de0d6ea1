"""Compiled loops of the engine passes: per-level sums of products of the design columns, in one sweep;
histograms; the moments of a column.

``np.bincount(index, weights=W[:, a] * W[:, c])`` for every pair of columns reads the
rows (k + 1) k / 2 times; :func:`add_cross` reads them once and adds every product to
its level in row order, the order in which ``bincount`` adds, so the sums are the same
to the last bit.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["add_cross", "add_coded_cross", "add_coded_products", "count_nonfinite", "add_histogram", "column_moments",
           "mark_seen"]


@numba.njit(cache=True, nogil=True)
def add_cross(index, W, out):  # pragma: no cover - compiled
    """``out[index[i], a, c] += W[i, a] * W[i, c]`` for every row i and a <= c; then the lower triangle mirrored.

    Example
    -------
    >>> import numpy as np
    >>> out = np.zeros((2, 2, 2))
    >>> add_cross(np.array([0, 1, 1]), np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 4.0]]), out)
    >>> out[1].tolist()
    [[2.0, 7.0], [7.0, 25.0]]
    """
    n, k = W.shape
    for i in range(n):
        j = index[i]
        for a in range(k):
            wa = W[i, a]
            for c in range(a, k):
                out[j, a, c] += wa * W[i, c]
    for j in range(out.shape[0]):
        for a in range(k):
            for c in range(a + 1, k):
                out[j, c, a] = out[j, a, c]


@numba.njit(cache=True, nogil=True, inline="always")
def _coded_value(V, C, num_ref, ind_ref, u, i):  # pragma: no cover - compiled
    """Row i of the coded column u: its numeric factors multiplied in order, times its indicators (1.0 or 0.0)."""
    v = 1.0
    for t in range(num_ref.shape[1]):
        r = num_ref[u, t]
        if r < 0:
            break
        v = V[r, i] if t == 0 else v * V[r, i]
    for t in range(ind_ref.shape[1]):
        f = ind_ref[u, t, 0]
        if f < 0:
            break
        v = v * (1.0 if C[f, i] == ind_ref[u, t, 1] else 0.0)
    return v


@numba.njit(cache=True, nogil=True)
def add_coded_cross(V, C, index, num_ref, ind_ref, out, bad):  # pragma: no cover - compiled
    """:func:`add_cross` of the columns ``w_u`` built row by row from raw columns, without materialising them.

    ``w_u[i]`` is the product of ``V[r, i]`` over ``r`` in ``num_ref[u]`` (in that order,
    -1 ends; none: 1), times ``C[f, i] == l`` (as 1.0 or 0.0) for every ``(f, l)`` in
    ``ind_ref[u]`` (``f`` -1 ends).  Products by 1.0 are exact and the numeric factors
    are multiplied in the coder's order, so every ``w_u[i]`` and every sum equals what
    :func:`add_cross` gives for the materialised columns.  ``bad[u]`` counts the rows where
    ``w_u`` is NaN or infinite.

    Example
    -------
    >>> import numpy as np
    >>> V = np.array([[2.0, 3.0, 4.0]]); C = np.array([[0, 1, 1]])
    >>> num_ref = np.array([[-1], [0], [0]]); ind_ref = np.array([[[-1, 0]], [[-1, 0]], [[0, 1]]])
    >>> out = np.zeros((1, 3, 3)); bad = np.zeros(3, dtype=np.int64)
    >>> add_coded_cross(V, C, np.zeros(3, dtype=np.int64), num_ref, ind_ref, out, bad)
    >>> out[0].tolist()   # columns 1, x and x * (C == 1)
    [[3.0, 9.0, 7.0], [9.0, 29.0, 25.0], [7.0, 25.0, 25.0]]
    """
    n = index.shape[0]
    k = num_ref.shape[0]
    pairs = k * (k + 1) // 2
    pa = np.empty(pairs, dtype=np.int64)
    pc = np.empty(pairs, dtype=np.int64)
    p = 0
    for a in range(k):
        for c in range(a, k):
            pa[p], pc[p] = a, c
            p += 1
    packed = np.zeros((out.shape[0], pairs))  # the upper triangle of every level, contiguous
    w = np.empty(k)
    for i in range(n):
        for u in range(k):
            v = _coded_value(V, C, num_ref, ind_ref, u, i)
            if not np.isfinite(v):
                bad[u] += 1
            w[u] = v
        row = packed[index[i]]
        for p in range(pairs):
            row[p] += w[pa[p]] * w[pc[p]]
    for j in range(out.shape[0]):
        for p in range(pairs):
            out[j, pa[p], pc[p]] += packed[j, p]
            out[j, pc[p], pa[p]] = out[j, pa[p], pc[p]]


@numba.njit(cache=True, nogil=True)
def add_coded_products(V, C, index, num_ref, ind_ref, coef, out):  # pragma: no cover - compiled
    """``out[i] += sum_u w_u[i] * coef[index[i], u]``, the columns ``w_u`` built as in :func:`add_coded_cross`.

    A row whose index is negative (no level) gets nothing, as in :func:`hierfit.results.draws.linear_predictor`.

    Example
    -------
    >>> import numpy as np
    >>> V = np.array([[2.0, 3.0, 4.0]]); C = np.array([[0, 1, 1]])
    >>> num_ref = np.array([[-1], [0]]); ind_ref = np.array([[[0, 1]], [[-1, 0]]])
    >>> out = np.zeros(3)
    >>> add_coded_products(V, C, np.array([0, 0, 1]), num_ref, ind_ref, np.array([[1.0, 10.0], [2.0, 100.0]]), out)
    >>> out.tolist()   # (C == 1) * coef[., 0] + x * coef[., 1]
    [20.0, 31.0, 402.0]
    """
    n = index.shape[0]
    k = num_ref.shape[0]
    for i in range(n):
        j = index[i]
        if j < 0:
            continue
        acc = 0.0
        for u in range(k):
            acc += _coded_value(V, C, num_ref, ind_ref, u, i) * coef[j, u]
        out[i] += acc


@numba.njit(cache=True, nogil=True)
def count_nonfinite(W):  # pragma: no cover - compiled
    """Number of NaN or infinite values in every column of W.

    Example
    -------
    >>> import numpy as np
    >>> count_nonfinite(np.array([[1.0, np.nan], [np.inf, 2.0], [3.0, np.nan]])).tolist()
    [1, 2]
    """
    n, k = W.shape
    bad = np.zeros(k, dtype=np.int64)
    for i in range(n):
        for a in range(k):
            if not np.isfinite(W[i, a]):
                bad[a] += 1
    return bad


@numba.njit(cache=True, nogil=True)
def add_histogram(y, lo, span, hist):  # pragma: no cover - compiled
    """``hist[clip(int((y - lo) / span * bins), 0, bins - 1)] += 1`` for every value, without temporaries.

    The same bins as numpy's ``((y - lo) / span * bins).astype(int64)`` then ``clip``.

    Example
    -------
    >>> import numpy as np
    >>> hist = np.zeros(4)
    >>> add_histogram(np.array([0.0, 0.3, 0.99, 1.0, -2.0]), 0.0, 1.0, hist)
    >>> hist.tolist()
    [2.0, 1.0, 0.0, 2.0]
    """
    bins = hist.shape[0]
    for i in range(y.shape[0]):
        b = int((y[i] - lo) / span * bins)
        if b < 0:
            b = 0
        elif b > bins - 1:
            b = bins - 1
        hist[b] += 1.0


@numba.njit(cache=True, nogil=True)
def mark_seen(v, lo, seen):  # pragma: no cover - compiled
    """``seen[v[i] - lo] = True`` for every i (integers within ``lo .. lo + len(seen) - 1``).

    Example
    -------
    >>> import numpy as np
    >>> seen = np.zeros(4, dtype=bool)
    >>> mark_seen(np.array([7, 9, 7], dtype=np.int32), 7, seen)
    >>> seen.tolist()
    [True, False, True, False]
    """
    for i in range(v.shape[0]):
        seen[np.int64(v[i]) - lo] = True


@numba.njit(cache=True, nogil=True)
def column_moments(x):  # pragma: no cover - compiled
    """``(count, min, max, mean, sum of squared deviations)`` of a numeric array, in two sweeps, in float64.

    Example
    -------
    >>> import numpy as np
    >>> column_moments(np.array([1, 2, 3, 6], dtype=np.int32))
    (4, 1.0, 6.0, 3.0, 14.0)
    """
    n = x.shape[0]
    if n == 0:
        return 0, np.inf, -np.inf, 0.0, 0.0
    lo = hi = total = np.float64(x[0])
    for i in range(1, n):
        v = np.float64(x[i])
        total += v
        if v < lo:
            lo = v
        elif v > hi:
            hi = v
    mean = total / n
    m2 = 0.0
    for i in range(n):
        d = np.float64(x[i]) - mean
        m2 += d * d
    return n, lo, hi, mean, m2
