"""The rows' log-likelihood with brms's addition terms (numba): weights, censoring, known standard errors.

Called by :func:`hierfit.engine.kernel.density.likelihood` when the program has an
addition table (``ints[H_ADDITION] >= 0``; layout in :mod:`hierfit.engine.kernel.codes`).
Weights multiply every family's row log-likelihood and its derivatives.  Censoring
and known standard errors are implemented for the Gaussian family, whose sd of row i
is ``sqrt(sigma^2 + se_i^2)`` (``se_i`` alone without a residual sd)::

    none      log phi(z) - log s          z = (y - mu) / s
    left      log Phi(z)
    right     log Phi(-z)
    interval  log(Phi(z2) - Phi(z))       z2 = (y2 - mu) / s
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from hierfit.engine.kernel.codes import (
    A_CENS, A_SE, A_SE_SIGMA, A_WEIGHTS, A_Y2, GAUSSIAN, H_ADDITION, H_FAMILY, H_LINK, H_ROW_AUX, H_ROW_CONST,
    H_TRIALS, H_Y, LOG, SRC_PARAM,
)
from hierfit.engine.kernel.likelihood import dpar_terms, dpar_value, read_dpars, row_loglik
from hierfit.engine.kernel.scalar import JIT, log_ndtr

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@nb.njit(**JIT)
def log_phi(z):
    return -0.5 * z * z - HALF_LOG_2PI


@nb.njit(**JIT)
def gaussian_censored(code, y, y2, mu, s):
    """(log-likelihood, d/d mu, d/d s) of one Gaussian row with censoring code -1/0/1/2."""
    z = (y - mu) / s
    if code == 0:
        return log_phi(z) - math.log(s), z / s, (z * z - 1.0) / s
    if code == -1:
        lp = log_ndtr(z)
        dz = math.exp(log_phi(z) - lp)
        return lp, -dz / s, -dz * z / s
    if code == 1:
        lp = log_ndtr(-z)
        dz = -math.exp(log_phi(z) - lp)
        return lp, -dz / s, -dz * z / s
    z2 = (y2 - mu) / s
    if z > 0.0:  # both in the upper tail: P = Phi(-z) - Phi(-z2), computed there for accuracy
        la, lb = log_ndtr(-z2), log_ndtr(-z)
    else:
        la, lb = log_ndtr(z), log_ndtr(z2)
    lp = lb + math.log1p(-math.exp(la - lb))
    d2 = math.exp(log_phi(z2) - lp)
    d1 = -math.exp(log_phi(z) - lp)
    return lp, -(d1 + d2) / s, -(d1 * z + d2 * z2) / s


@nb.njit(**JIT)
def addition_rows(x, grad, ints, floats, eta, deta, n):
    """Sum of the rows' log-likelihoods with weights, censoring and known se; gradients as likelihood()."""
    fam, link = ints[H_FAMILY], ints[H_LINK]
    yo, to, co, ao = ints[H_Y], ints[H_TRIALS], ints[H_ROW_CONST], ints[H_ROW_AUX]
    ad = ints[H_ADDITION]
    wo, cso, y2o, seo, se_sigma = ints[ad + A_WEIGHTS], ints[ad + A_CENS], ints[ad + A_Y2], ints[ad + A_SE], \
        ints[ad + A_SE_SIGMA]
    ndp, src, where, logit, lower, val, chain, per_row = read_dpars(x, ints, floats)
    acc = np.zeros(2)
    d1, d2 = val[0], val[1]
    gauss = fam == GAUSSIAN and (cso >= 0 or seo >= 0)
    k0 = k1 = k2 = k3 = 0.0
    if not gauss and ndp > 0:
        k0, k1, k2, k3 = dpar_terms(fam, d1, d2)
    lp = 0.0
    c1, c2 = chain[0], chain[1]
    for i in range(n):
        if per_row:
            if ndp > 0 and src[0] != SRC_PARAM:
                d1, c1 = dpar_value(eta[where[0] * n + i], lower[0], logit[0])
            if ndp > 1 and src[1] != SRC_PARAM:
                d2, c2 = dpar_value(eta[where[1] * n + i], lower[1], logit[1])
            if not gauss:
                k0, k1, k2, k3 = dpar_terms(fam, d1, d2)
        y = floats[yo + i]
        if gauss:
            mu, dmu = eta[i], 1.0
            if link == LOG:
                mu = math.exp(eta[i])
                dmu = mu
            if seo >= 0:
                se = floats[seo + i]
                s = math.sqrt(d1 * d1 + se * se) if se_sigma else se
                ds_dsigma = d1 / s if se_sigma else 0.0
            else:
                s, ds_dsigma = d1, 1.0
            code = int(floats[cso + i]) if cso >= 0 else 0
            y2 = floats[y2o + i] if y2o >= 0 else 0.0
            ll, gm, gs = gaussian_censored(code, y, y2, mu, s)
            g, g1, g2 = gm * dmu, gs * ds_dsigma, 0.0
        else:
            trials = floats[to + i] if to >= 0 else 1.0
            ll, g, g1, g2 = row_loglik(fam, link, y, eta[i], trials, floats[co + i], floats[ao + i],
                                       d1, d2, k0, k1, k2, k3)
        if wo >= 0:
            w = floats[wo + i]
            ll, g, g1, g2 = w * ll, w * g, w * g1, w * g2
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
