"""The log densities, with exact gradients, of the two model kinds (numba).

Full model (group effects sampled)::

    eta_p = offset + Intercept + Xc beta + sum_blocks Z r[g]          for each predictor p (mu, sigma, ...)
    r_j   = L z_j, z_j ~ N(0, I)                 non-centred, L = diag(sd) Lc
    r_j   = gamma_j - m_j, gamma_j ~ N(m_j, L L')  centred; m_j = M_j (Intercept, beta)
    y_i   ~ family(linkinv(eta_mu_i), dpars_i),  dpar = lower + exp(eta_dpar) or a parameter

Collapsed model (Gaussian, one grouping factor or one nested in another; see hierfit.engine.collapsed): the group
effects integrated out with Woodbury's identity on per-level sufficient statistics.

The posterior's variables (b, sd, cor, r, ...) are computed from the unconstrained
draws afterwards, in numpy (hierfit.engine.kernel.generated).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from hierfit.engine.kernel.codes import (
    B_QSTART, B_RUNS, H_CONST_SUM, H_K, H_Q1, H_SS_START, H_VARDEC, B_CENTERED, B_CORR, B_INDEX, B_J, B_K, B_MEAN,
    B_ONES, B_PARAM_POS, B_PRED, B_Z, BLOCK_WIDTH, D_WHERE, H_BLOCKS, H_DPARS, H_FAMILY, H_J, H_LINK, H_N, H_NBLOCK,
    H_NDIM, H_NPRED, H_P, H_PREDS, H_Q, H_ROW_AUX, H_ROW_CONST, H_SS_N, H_SS_XX, H_SS_XY, H_SS_YY, H_SS_ZX, H_SS_ZY,
    H_SS_ZZ, H_TRIALS, H_Y, PR_BETA_IDX, PR_FIXED_MAP, PR_HAS_INT, PR_INT_POS, PR_NFIXED, PR_OFFSET, PR_P, PR_X,
    PR_XMEAN, PRED_WIDTH, SRC_PARAM,
)
from hierfit.engine.kernel.codes import (BERNOULLI, BINOMIAL, CUMULATIVE, GAUSSIAN, H_ADDITION, IDENTITY, LOG, LOGIT,
                                         POISSON)
from hierfit.engine.kernel.addition import addition_rows
from hierfit.engine.kernel.linalg import chol_inverse, chol_solve, cholesky, lower_inverse, matmul
from hierfit.engine.kernel.likelihood import cumulative_rows, dpar_terms, dpar_value, read_dpars, row_loglik
from hierfit.engine.kernel.nested import nested_levels_scalar
from hierfit.engine.kernel.rows import logit_rows, poisson_log_rows
from hierfit.engine.kernel.scalar import JIT, LOG_2PI
from hierfit.engine.kernel.terms import add_priors, block_scales, block_scales_grad, vardec_forward, vardec_grad


# -- bookkeeping ------------------------------------------------------------------------------------------------------

@nb.njit(**JIT)
def block_offsets(ints):
    """Offsets of each block's k-vectors, k x k matrices and J x k effects in the flat buffers."""
    nblk, bt = ints[H_NBLOCK], ints[H_BLOCKS]
    so = np.zeros(nblk + 1, dtype=np.int64)
    lo = np.zeros(nblk + 1, dtype=np.int64)
    ro = np.zeros(nblk + 1, dtype=np.int64)
    for b in range(nblk):
        row = bt + b * BLOCK_WIDTH
        k, J = ints[row + B_K], ints[row + B_J]
        so[b + 1] = so[b] + k
        lo[b + 1] = lo[b] + k * k
        ro[b + 1] = ro[b] + J * k
    return so, lo, ro


@nb.njit(**JIT)
def theta_value(x, ints, prow, t):
    """(Intercept, beta_0, beta_1, ...) of a predictor, element t (0 for a missing intercept)."""
    if t == 0:
        return x[ints[prow + PR_INT_POS]] if ints[prow + PR_HAS_INT] else 0.0
    return x[ints[ints[prow + PR_BETA_IDX] + t - 1]]


@nb.njit(**JIT)
def theta_grad(grad, ints, prow, t, g):
    if t == 0:
        if ints[prow + PR_HAS_INT]:
            grad[ints[prow + PR_INT_POS]] += g
    else:
        grad[ints[ints[prow + PR_BETA_IDX] + t - 1]] += g


