"""Collinear fixed effects found with one QR factorisation of X (O(n p^2)), as ``lm`` finds its NA coefficients.

Column ``j`` is aliased when the part of it that the earlier (non-aliased) columns do
not explain is below ``tol`` of its length: ``|R[j, j]| < tol * ||x_j||`` in the QR
factorisation ``X = QR`` (R's ``lm`` uses the same relative tolerance, 1e-7).
"""

from __future__ import annotations

import numpy as np

__all__ = ["aliased_columns", "TOLERANCE"]

#: Relative tolerance for a column to count as a linear combination of the earlier ones (lm's ``tol``).
TOLERANCE = 1e-7


def aliased_columns(X: np.ndarray, names: list[str], tol: float = TOLERANCE) -> list[tuple[str, list[str]]]:
    """Columns that are linear combinations of earlier ones, each with the earlier non-aliased columns.

    Example
    -------
    >>> x = np.arange(6.0)
    >>> aliased_columns(np.column_stack([np.ones(6), x, 2 * x + 1]), ["(Intercept)", "x", "z"])
    [('z', ['(Intercept)', 'x'])]
    """
    X = np.asarray(X, dtype=float)
    if X.shape[1] == 0:
        return []
    norms = np.sqrt((X**2).sum(axis=0))
    scale = np.where(norms > 0, norms, 1.0)
    Xs = X / scale
    kept: list[int] = []
    out: list[tuple[str, list[str]]] = []
    zero = norms <= np.finfo(float).tiny
    if X.shape[0] >= X.shape[1]:
        r = np.abs(np.diag(np.linalg.qr(Xs, mode="r")))
    else:  # more columns than rows: the columns beyond the rank are aliased too
        r = np.abs(np.diag(np.linalg.qr(Xs, mode="r"), k=0))
        r = np.concatenate([r, np.zeros(X.shape[1] - len(r))])
    for j in range(X.shape[1]):
        if zero[j] or r[j] < tol:
            out.append((names[j], [names[k] for k in kept]))
        else:
            kept.append(j)
    return out
