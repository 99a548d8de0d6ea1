"""Scalar numerics for the compiled kernel: special functions and prior densities (numba).

Every function returns a value and, where it is a density, its derivative, so the
kernel's gradient is exact (no automatic differentiation).  Log densities match
PyMC's, constants included, so the kernel's log density equals the PyMC model's.
"""

from __future__ import annotations

import math

import numba as nb

from hierfit.engine.kernel.codes import (P_BETA, P_CAUCHY, P_EXPONENTIAL, P_GAMMA, P_INV_GAMMA, P_LOGNORMAL, P_NORMAL,
                                         P_STUDENT_T)

JIT = dict(cache=True, error_model="numpy", nogil=True)

LOG_2PI = math.log(2.0 * math.pi)
LOG_PI = math.log(math.pi)
SQRT1_2 = math.sqrt(0.5)


@nb.njit(**JIT)
def digamma(x):
    """psi(x) for x > 0: recurrence up to 6, then the asymptotic series (error < 1e-13)."""
    acc = 0.0
    while x < 6.0:
        acc -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))))
    return acc + math.log(x) - 0.5 / x - series


@nb.njit(**JIT)
def log1pexp(x):
    """log(1 + exp(x)) without overflow."""
    if x > 35.0:
        return x
    if x < -35.0:
        return math.exp(x)
    return math.log1p(math.exp(x))


@nb.njit(**JIT)
def sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@nb.njit(**JIT)
def log_ndtr(x):
    """log Phi(x), accurate in both tails (log1p of -Phi(-x) above 0, an asymptotic series below -20)."""
    if x > 0.0:
        return math.log1p(-0.5 * math.erfc(x * SQRT1_2))
    if x > -20.0:
        return math.log(0.5 * math.erfc(-x * SQRT1_2))
    # Phi(x) ~ phi(x) / -x * (1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8): relative error < 1e-10 below -20
    u = 1.0 / (x * x)
    return -0.5 * x * x - 0.5 * LOG_2PI - math.log(-x) + math.log1p(u * (-1.0 + u * (3.0 + u * (-15.0 + 105.0 * u))))


@nb.njit(**JIT)
def prior_logp(code, v, p1, p2, p3):
    """(log density, d/dv) of a prior at v; parameters in brms order (see hierfit.spec.priors)."""
    if code == P_NORMAL:
        z = (v - p1) / p2
        return -0.5 * z * z - math.log(p2) - 0.5 * LOG_2PI, -z / p2
    if code == P_STUDENT_T:
        nu, mu, s = p1, p2, p3
        d = v - mu
        q = d * d / (nu * s * s)
        lp = (math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu) - 0.5 * math.log(nu * math.pi) - math.log(s)
              - 0.5 * (nu + 1.0) * math.log1p(q))
        return lp, -(nu + 1.0) * d / (nu * s * s + d * d)
    if code == P_CAUCHY:
        d = v - p1
        return -LOG_PI - math.log(p2) - math.log1p((d / p2) ** 2), -2.0 * d / (p2 * p2 + d * d)
    if v <= 0.0:
        return -math.inf, 0.0
    if code == P_EXPONENTIAL:
        return math.log(p1) - p1 * v, -p1
    if code == P_GAMMA:
        return p1 * math.log(p2) - math.lgamma(p1) + (p1 - 1.0) * math.log(v) - p2 * v, (p1 - 1.0) / v - p2
    if code == P_LOGNORMAL:
        lv = math.log(v)
        z = (lv - p1) / p2
        return -0.5 * z * z - math.log(p2) - 0.5 * LOG_2PI - lv, -(z / p2 + 1.0) / v
    if code == P_INV_GAMMA:
        return (p1 * math.log(p2) - math.lgamma(p1) - (p1 + 1.0) * math.log(v) - p2 / v,
                -(p1 + 1.0) / v + p2 / (v * v))
    if code == P_BETA:
        if v >= 1.0:
            return -math.inf, 0.0
        lb = math.lgamma(p1) + math.lgamma(p2) - math.lgamma(p1 + p2)
        return (p1 - 1.0) * math.log(v) + (p2 - 1.0) * math.log1p(-v) - lb, (p1 - 1.0) / v - (p2 - 1.0) / (1.0 - v)
    return math.nan, math.nan