@nb.njit(**JIT)
def fixed_values(x, ints, floats, prow, b):
    """b on the original scale (lme4's fixed effects) from the centred intercept and the slopes."""
    P = ints[prow + PR_P]
    intercept = theta_value(x, ints, prow, 0)
    xmean = ints[prow + PR_XMEAN]
    for k in range(P):
        intercept -= floats[xmean + k] * theta_value(x, ints, prow, 1 + k)
    fmap = ints[prow + PR_FIXED_MAP]
    for j in range(ints[prow + PR_NFIXED]):
        m = ints[fmap + j]
        b[j] = intercept if m < 0 else theta_value(x, ints, prow, 1 + m)


@nb.njit(**JIT)
def zeros(n):
    """np.zeros without calloc: numba's np.zeros of a large array maps fresh pages on every call."""
    out = np.empty(n)
    for i in range(n):
        out[i] = 0.0
    return out


# -- loops over rows ----------------------------------------------------------------------------------------------
# (four accumulators let the processor overlap the additions; a run of rows of one level is summed in a
# register before it is added to that level, which avoids a store-to-load chain on sorted data; adding a
# run's effects to its rows' eta runs on the vector units)

@nb.njit(**JIT)
def dot(a, b):
    n = a.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    m = n - n % 4
    for i in range(0, m, 4):
        s0 += a[i] * b[i]
        s1 += a[i + 1] * b[i + 1]
        s2 += a[i + 2] * b[i + 2]
        s3 += a[i + 3] * b[i + 3]
    for i in range(m, n):
        s0 += a[i] * b[i]
    return (s0 + s1) + (s2 + s3)


@nb.njit(**JIT)
def total(a):
    n = a.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    m = n - n % 4
    for i in range(0, m, 4):
        s0 += a[i]
        s1 += a[i + 1]
        s2 += a[i + 2]
        s3 += a[i + 3]
    for i in range(m, n):
        s0 += a[i]
    return (s0 + s1) + (s2 + s3)


@nb.njit(**JIT)
def scatter(dr, idx, K, c, d, z, use_z):
    """dr[idx[i] * K + c] += (z[i] *) d[i] over the rows."""
    uk, uc = np.uint64(K), np.uint64(c)
    if use_z:
        for i in range(idx.shape[0]):
            dr[np.uint64(idx[i]) * uk + uc] += z[i] * d[i]
    else:
        for i in range(idx.shape[0]):
            dr[np.uint64(idx[i]) * uk + uc] += d[i]


@nb.njit(**JIT)
def run_sums(runs, idx, K, c, d, z, use_z, dr):
    """dr[level * K + c] += sum over each run of (z *) d: one add per run (runs from the runs' table).

    Summed in order: a vectorised sum costs more than it saves on runs of tens of rows.
    """
    for q in range(runs[0]):
        a, b = runs[1 + q], runs[2 + q]
        s = 0.0
        if use_z:
            for i in range(a, b):
                s += z[i] * d[i]
        else:
            for i in range(a, b):
                s += d[i]
        dr[idx[a] * K + c] += s


# -- the full model ---------------------------------------------------------------------------------------------------

@nb.njit(**JIT)
def fixed_eta(x, ints, floats, prow, eta, e0, n):
    """eta += offset + Intercept + Xc beta (columns of Xc contiguous)."""
    P, xo, oo = ints[prow + PR_P], ints[prow + PR_X], ints[prow + PR_OFFSET]
    e = eta[e0:e0 + n]
    c = theta_value(x, ints, prow, 0)
    if oo >= 0:
        off = floats[oo:oo + n]
        for i in range(n):
            e[i] += c + off[i]
    else:
        for i in range(n):
            e[i] += c
    for k in range(P):
        bk = theta_value(x, ints, prow, 1 + k)
        col = floats[xo + k * n:xo + (k + 1) * n]
        for i in range(n):
            e[i] += col[i] * bk


@nb.njit(**JIT)
def fixed_grad(grad, ints, floats, prow, deta, e0, n):
    P, xo = ints[prow + PR_P], ints[prow + PR_X]
    d = deta[e0:e0 + n]
    theta_grad(grad, ints, prow, 0, total(d))
    for k in range(P):
        theta_grad(grad, ints, prow, 1 + k, dot(floats[xo + k * n:xo + (k + 1) * n], d))


@nb.njit(**JIT)
def thetas(x, ints, prow):
    """(Intercept, beta_0, beta_1, ...) of a predictor as an array."""
    P = ints[prow + PR_P]
    th = np.empty(1 + P)
    for t in range(1 + P):
        th[t] = theta_value(x, ints, prow, t)
    return th


