"""The nested collapsed model's levels when each inner level has one coefficient (numba).

``(1 | school/student)`` and every other nested term with an intercept-only inner
factor: the inner level's matrix D_k of :func:`hierfit.engine.kernel.density.nested_levels`
is then a scalar, and this loop does the same algebra without the per-level small-matrix
calls (a few times faster on thousands of inner levels).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from hierfit.engine.kernel.codes import (H_SS_N, H_SS_START, H_SS_XX, H_SS_XY, H_SS_YY, H_SS_ZX, H_SS_ZY, H_SS_ZZ)
from hierfit.engine.kernel.linalg import chol_inverse, cholesky
from hierfit.engine.kernel.scalar import JIT, LOG_2PI


@nb.njit(**JIT)
def nested_levels_scalar(ints, floats, Pm, bvec, s2, q, q1, p, J, K, GP, db):
    """:func:`hierfit.engine.kernel.density.nested_levels` for q = q1 + 1 (same returns and side effects)."""
    inv_s2 = 1.0 / s2
    starts = ints[H_SS_START]
    no, yyo, xyo, xxo = ints[H_SS_N], ints[H_SS_YY], ints[H_SS_XY], ints[H_SS_XX]
    zyo, zxo, zzo = ints[H_SS_ZY], ints[H_SS_ZX], ints[H_SS_ZZ]
    P22 = Pm[q1 * q + q1]
    lp, ds2 = 0.0, 0.0
    S = np.empty(q1 * q1)
    Sinv = np.empty(q1 * q1)
    work = np.empty(q1 * q1)
    cj = np.empty(q1)
    vu = np.empty(q1)
    w = np.empty(q)
    SY = np.empty(q1)
    Guu = np.empty(q1 * q1)
    y2 = np.empty(K)  # per inner level: D^-1 w2, D^-1, D^-1 B' (q1)
    di = np.empty(K)
    Y = np.empty(K * q1)
    g22 = 0.0
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
                t = floats[xyo + k * p + a]
                s = 0.0
                for c in range(p):
                    s += floats[xxo + (k * p + a) * p + c] * bvec[c]
                ee += bvec[a] * (s - 2.0 * t)
            eej += ee
            zz = zzo + k * q * q
            for a in range(q):
                s = floats[zyo + k * q + a]
                for c in range(p):
                    s -= floats[zxo + (k * q + a) * p + c] * bvec[c]
                w[a] = s * inv_s2
            D = P22 + floats[zz + q1 * q + q1] * inv_s2
            if D <= 0.0:
                return -math.inf, 0.0
            logdet += math.log(D)
            d = 1.0 / D
            di[k] = d
            yk = d * w[q1]
            y2[k] = yk
            quad += w[q1] * yk
            for a in range(q1):
                bat = floats[zz + a * q + q1] * inv_s2
                Y[k * q1 + a] = d * bat
                cj[a] += w[a] - bat * yk
                for c in range(q1):
                    S[a * q1 + c] += floats[zz + a * q + c] * inv_s2
            for a in range(q1):
                bat = floats[zz + a * q + q1] * inv_s2
                for c in range(q1):
                    S[a * q1 + c] -= bat * Y[k * q1 + c]
        if not cholesky(S, q1):
            return -math.inf, 0.0
        for a in range(q1):
            logdet += 2.0 * math.log(S[a * q1 + a])
        chol_inverse(S, q1, work, Sinv)
        for a in range(q1):  # vu = S^-1 cj
            t = 0.0
            for c in range(q1):
                t += Sinv[a * q1 + c] * cj[c]
            vu[a] = t
        for a in range(q1):
            quad += cj[a] * vu[a]
        lp += -0.5 * (nj * LOG_2PI + logdet + nj * math.log(s2) + eej / s2 - quad)
        ds2 += -quad / s2 + 0.5 * eej / (s2 * s2) - 0.5 * nj / s2
        for a in range(q1):
            for c in range(q1):
                g = -0.5 * (Sinv[a * q1 + c] + vu[a] * vu[c])
                Guu[a * q1 + c] = g
                GP[a * q + c] += g
        tr = 0.0
        for k in range(k0, k1):
            zz = zzo + k * q * q
            v2 = y2[k]
            for a in range(q1):
                v2 -= Y[k * q1 + a] * vu[a]
                for c in range(q1):
                    tr += Guu[a * q1 + c] * floats[zz + c * q + a]
            ysy = 0.0
            for a in range(q1):
                s = 0.0
                for t in range(q1):
                    s += Sinv[a * q1 + t] * Y[k * q1 + t]
                SY[a] = s
                ysy += Y[k * q1 + a] * s
                tr += (s - vu[a] * v2) * floats[zz + a * q + q1]
            g = -0.5 * (di[k] + ysy + v2 * v2)
            g22 += g
            tr += g * floats[zz + q1 * q + q1]
            for c in range(p):
                s = floats[xyo + k * p + c]
                for a in range(p):
                    s -= floats[xxo + (k * p + c) * p + a] * bvec[a]
                for a in range(q1):
                    s -= floats[zxo + (k * q + a) * p + c] * vu[a]
                s -= floats[zxo + (k * q + q1) * p + c] * v2
                db[c] += s * inv_s2
        ds2 += -tr / (s2 * s2)
    GP[q1 * q + q1] += g22
    return lp, ds2
