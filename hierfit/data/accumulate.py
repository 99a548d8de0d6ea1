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

__all__ = ["add_cross", "add_coded_cross", "add_coded_products", "simple_refs", "add_simple_cross", "add_simple_products",
           "coded_cross", "coded_products", "unpack_cross", "lookup_levels", "count_nonfinite", "add_histogram",
           "add_sums", "column_moments", "mark_seen"]


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
def add_coded_cross(V, C, index, num_ref, ind_ref, packed, bad):  # pragma: no cover - compiled
    """:func:`add_cross` of the columns ``w_u`` built row by row from raw columns, without materialising them.

    ``w_u[i]`` is the product of ``V[r, i]`` over ``r`` in ``num_ref[u]`` (in that order,
    -1 ends; none: 1), times ``C[f, i] == l`` (as 1.0 or 0.0) for every ``(f, l)`` in
    ``ind_ref[u]`` (``f`` -1 ends).  The products are added to ``packed[index[i]]``, the
    upper triangle of each level row by row (:func:`unpack_cross` makes the matrices), so
    that rows swept in several blocks into the same ``packed`` add in the order of one
    sweep.  Products by 1.0 are exact and the numeric factors are multiplied in the
    coder's order, so every ``w_u[i]`` and every sum equals what :func:`add_cross` gives
    for the materialised columns.  ``bad[u]`` counts the rows where ``w_u`` is NaN or infinite.

    Example
    -------
    >>> import numpy as np
    >>> V = np.array([[2.0, 3.0, 4.0]]); C = np.array([[0, 1, 1]])
    >>> num_ref = np.array([[-1], [0], [0]]); ind_ref = np.array([[[-1, 0]], [[-1, 0]], [[0, 1]]])
    >>> packed = np.zeros((1, 6)); bad = np.zeros(3, dtype=np.int64)
    >>> add_coded_cross(V, C, np.zeros(3, dtype=np.int64), num_ref, ind_ref, packed, bad)
    >>> unpack_cross(packed, 3)[0].tolist()   # columns 1, x and x * (C == 1)
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


def unpack_cross(packed: np.ndarray, k: int) -> np.ndarray:
    """The symmetric ``(levels, k, k)`` matrices of the upper triangles that :func:`add_coded_cross` sums.

    Example
    -------
    >>> import numpy as np
    >>> unpack_cross(np.array([[1.0, 2.0, 3.0]]), 2)[0].tolist()
    [[1.0, 2.0], [2.0, 3.0]]
    """
    a, c = np.triu_indices(k)  # row by row: the order of the packed pairs
    out = np.empty((packed.shape[0], k, k))
    out[:, a, c] = packed
    out[:, c, a] = packed
    return out


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


def simple_refs(num_ref: np.ndarray, ind_ref: np.ndarray) -> np.ndarray | None:
    """``(k, 3)`` rows ``[numeric row or -1, factor row or -1, level]`` of recipes with at most one of each, else None.

    The columns of most designs (the intercept, a numeric column, an indicator, a slope
    within a level) are such products; :func:`add_simple_cross` and
    :func:`add_simple_products` sweep them without interpreting the recipes row by row.

    Example
    -------
    >>> import numpy as np
    >>> simple_refs(np.array([[-1], [0], [0]]), np.array([[[-1, 0]], [[-1, 0]], [[0, 1]]])).tolist()
    [[-1, -1, 0], [0, -1, 0], [0, 0, 1]]
    >>> simple_refs(np.array([[0, 1]]), np.array([[[-1, 0]]])) is None   # x:z, two numeric factors
    True
    """
    if (num_ref.shape[1] > 1 and (num_ref[:, 1] >= 0).any()) or (ind_ref.shape[1] > 1 and (ind_ref[:, 1, 0] >= 0).any()):
        return None
    ref = np.empty((num_ref.shape[0], 3), dtype=np.int64)
    ref[:, 0] = num_ref[:, 0]
    ref[:, 1] = ind_ref[:, 0, 0]
    ref[:, 2] = np.where(ind_ref[:, 0, 0] >= 0, ind_ref[:, 0, 1], 0)
    return ref


@numba.njit(cache=True, nogil=True)
def add_simple_cross(V, C, index, ref, packed, bad, shape):  # pragma: no cover - compiled
    """:func:`add_coded_cross` for :func:`simple_refs` columns: the same sums, bit for bit, about twice as fast.

    Column u's value in row i is ``V[ref[u, 0], i]`` (1 where -1) times
    ``C[ref[u, 1], i] == ref[u, 2]`` (where ``ref[u, 1]`` is not -1), as in :func:`add_coded_cross`.

    ``shape`` is a tuple of k zeros: its length is a constant of the compiled code, so the
    loops over the k columns and their pairs are unrolled (one compilation per k).

    Example
    -------
    >>> import numpy as np
    >>> V = np.array([[2.0, 3.0, 4.0]]); C = np.array([[0, 1, 1]])
    >>> ref = np.array([[-1, -1, 0], [0, -1, 0], [0, 0, 1]])
    >>> packed = np.zeros((1, 6)); bad = np.zeros(3, dtype=np.int64)
    >>> add_simple_cross(V, C, np.zeros(3, dtype=np.int64), ref, packed, bad, (0, 0, 0))
    >>> unpack_cross(packed, 3)[0].tolist()   # columns 1, x and x * (C == 1)
    [[3.0, 9.0, 7.0], [9.0, 29.0, 25.0], [7.0, 25.0, 25.0]]
    """
    n = index.shape[0]
    k = len(shape)
    w = np.empty(k)
    for i in range(n):
        for u in range(k):  # written out here: as a compiled helper, even inlined, it makes the sweep 5x slower
            r = ref[u, 0]
            v = 1.0 if r < 0 else V[r, i]
            if ref[u, 1] >= 0:
                v = v * (1.0 if C[ref[u, 1], i] == ref[u, 2] else 0.0)
            if not np.isfinite(v):
                bad[u] += 1
            w[u] = v
        row = packed[index[i]]
        p = 0
        for a in range(k):
            wa = w[a]
            for c in range(a, k):
                row[p] += wa * w[c]
                p += 1


@numba.njit(cache=True, nogil=True)
def add_simple_products(V, C, index, ref, coef, out, shape):  # pragma: no cover - compiled
    """:func:`add_coded_products` for :func:`simple_refs` columns (``shape``: k zeros, as in :func:`add_simple_cross`).

    Example
    -------
    >>> import numpy as np
    >>> V = np.array([[2.0, 3.0, 4.0]]); C = np.array([[0, 1, 1]])
    >>> ref = np.array([[-1, 0, 1], [0, -1, 0]])
    >>> out = np.zeros(3)
    >>> add_simple_products(V, C, np.array([0, 0, 1]), ref, np.array([[1.0, 10.0], [2.0, 100.0]]), out, (0, 0))
    >>> out.tolist()   # (C == 1) * coef[., 0] + x * coef[., 1]
    [20.0, 31.0, 402.0]
    """
    n = index.shape[0]
    k = len(shape)
    for i in range(n):
        j = index[i]
        if j < 0:
            continue
        acc = 0.0
        for u in range(k):  # the value of column u, as in add_simple_cross
            r = ref[u, 0]
            v = 1.0 if r < 0 else V[r, i]
            if ref[u, 1] >= 0:
                v = v * (1.0 if C[ref[u, 1], i] == ref[u, 2] else 0.0)
            acc += v * coef[j, u]
        out[i] += acc


def coded_cross(V, C, index, num_ref, ind_ref, packed, bad) -> None:
    """:func:`add_coded_cross`, through :func:`add_simple_cross` where the columns are simple (same sums).

    Example
    -------
    >>> import numpy as np
    >>> packed = np.zeros((1, 3)); bad = np.zeros(2, dtype=np.int64)
    >>> coded_cross(np.array([[2.0, 3.0]]), np.zeros((0, 2), dtype=np.int64), np.zeros(2, dtype=np.int64),
    ...             np.array([[-1], [0]]), np.full((2, 1, 2), -1), packed, bad)
    >>> unpack_cross(packed, 2)[0].tolist()
    [[2.0, 5.0], [5.0, 13.0]]
    """
    ref = simple_refs(num_ref, ind_ref)
    if ref is None:
        add_coded_cross(V, C, index, num_ref, ind_ref, packed, bad)
    else:
        add_simple_cross(V, C, index, ref, packed, bad, (0,) * len(ref))


def coded_products(V, C, index, num_ref, ind_ref, coef, out) -> None:
    """:func:`add_coded_products`, through :func:`add_simple_products` where the columns are simple.

    Example
    -------
    >>> import numpy as np
    >>> out = np.zeros(2)
    >>> coded_products(np.array([[2.0, 3.0]]), np.zeros((0, 2), dtype=np.int64), np.array([0, 1]),
    ...                np.array([[-1], [0]]), np.full((2, 1, 2), -1), np.array([[1.0, 10.0], [0.0, 1.0]]), out)
    >>> out.tolist()
    [21.0, 3.0]
    """
    ref = simple_refs(num_ref, ind_ref)
    if ref is None:
        add_coded_products(V, C, index, num_ref, ind_ref, coef, out)
    else:
        add_simple_products(V, C, index, ref, coef, out, (0,) * len(ref))


@numba.njit(cache=True, nogil=True)
def lookup_levels(v, lo, table, out):  # pragma: no cover - compiled
    """``out[i] = table[v[i] - lo]`` for integer ids; False (out unfinished) at the first id outside the table or unknown.

    Example
    -------
    >>> import numpy as np
    >>> out = np.empty(3, dtype=np.int64)
    >>> lookup_levels(np.array([7, 9, 7], dtype=np.int32), 7, np.array([1, -1, 0]), out), out.tolist()
    (True, [1, 0, 1])
    >>> lookup_levels(np.array([8], dtype=np.int32), 7, np.array([1, -1, 0]), out)   # 8: not a level
    False
    """
    m = table.shape[0]
    for i in range(v.shape[0]):
        d = np.int64(v[i]) - lo
        if d < 0 or d >= m:
            return False
        t = table[d]
        if t < 0:
            return False
        out[i] = t
    return True


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
    """``hist[clip(int((y - lo) / span * bins), 0, bins - 1)] += 1`` for every finite value, without temporaries.

    The same bins as numpy's ``((y - lo) / span * bins).astype(int64)`` then ``clip``.  NaN
    and infinite values are left out (the passes refuse them with an error of their own).

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
        if not np.isfinite(y[i]):
            continue
        b = int((y[i] - lo) / span * bins)
        if b < 0:
            b = 0
        elif b > bins - 1:
            b = bins - 1
        hist[b] += 1.0


@numba.njit(cache=True, nogil=True)
def add_sums(y, sums):  # pragma: no cover - compiled
    """``sums[0] += y[i]`` and ``sums[1] += y[i] ** 2`` in float64, in row order: the same sums in blocks or at once.

    Example
    -------
    >>> import numpy as np
    >>> sums = np.zeros(2)
    >>> add_sums(np.array([1, 2, 3], dtype=np.float32), sums)
    >>> sums.tolist()
    [6.0, 14.0]
    """
    s0, s1 = sums[0], sums[1]
    for i in range(y.shape[0]):
        v = np.float64(y[i])
        s0 += v
        s1 += v * v
    sums[0], sums[1] = s0, s1


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