@nb.njit(**JIT)
def effects(x, ints, floats, brow, prow, sd, L, so, lo, r, ro):
    """Group effects r (J x k) of a block, and the log density of z (non-centred) or gamma (centred)."""
    J, K, pos = ints[brow + B_J], ints[brow + B_K], ints[brow + B_PARAM_POS]
    corr, centred = ints[brow + B_CORR], ints[brow + B_CENTERED]
    lp = -0.5 * J * K * LOG_2PI
    if not centred:
        ss = 0.0
        for j in range(J):
            base = pos + j * K
            for c in range(K):
                z = x[base + c]
                ss += z * z
                if corr:
                    v = 0.0
                    for d in range(c + 1):
                        v += L[lo + c * K + d] * x[base + d]
                    r[ro + j * K + c] = v
                else:
                    r[ro + j * K + c] = sd[so + c] * z
        return lp - 0.5 * ss
    # centred: gamma_j ~ N(m_j, L L'), r_j = gamma_j - m_j; log|L| and 1 / L_cc once per block
    th = thetas(x, ints, prow)
    T = th.shape[0]
    mo = ints[brow + B_MEAN]
    inv = np.empty(K)
    for c in range(K):
        diag = L[lo + c * K + c] if corr else sd[so + c]
        inv[c] = 1.0 / diag
        lp -= J * math.log(diag)
    w = np.empty(K)
    ss = 0.0
    for j in range(J):
        for c in range(K):
            m = 0.0
            row = mo + (j * K + c) * T
            for t in range(T):
                m += floats[row + t] * th[t]
            r[ro + j * K + c] = x[pos + j * K + c] - m
        if corr:
            for c in range(K):  # w = L^-1 e
                v = r[ro + j * K + c]
                for d in range(c):
                    v -= L[lo + c * K + d] * w[d]
                w[c] = v * inv[c]
                ss += w[c] * w[c]
        else:
            for c in range(K):
                e = r[ro + j * K + c] * inv[c]
                ss += e * e
    return lp - 0.5 * ss


@nb.njit(**JIT)
def effects_eta(ints, floats, brow, r, ro, eta, e0, n):
    """eta += the rows' group effects: r[g_i, c] times the row's value of coefficient c."""
    K, io, zo = ints[brow + B_K], ints[brow + B_INDEX], ints[brow + B_Z]
    e = eta[e0:e0 + n]
    idx = ints[io:io + n]
    z = floats[zo:zo + K * n]
    rb = r[ro:ro + ints[brow + B_J] * K]
    if ints[brow + B_RUNS] >= 0:  # runs of one level: its effects read once, added over the run (SIMD)
        runs = ints[ints[brow + B_RUNS]:]
        for q in range(runs[0]):
            a, b = runs[1 + q], runs[2 + q]
            j = idx[a] * K
            for c in range(K):
                rc = rb[j + c]
                zo_c = c * n
                for i in range(a, b):
                    e[i] += z[zo_c + i] * rc
        return
    uk = np.uint64(K)
    if K == 1:
        for i in range(n):
            e[i] += z[i] * rb[np.uint64(idx[i])]  # unsigned: no negative-index check in the gather
        return
    for i in range(n):
        j = np.uint64(idx[i]) * uk
        v = 0.0
        for c in range(K):
            v += z[c * n + i] * rb[j + np.uint64(c)]
        e[i] += v


@nb.njit(**JIT)
def effects_grad(x, grad, ints, floats, brow, prow, sd, L, so, lo, r, ro, deta, e0, n, dL, dsd):
    """Gradient of a block's effects: from the rows' d loglik / d eta to z or gamma, sd, L and the fixed effects."""
    J, K, pos = ints[brow + B_J], ints[brow + B_K], ints[brow + B_PARAM_POS]
    corr, centred = ints[brow + B_CORR], ints[brow + B_CENTERED]
    io, zo, ones = ints[brow + B_INDEX], ints[brow + B_Z], ints[brow + B_ONES]
    dr = zeros(J * K)
    idx = ints[io:io + n]
    de_rows = deta[e0:e0 + n]
    for c in range(K):
        use_z = ints[ones + c] == 0
        zc = floats[zo + c * n:zo + (c + 1) * n] if use_z else de_rows
        if ints[brow + B_RUNS] >= 0:
            run_sums(ints[ints[brow + B_RUNS]:], idx, K, c, de_rows, zc, use_z, dr)
        else:
            scatter(dr, idx, K, c, de_rows, zc, use_z)
    if not centred:
        for j in range(J):
            base = pos + j * K
            for c in range(K):
                grad[base + c] -= x[base + c]
                if corr:
                    for d in range(c + 1):  # r_j = L z_j
                        grad[base + d] += L[lo + c * K + d] * dr[j * K + c]
                        dL[lo + c * K + d] += dr[j * K + c] * x[base + d]
                else:
                    grad[base + c] += dr[j * K + c] * sd[so + c]
                    dsd[so + c] += dr[j * K + c] * x[base + c]
        return
    P = ints[prow + PR_P]
    T = 1 + P
    dtheta = np.zeros(T)
    w = np.empty(K)
    v = np.empty(K)
    de = np.empty(K)
    inv = np.empty(K)
    for c in range(K):
        inv[c] = 1.0 / (L[lo + c * K + c] if corr else sd[so + c])
    mo0 = ints[brow + B_MEAN]
    for j in range(J):
        if corr:
            for c in range(K):
                s = r[ro + j * K + c]
                for d in range(c):
                    s -= L[lo + c * K + d] * w[d]
                w[c] = s * inv[c]
            for c in range(K - 1, -1, -1):  # v = L^-T w
                s = w[c]
                for d in range(c + 1, K):
                    s -= L[lo + d * K + c] * v[d]
                v[c] = s * inv[c]
            for c in range(K):
                de[c] = dr[j * K + c] - v[c]
                for d in range(c + 1):
                    dL[lo + c * K + d] += v[c] * w[d]
        else:
            for c in range(K):
                e = r[ro + j * K + c] * inv[c]
                de[c] = dr[j * K + c] - e * inv[c]
                dsd[so + c] += e * e * inv[c]
        for c in range(K):
            grad[pos + j * K + c] += de[c]
            mo = mo0 + (j * K + c) * T
            for t in range(T):
                dtheta[t] -= floats[mo + t] * de[c]
    for c in range(K):
        if corr:
            dL[lo + c * K + c] -= J / L[lo + c * K + c]
        else:
            dsd[so + c] -= J / sd[so + c]
    for t in range(1 + P):
        theta_grad(grad, ints, prow, t, dtheta[t])


