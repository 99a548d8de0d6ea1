"""Parameter transforms shared by the full and the collapsed kernels (numba).

* ``add_priors``: every parameter with its own prior (intercepts, slopes, sds, sigma,
  shape, nu), with PyMC's transforms (value = lower + exp(x), Jacobian x).
* ``vardec_forward`` / ``vardec_grad``: the collapsed model's variance decomposition (see
  :mod:`hierfit.engine.kernel.vardec`): the sampler's coordinates -> PyMC's, and the gradient back.
* ``block_scales`` / ``block_scales_grad``: a group block's sds and, for correlated
  blocks, the Cholesky factor of its correlation matrix from PyMC's CholeskyCorr
  transform, with the LKJ density and the transform's Jacobian; then the gradient back
  to the unconstrained vector.

Per-block buffers are flat: ``sd``/``norm`` hold k values from offset ``so``, ``Lc``/``L``
hold a row-major k x k matrix from offset ``lo``.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from hierfit.engine.kernel.codes import (B_CORR, B_ETA, B_K, B_L_MAP, B_L_POS, B_SD_IDX, H_NPRIOR, H_PRIORS, H_VARDEC,
                                      PRIOR_WIDTH, T_LOG, T_LOGIT)
from hierfit.engine.kernel.scalar import JIT, log1pexp, prior_logp, sigmoid


@nb.njit(**JIT)
def add_priors(x, grad, ints, floats):
    """Sum of the log priors of the parameters in the prior table, gradient added to ``grad``."""
    lp = 0.0
    base = ints[H_PRIORS]
    for r in range(ints[H_NPRIOR]):
        row = base + r * PRIOR_WIDTH
        pos, code, f, transform = ints[row], ints[row + 1], ints[row + 2], ints[row + 3]
        p1, p2, p3, lower, const = floats[f], floats[f + 1], floats[f + 2], floats[f + 3], floats[f + 4]
        if transform == T_LOG:
            e = math.exp(x[pos])
            val, d = prior_logp(code, lower + e, p1, p2, p3)
            lp += val + const + x[pos]
            grad[pos] += d * e + 1.0
        elif transform == T_LOGIT:  # PyMC's log-odds transform: Jacobian log v + log(1 - v)
            v = sigmoid(x[pos])
            val, d = prior_logp(code, v, p1, p2, p3)
            lp += val + const - log1pexp(-x[pos]) - log1pexp(x[pos])
            grad[pos] += d * v * (1.0 - v) + 1.0 - 2.0 * v
        else:
            val, d = prior_logp(code, x[pos], p1, p2, p3)
            lp += val + const
            grad[pos] += d
    return lp


@nb.njit(**JIT)
def _log_one_plus_ratios(y, ints, t, m):
    """log(1 + sum_k exp(2 w_k)) of the variance decomposition at ints[t], without overflow."""
    top = 0.0
    for k in range(m):
        top = max(top, 2.0 * y[ints[t + 2 + k]])
    s = math.exp(-top)
    for k in range(m):
        s += math.exp(2.0 * y[ints[t + 2 + k]] - top)
    return top + math.log(s)


@nb.njit(**JIT)
def vardec_forward(y, ints, x):
    """x = PyMC's unconstrained vector of the sampler's y: log sigma = u - log(1 + sum exp(2 w_k)) / 2, log sd_k = log sigma + w_k.

    u (at log sigma's position) is the log of the total sd sqrt(sigma^2 + sum sd_k^2),
    w_k (at log sd_k's) the log ratio sd_k / sigma.  The map has Jacobian determinant 1.
    """
    for i in range(y.shape[0]):
        x[i] = y[i]
    t = ints[H_VARDEC]
    m, a = ints[t], ints[t + 1]
    x[a] = y[a] - 0.5 * _log_one_plus_ratios(y, ints, t, m)
    for k in range(m):
        x[ints[t + 2 + k]] = x[a] + y[ints[t + 2 + k]]


@nb.njit(**JIT)
def vardec_grad(y, ints, grad):
    """Turn grad = d logp / dx into d logp / dy for :func:`vardec_forward` (in place)."""
    t = ints[H_VARDEC]
    m, a = ints[t], ints[t + 1]
    log_s = _log_one_plus_ratios(y, ints, t, m)
    g = grad[a]
    for k in range(m):
        g += grad[ints[t + 2 + k]]
    grad[a] = g
    for k in range(m):
        b = ints[t + 2 + k]
        grad[b] -= math.exp(2.0 * y[b] - log_s) * g


@nb.njit(**JIT)
def block_scales(x, ints, floats, brow, sd, Lc, L, norm, so, lo):
    """Fill sd, Lc (correlation Cholesky factor), L = diag(sd) Lc and the row norms; return the LKJ log density."""
    k = ints[brow + B_K]
    sd_idx = ints[brow + B_SD_IDX]
    for c in range(k):
        sd[so + c] = math.exp(x[ints[sd_idx + c]])
    for a in range(k):
        for b in range(k):
            Lc[lo + a * k + b] = 1.0 if a == b else 0.0
    if ints[brow + B_CORR] == 0:
        for a in range(k):
            norm[so + a] = 1.0
            for b in range(k):
                L[lo + a * k + b] = sd[so + a] if a == b else 0.0
        return 0.0
    lpos, lmap = ints[brow + B_L_POS], ints[brow + B_L_MAP]
    for t in range(k * (k - 1) // 2):
        Lc[lo + ints[lmap + 2 * t] * k + ints[lmap + 2 * t + 1]] = x[lpos + t]
    eta, const = floats[ints[brow + B_ETA]], floats[ints[brow + B_ETA] + 1]
    expo = 2.0 * eta + k - 1.0  # LKJ exponent 2 eta - 2 + k - i plus the transform's Jacobian i + 1 (1-based i)
    lp = const
    for a in range(k):
        s = 0.0
        for b in range(a + 1):
            s += Lc[lo + a * k + b] ** 2
        nrm = math.sqrt(s)
        norm[so + a] = nrm
        for b in range(k):
            Lc[lo + a * k + b] /= nrm
            L[lo + a * k + b] = sd[so + a] * Lc[lo + a * k + b]
        lp += expo * math.log(Lc[lo + a * k + a])
    return lp


@nb.njit(**JIT)
def block_scales_grad(grad, ints, floats, brow, sd, Lc, norm, so, lo, dL, dsd):
    """Gradient of the block's sds and correlations, from dL (wrt L) and dsd (wrt sd) at the same offsets."""
    k = ints[brow + B_K]
    if ints[brow + B_CORR]:
        eta = floats[ints[brow + B_ETA]]
        expo = 2.0 * eta + k - 1.0
        lpos, lmap = ints[brow + B_L_POS], ints[brow + B_L_MAP]
        dW = np.zeros(k * k)
        g = np.empty(k)
        for a in range(k):
            for b in range(a + 1):
                dsd[so + a] += dL[lo + a * k + b] * Lc[lo + a * k + b]
                g[b] = sd[so + a] * dL[lo + a * k + b]
            g[a] += expo / Lc[lo + a * k + a]
            dot = 0.0
            for b in range(a + 1):
                dot += g[b] * Lc[lo + a * k + b]
            for b in range(a + 1):
                dW[a * k + b] = (g[b] - dot * Lc[lo + a * k + b]) / norm[so + a]
        for t in range(k * (k - 1) // 2):
            grad[lpos + t] += dW[ints[lmap + 2 * t] * k + ints[lmap + 2 * t + 1]]
    sd_idx = ints[brow + B_SD_IDX]
    for c in range(k):
        grad[ints[sd_idx + c]] += dsd[so + c] * sd[so + c]
