"""Small dense linear algebra on row-major q x q matrices held in flat arrays (numba), for the collapsed kernels.

Example
-------
>>> A = np.array([4.0, 2.0, 2.0, 3.0])
>>> cholesky(A, 2), A.tolist()
(True, [2.0, 0.0, 1.0, 1.4142135623730951])
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from hierfit.engine.kernel.scalar import JIT

__all__ = ["cholesky", "matmul", "lower_inverse", "chol_solve", "chol_inverse"]


@nb.njit(**JIT)
def cholesky(A, q):
    """In-place lower Cholesky factor of a q x q row-major matrix; False if not positive definite."""
    for a in range(q):
        for b in range(a + 1):
            s = A[a * q + b]
            for c in range(b):
                s -= A[a * q + c] * A[b * q + c]
            if a == b:
                if s <= 0.0:
                    return False
                A[a * q + a] = math.sqrt(s)
            else:
                A[a * q + b] = s / A[b * q + b]
        for b in range(a + 1, q):
            A[a * q + b] = 0.0
    return True


@nb.njit(**JIT)
def matmul(A, B, q):
    """A B of two q x q row-major matrices."""
    out = np.zeros(q * q)
    for a in range(q):
        for c in range(q):
            s = 0.0
            for t in range(q):
                s += A[a * q + t] * B[t * q + c]
            out[a * q + c] = s
    return out


@nb.njit(**JIT)
def lower_inverse(L, q, out):
    """Inverse of a lower-triangular q x q matrix (row-major) into out."""
    for a in range(q):
        for b in range(q):
            out[a * q + b] = 0.0
    for col in range(q):
        for a in range(col, q):
            s = 1.0 if a == col else 0.0
            for c in range(col, a):
                s -= L[a * q + c] * out[c * q + col]
            out[a * q + col] = s / L[a * q + a]


@nb.njit(**JIT)
def chol_solve(C, q, rhs, out, tmp):
    """out = A^-1 rhs for A = C C' (C lower, row-major q x q)."""
    for a in range(q):
        s = rhs[a]
        for c in range(a):
            s -= C[a * q + c] * tmp[c]
        tmp[a] = s / C[a * q + a]
    for a in range(q - 1, -1, -1):
        s = tmp[a]
        for c in range(a + 1, q):
            s -= C[c * q + a] * out[c]
        out[a] = s / C[a * q + a]


@nb.njit(**JIT)
def chol_inverse(C, q, work, out):
    """A^-1 = C^-T C^-1 for A = C C' (C lower, row-major q x q) into out; work is q x q scratch."""
    lower_inverse(C, q, work)
    for a in range(q):
        for c in range(q):
            s = 0.0
            for t in range(max(a, c), q):
                s += work[t * q + a] * work[t * q + c]
            out[a * q + c] = s