@nb.njit(**JIT)
def gaussian_rows(grad, y, eta, deta, const_sum, sigma_pos, log_sigma, inv_s2):
    """The common case: Gaussian rows with one sigma."""
    n = y.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    m = n - n % 4
    for i in range(0, m, 4):
        r0, r1, r2, r3 = y[i] - eta[i], y[i + 1] - eta[i + 1], y[i + 2] - eta[i + 2], y[i + 3] - eta[i + 3]
        deta[i] += r0 * inv_s2
        deta[i + 1] += r1 * inv_s2
        deta[i + 2] += r2 * inv_s2
        deta[i + 3] += r3 * inv_s2
        s0 += r0 * r0
        s1 += r1 * r1
        s2 += r2 * r2
        s3 += r3 * r3
    for i in range(m, n):
        r = y[i] - eta[i]
        deta[i] += r * inv_s2
        s0 += r * r
    ss = (s0 + s1) + (s2 + s3)
    grad[sigma_pos] += ss * inv_s2 - n
    return const_sum - 0.5 * ss * inv_s2 - n * log_sigma


@nb.njit(**JIT)
def likelihood(x, grad, ints, floats, eta, deta, n):
    """Sum of the rows' log-likelihoods; d/d eta into deta, d/d (scalar dpars) into grad."""
    if ints[H_FAMILY] == CUMULATIVE:  # with its thresholds' priors (a vector parameter of its own)
        return cumulative_rows(x, grad, ints, floats, eta, deta, n)
    if ints[H_ADDITION] >= 0:
        return addition_rows(x, grad, ints, floats, eta, deta, n)
    fam, link = ints[H_FAMILY], ints[H_LINK]
    yo, to, co, ao = ints[H_Y], ints[H_TRIALS], ints[H_ROW_CONST], ints[H_ROW_AUX]
    ndp, src, where, logit, lower, val, chain, per_row = read_dpars(x, ints, floats)
    acc = np.zeros(2)
    d1, d2 = val[0], val[1]
    k0, k1, k2, k3 = dpar_terms(fam, d1, d2)
    if fam == GAUSSIAN and link == IDENTITY and not per_row:
        return gaussian_rows(grad, floats[yo:yo + n], eta[:n], deta[:n], floats[ints[H_CONST_SUM]], where[0], k0, k1)
    if (fam == BERNOULLI or fam == BINOMIAL) and link == LOGIT and ndp == 0:
        t0 = to if to >= 0 else yo
        return logit_rows(floats[yo:yo + n], floats[t0:t0 + n], to >= 0, floats[co:co + n], eta[:n], deta[:n])
    if fam == POISSON and link == LOG and ndp == 0:
        return poisson_log_rows(floats[yo:yo + n], floats[co:co + n], eta[:n], deta[:n])
    lp = 0.0
    c1, c2 = chain[0], chain[1]
    for i in range(n):
        if per_row:
            if ndp > 0 and src[0] != SRC_PARAM:
                d1, c1 = dpar_value(eta[where[0] * n + i], lower[0], logit[0])
            if ndp > 1 and src[1] != SRC_PARAM:
                d2, c2 = dpar_value(eta[where[1] * n + i], lower[1], logit[1])
            k0, k1, k2, k3 = dpar_terms(fam, d1, d2)
        trials = floats[to + i] if to >= 0 else 1.0
        ll, g, g1, g2 = row_loglik(fam, link, floats[yo + i], eta[i], trials, floats[co + i], floats[ao + i],
                                   d1, d2, k0, k1, k2, k3)
        lp += ll
        deta[i] += g
        if ndp > 0:
            if src[0] == SRC_PARAM:
                acc[0] += g1
            else:
                deta[where[0] * n + i] += g1 * c1
        if ndp > 1:
            if src[1] == SRC_PARAM:
                acc[1] += g2
            else:
                deta[where[1] * n + i] += g2 * c2
    for d in range(ndp):
        if src[d] == SRC_PARAM:
            grad[where[d]] += acc[d] * chain[d]
    return lp


