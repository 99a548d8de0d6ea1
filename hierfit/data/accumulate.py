"""Compiled loops of the grouped pass: per-level sums of products of the design columns, in one sweep.

``np.bincount(index, weights=W[:, a] * W[:, c])`` for every pair of columns reads the
rows (k + 1) k / 2 times; :func:`add_cross` reads them once and adds every product to
its level in row order, the order in which ``bincount`` adds, so the sums are the same
to the last bit.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["add_cross", "count_nonfinite", "add_histogram"]


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