@nb.njit(**JIT)
def full_logp(x, grad, ints, floats):
    """Log density of the full model at x; writes the gradient into grad."""
    for i in range(ints[H_NDIM]):
        grad[i] = 0.0
    n, npred, pt = ints[H_N], ints[H_NPRED], ints[H_PREDS]
    nblk, bt = ints[H_NBLOCK], ints[H_BLOCKS]
    so, lo, ro = block_offsets(ints)
    sd, norm = np.empty(so[nblk]), np.empty(so[nblk])
    Lc, L = np.empty(lo[nblk]), np.empty(lo[nblk])
    r = np.empty(ro[nblk])
    lp = add_priors(x, grad, ints, floats)
    eta = zeros(npred * n)
    for p in range(npred):
        fixed_eta(x, ints, floats, pt + p * PRED_WIDTH, eta, p * n, n)
    for b in range(nblk):
        brow = bt + b * BLOCK_WIDTH
        prow = pt + ints[brow + B_PRED] * PRED_WIDTH
        lp += block_scales(x, ints, floats, brow, sd, Lc, L, norm, so[b], lo[b])
        lp += effects(x, ints, floats, brow, prow, sd, L, so[b], lo[b], r, ro[b])
        effects_eta(ints, floats, brow, r, ro[b], eta, ints[brow + B_PRED] * n, n)
    deta = zeros(npred * n)
    lp += likelihood(x, grad, ints, floats, eta, deta, n)
    if not math.isfinite(lp):
        return lp
    for p in range(npred):
        fixed_grad(grad, ints, floats, pt + p * PRED_WIDTH, deta, p * n, n)
    dL, dsd = np.zeros(lo[nblk]), np.zeros(so[nblk])
    for b in range(nblk):
        brow = bt + b * BLOCK_WIDTH
        prow = pt + ints[brow + B_PRED] * PRED_WIDTH
        effects_grad(x, grad, ints, floats, brow, prow, sd, L, so[b], lo[b], r, ro[b], deta,
                     ints[brow + B_PRED] * n, n, dL, dsd)
        block_scales_grad(grad, ints, floats, brow, sd, Lc, norm, so[b], lo[b], dL, dsd)
    return lp


# -- the collapsed model ----------------------------------------------------------------------------------------------

@nb.njit(**JIT)
def nested_levels(ints, floats, Pm, bvec, s2, q, q1, p, J, K, GP, db):
    """Marginal log-likelihood of the levels (inner factor nested in the outer) and d/ds2; adds dl/dSigma^-1 to
    GP and dl/db to db.

    Outer level j holds inner levels k.  With the inner effects integrated out first
    (``D_k = P2 + Z2'Z2/s2``, ``B_k = Z1'Z2/s2``) the outer ones see the Schur complement
    ``S_j = P1 + sum_k (Z1'Z1/s2 - B_k D_k^-1 B_k')``; log|M_j| = log|S_j| + sum_k log|D_k|
    and w'M^-1 w = c_j'S_j^-1 c_j + sum_k w2'D_k^-1 w2.  The gradient uses
    dl/dM = -(M^-1 + v v')/2 on the blocks of M^-1 that the arrow shape gives.
    """
    q2 = q - q1
    inv_s2 = 1.0 / s2
    starts = ints[H_SS_START]
    no, yyo, xyo, xxo = ints[H_SS_N], ints[H_SS_YY], ints[H_SS_XY], ints[H_SS_XX]
    zyo, zxo, zzo = ints[H_SS_ZY], ints[H_SS_ZX], ints[H_SS_ZZ]
    work = np.empty(q * q)
    lp = 0.0
    S = np.empty(q1 * q1)
    Sinv = np.empty(q1 * q1)
    cj = np.empty(q1)
    vu = np.empty(q1)
    w = np.empty(q)
    v = np.empty(q)
    tmp = np.empty(q)
    Dch = np.empty(K * q2 * q2)  # per inner level: Cholesky factor of D_k, D_k^-1, D_k^-1 B_k', D_k^-1 w2_k
    Dinv = np.empty(K * q2 * q2)
    Y = np.empty(K * q2 * q1)
    y2 = np.empty(K * q2)
    work2 = np.empty(q2 * q2)
    Guu = np.empty(q1 * q1)
    ds2 = 0.0
    for j in range(J):
        k0, k1 = ints[starts + j], ints[starts + j + 1]
        for a in range(q1):
            cj[a] = 0.0
            for c in range(q1):
                S[a * q1 + c] = Pm[a * q + c]
        nj, eej, quad, logdet = 0.0, 0.0, 0.0, 0.0
        for k in range(k0, k1):
            nj += floats[no + k]
            ee = floats[yyo + k]
            for a in range(p):
                ee -= 2.0 * floats[xyo + k * p + a] * bvec[a]
                for c in range(p):
                    ee += floats[xxo + (k * p + a) * p + c] * bvec[a] * bvec[c]
            eej += ee
            zz = zzo + k * q * q
            for a in range(q):
                s = floats[zyo + k * q + a]
                for c in range(p):
                    s -= floats[zxo + (k * q + a) * p + c] * bvec[c]
                w[a] = s * inv_s2
            for a in range(q1):
                cj[a] += w[a]
                for c in range(q1):
                    S[a * q1 + c] += floats[zz + a * q + c] * inv_s2
            D = Dch[k * q2 * q2:(k + 1) * q2 * q2]
            for a in range(q2):
                for c in range(q2):
                    D[a * q2 + c] = Pm[(q1 + a) * q + q1 + c] + floats[zz + (q1 + a) * q + q1 + c] * inv_s2
            if not cholesky(D, q2):
                return -math.inf, 0.0
            for a in range(q2):
                logdet += 2.0 * math.log(D[a * q2 + a])
            Di = Dinv[k * q2 * q2:(k + 1) * q2 * q2]
            chol_inverse(D, q2, work2, Di)
            for a in range(q2):  # y2 = D^-1 w2, Y = D^-1 B'
                s = 0.0
                for t in range(q2):
                    s += Di[a * q2 + t] * w[q1 + t]
                y2[k * q2 + a] = s
                quad += w[q1 + a] * s
                for c in range(q1):
                    s = 0.0
                    for t in range(q2):
                        s += Di[a * q2 + t] * floats[zz + c * q + q1 + t]
                    Y[(k * q2 + a) * q1 + c] = s * inv_s2
            for a in range(q1):  # S -= B Y, c -= B y2
                for t in range(q2):
                    bat = floats[zz + a * q + q1 + t] * inv_s2
                    cj[a] -= bat * y2[k * q2 + t]
                    for c in range(q1):
                        S[a * q1 + c] -= bat * Y[(k * q2 + t) * q1 + c]
        if not cholesky(S, q1):
            return -math.inf, 0.0
        for a in range(q1):
            logdet += 2.0 * math.log(S[a * q1 + a])
        chol_solve(S, q1, cj, vu, tmp)
        for a in range(q1):
            quad += cj[a] * vu[a]
        lp += -0.5 * (nj * LOG_2PI + logdet + nj * math.log(s2) + eej / s2 - quad)
        ds2 += -quad / s2 + 0.5 * eej / (s2 * s2) - 0.5 * nj / s2
        chol_inverse(S, q1, work, Sinv)
        for a in range(q1):
            for c in range(q1):
                g = -0.5 * (Sinv[a * q1 + c] + vu[a] * vu[c])
                Guu[a * q1 + c] = g
                GP[a * q + c] += g
        tr = 0.0
        for k in range(k0, k1):
            zz = zzo + k * q * q
            for a in range(q1):
                v[a] = vu[a]
                for c in range(q1):
                    tr += Guu[a * q1 + c] * floats[zz + c * q + a]
            Di = Dinv[k * q2 * q2:(k + 1) * q2 * q2]
            for a in range(q2):  # v_k = y2 - Y vu
                s = y2[k * q2 + a]
                for c in range(q1):
                    s -= Y[(k * q2 + a) * q1 + c] * vu[c]
                v[q1 + a] = s
            for a in range(q1):  # G_uk = -(M^-1_uk + vu v_k')/2 with M^-1_uk = -Sinv Y'
                for c in range(q2):
                    s = 0.0
                    for t in range(q1):
                        s += Sinv[a * q1 + t] * Y[(k * q2 + c) * q1 + t]
                    tr += 2.0 * (-0.5 * (-s + vu[a] * v[q1 + c])) * floats[zz + a * q + q1 + c]
            for a in range(q2):  # G_kk = -(D^-1 + Y Sinv Y' + v_k v_k')/2
                for c in range(q2):
                    s = Di[a * q2 + c]
                    for t in range(q1):
                        yt = 0.0
                        for t2 in range(q1):
                            yt += Sinv[t * q1 + t2] * Y[(k * q2 + c) * q1 + t2]
                        s += Y[(k * q2 + a) * q1 + t] * yt
                    g = -0.5 * (s + v[q1 + a] * v[q1 + c])
                    GP[(q1 + a) * q + q1 + c] += g
                    tr += g * floats[zz + (q1 + c) * q + q1 + a]
            for c in range(p):
                s = floats[xyo + k * p + c]
                for a in range(p):
                    s -= floats[xxo + (k * p + c) * p + a] * bvec[a]
                for a in range(q):
                    s -= floats[zxo + (k * q + a) * p + c] * v[a]
                db[c] += s * inv_s2
        ds2 += -tr / (s2 * s2)
    return lp, ds2


@nb.njit(**JIT)
def one_factor_levels(ints, floats, Pm, bvec, s2, q, p, J, GP, db):
    """Marginal log-likelihood of the levels of one grouping factor and d/ds2; adds dl/dSigma^-1 to GP and dl/db
    to db (Woodbury on each level's q x q matrix M_j = Sigma^-1 + Z_j'Z_j / s2)."""
    inv_s2 = 1.0 / s2
    no, yyo, xyo, xxo = ints[H_SS_N], ints[H_SS_YY], ints[H_SS_XY], ints[H_SS_XX]
    zyo, zxo, zzo = ints[H_SS_ZY], ints[H_SS_ZX], ints[H_SS_ZZ]
    M = np.empty(q * q)
    u = np.empty(q)
    v = np.empty(q)
    tmp = np.empty(q)
    Minv = np.empty(q * q)
    work = np.empty(q * q)
    lp, ds2 = 0.0, 0.0
    for j in range(J):
        nj = floats[no + j]
        zz = zzo + j * q * q
        for a in range(q * q):
            M[a] = Pm[a] + floats[zz + a] * inv_s2
        if not cholesky(M, q):
            return -math.inf, 0.0
        logdet_m = 0.0
        for a in range(q):
            logdet_m += 2.0 * math.log(M[a * q + a])
        for a in range(q):
            s = floats[zyo + j * q + a]
            for c in range(p):
                s -= floats[zxo + (j * q + a) * p + c] * bvec[c]
            u[a] = s * inv_s2
        for a in range(q):  # v = M^-1 u via C C' (written out: a call per level costs more than the work)
            s = u[a]
            for c in range(a):
                s -= M[a * q + c] * tmp[c]
            tmp[a] = s / M[a * q + a]
        for a in range(q - 1, -1, -1):
            s = tmp[a]
            for c in range(a + 1, q):
                s -= M[c * q + a] * v[c]
            v[a] = s / M[a * q + a]
        lower_inverse(M, q, work)
        for a in range(q):
            for c in range(q):
                s = 0.0
                for t in range(max(a, c), q):
                    s += work[t * q + a] * work[t * q + c]
                Minv[a * q + c] = s
        ee = floats[yyo + j]
        for a in range(p):
            ee -= 2.0 * floats[xyo + j * p + a] * bvec[a]
            for c in range(p):
                ee += floats[xxo + (j * p + a) * p + c] * bvec[a] * bvec[c]
        uv = 0.0
        for a in range(q):
            uv += u[a] * v[a]
        lp += -0.5 * (nj * LOG_2PI + logdet_m + nj * math.log(s2) + ee * inv_s2 - uv)
        tr = 0.0
        for a in range(q):
            for c in range(q):
                g = -0.5 * (Minv[a * q + c] + v[a] * v[c])
                GP[a * q + c] += g
                tr += g * floats[zz + c * q + a]
        ds2 += -tr * inv_s2 * inv_s2 - uv * inv_s2 + 0.5 * ee * inv_s2 * inv_s2 - 0.5 * nj * inv_s2
        for c in range(p):
            s = floats[xyo + j * p + c]
            for a in range(p):
                s -= floats[xxo + (j * p + c) * p + a] * bvec[a]
            for a in range(q):
                s -= floats[zxo + (j * q + a) * p + c] * v[a]
            db[c] += s * inv_s2
    return lp, ds2


@nb.njit(**JIT)
def collapsed_logp(y, grad, ints, floats):
    """Marginal log density (group effects integrated out) at the sampler's y; writes the gradient into grad.

    y is PyMC's unconstrained vector, or its variance decomposition when the program has
    one (:func:`hierfit.engine.kernel.terms.vardec_forward`, Jacobian 1).
    """
    if ints[H_VARDEC] < 0:
        return collapsed_logp_x(y, grad, ints, floats)
    x = np.empty(y.shape[0])
    vardec_forward(y, ints, x)
    lp = collapsed_logp_x(x, grad, ints, floats)
    vardec_grad(y, ints, grad)
    return lp


@nb.njit(**JIT)
def collapsed_logp_x(x, grad, ints, floats):
    """Marginal log density (group effects integrated out) at x; writes the gradient into grad.

    Priors, then the levels' likelihood (:func:`one_factor_levels` or :func:`nested_levels`,
    which return dl/dSigma^-1, dl/dsigma^2 and dl/db), then the chain rule to the sds,
    LKJ factors, sigma and the fixed effects.
    """
    for i in range(ints[H_NDIM]):
        grad[i] = 0.0
    pt, nblk, bt = ints[H_PREDS], ints[H_NBLOCK], ints[H_BLOCKS]
    so, lo, ro = block_offsets(ints)
    sd, norm = np.empty(so[nblk]), np.empty(so[nblk])
    Lc, L = np.empty(lo[nblk]), np.empty(lo[nblk])
    lp = add_priors(x, grad, ints, floats)
    q, p, J, K, q1 = ints[H_Q], ints[H_P], ints[H_J], ints[H_K], ints[H_Q1]
    Lq = zeros(q * q)
    logdet_sigma = 0.0  # sum over blocks of (levels x log|Sigma_block|)
    for b in range(nblk):
        brow = bt + b * BLOCK_WIDTH
        lp += block_scales(x, ints, floats, brow, sd, Lc, L, norm, so[b], lo[b])
        Kb, st = ints[brow + B_K], ints[brow + B_QSTART]
        for a in range(Kb):
            for c in range(Kb):
                Lq[(st + a) * q + st + c] = L[lo[b] + a * Kb + c]
            logdet_sigma += ints[brow + B_J] * 2.0 * math.log(Lq[(st + a) * q + st + a])
    lp -= 0.5 * logdet_sigma
    work = np.empty(q * q)
    Pm = np.empty(q * q)  # Sigma^-1 = Linv' Linv
    chol_inverse(Lq, q, work, Pm)
    prow = pt
    bvec = np.empty(p)
    fixed_values(x, ints, floats, prow, bvec)
    dpar_row = ints[H_DPARS]
    spos = ints[dpar_row + D_WHERE]
    sigma = math.exp(x[spos])
    s2 = sigma * sigma
    GP = zeros(q * q)
    db = zeros(p)
    if q1 == q:
        lik, ds2 = one_factor_levels(ints, floats, Pm, bvec, s2, q, p, J, GP, db)
    elif q == q1 + 1:
        lik, ds2 = nested_levels_scalar(ints, floats, Pm, bvec, s2, q, q1, p, J, K, GP, db)
    else:
        lik, ds2 = nested_levels(ints, floats, Pm, bvec, s2, q, q1, p, J, K, GP, db)
    if lik == -math.inf:
        return -math.inf
    lp += lik
    # d/dL of the likelihood through Sigma^-1 = (L L')^-1 and the log|Sigma| terms: -2 P G P L - levels diag(1/L)
    PGP = matmul(matmul(Pm, GP, q), Pm, q)
    dL, dsd = np.zeros(lo[nblk]), np.zeros(so[nblk])
    for b in range(nblk):
        brow = bt + b * BLOCK_WIDTH
        Kb, st = ints[brow + B_K], ints[brow + B_QSTART]
        for a in range(Kb):
            for c in range(a + 1):
                s = 0.0
                for t in range(q):
                    s += PGP[(st + a) * q + t] * Lq[t * q + st + c]
                g = -2.0 * s
                if a == c:
                    g -= ints[brow + B_J] / Lq[(st + a) * q + st + a]
                if ints[brow + B_CORR]:
                    dL[lo[b] + a * Kb + c] += g
                elif a == c:
                    dsd[so[b] + a] += g
        block_scales_grad(grad, ints, floats, brow, sd, Lc, norm, so[b], lo[b], dL, dsd)
    grad[spos] += ds2 * 2.0 * s2
    fmap, xm = ints[prow + PR_FIXED_MAP], ints[prow + PR_XMEAN]
    for j in range(p):
        m = ints[fmap + j]
        if m < 0:
            theta_grad(grad, ints, prow, 0, db[j])
            for k in range(ints[prow + PR_P]):
                theta_grad(grad, ints, prow, 1 + k, -floats[xm + k] * db[j])
        else:
            theta_grad(grad, ints, prow, 1 + m, db[j])
    return lp
