"""One row's log-likelihood and its derivatives, for every family and link (numba).

``row_loglik`` returns (log p(y | eta, dpars), d/d eta, d/d dpar1, d/d dpar2) with the
family's distributional parameters in the order hierfit.families declares them
(gaussian: sigma; student: sigma, nu; negbinomial and gamma: shape).  What depends on
the distributional parameters alone is computed once by ``dpar_terms`` (once per
evaluation when they are parameters, per row when they have a formula); what depends
on y alone comes precomputed per row (hierfit.engine.kernel.spec.row_terms): ``const`` (e.g.
-log y!) and ``aux`` (log y for the gamma family).
"""

from __future__ import annotations

import math

import numba as nb

from hierfit.engine.kernel.codes import BERNOULLI, BINOMIAL, CLOGLOG, GAMMA, GAUSSIAN, LOG, LOGIT, NEGBINOMIAL, POISSON, PROBIT, STUDENT
from hierfit.engine.kernel.scalar import JIT, LOG_PI, digamma, log1pexp, log_ndtr, sigmoid

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@nb.njit(**JIT)
def dpar_terms(family, d1, d2):
    """Terms of the log-likelihood that depend on the distributional parameters alone."""
    if family == GAUSSIAN:
        return math.log(d1), 1.0 / (d1 * d1), 1.0 / d1, 0.0
    if family == STUDENT:
        sigma, nu = d1, d2
        c = math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu) - 0.5 * (math.log(nu) + LOG_PI) - math.log(sigma)
        dc = 0.5 * (digamma(0.5 * (nu + 1.0)) - digamma(0.5 * nu) - 1.0 / nu)
        return c, dc, 1.0 / (sigma * sigma), 1.0 / sigma
    if family == NEGBINOMIAL:
        return -math.lgamma(d1), -digamma(d1), math.log(d1), 0.0
    if family == GAMMA:
        la = math.log(d1)
        return d1 * la - math.lgamma(d1), la + 1.0 - digamma(d1), la, 0.0
    return 0.0, 0.0, 0.0, 0.0


@nb.njit(**JIT)
def binary_logs(link, eta):
    """(log p, log(1 - p), d log p / d eta, d log(1 - p) / d eta) for the binary links."""
    if link == LOGIT:
        return -log1pexp(-eta), -log1pexp(eta), sigmoid(-eta), -sigmoid(eta)
    if link == PROBIT:
        lp, lq = log_ndtr(eta), log_ndtr(-eta)
        log_phi = -0.5 * eta * eta - HALF_LOG_2PI
        return lp, lq, math.exp(log_phi - lp), -math.exp(log_phi - lq)
    if link == CLOGLOG:
        u = math.exp(eta)
        return math.log(-math.expm1(-u)), -u, u / math.expm1(u) if u > 1e-300 else 1.0, -u
    return math.nan, math.nan, math.nan, math.nan


@nb.njit(**JIT)
def row_loglik(family, link, y, eta, trials, const, aux, d1, d2, k0, k1, k2, k3):
    """Log-likelihood of one observation and its derivatives (k0..k3 from dpar_terms)."""
    if family == GAUSSIAN:
        r = y - eta if link != LOG else y - math.exp(eta)
        dmu = 1.0 if link != LOG else y - r
        return const - 0.5 * r * r * k1 - k0, r * k1 * dmu, (r * r * k1 - 1.0) * k2, 0.0
    if family == BINOMIAL or family == BERNOULLI:
        lp, lq, dlp, dlq = binary_logs(link, eta)
        n = 1.0 if family == BERNOULLI else trials
        ll, grad = const, 0.0
        if y > 0.0:
            ll += y * lp
            grad += y * dlp
        if n - y > 0.0:
            ll += (n - y) * lq
            grad += (n - y) * dlq
        return ll, grad, 0.0, 0.0
    if link == LOG:
        mu = math.exp(eta)
        dmu = mu
    else:
        mu = eta
        dmu = 1.0
    if family == STUDENT:
        nu = d2
        r = y - mu
        z2 = r * r * k2
        lg = math.log1p(z2 / nu)
        ll = k0 - 0.5 * (nu + 1.0) * lg
        dmu_ = (nu + 1.0) * r / (nu / k2 + r * r)
        dsigma = (-1.0 + (nu + 1.0) * z2 / (nu + z2)) * k3
        dnu = k1 + 0.5 * (-lg + (nu + 1.0) * z2 / (nu * (nu + z2)))
        return ll, dmu_ * dmu, dsigma, dnu
    if mu <= 0.0 and not (family == POISSON and mu == 0.0 and y == 0.0):
        return -math.inf, math.nan, math.nan, math.nan
    if family == POISSON:
        if link == LOG:
            return const + y * eta - mu, y - mu, 0.0, 0.0
        ll = const - mu
        if y > 0.0:
            ll += y * math.log(mu)
        return ll, y / mu - 1.0 if y > 0.0 else -1.0, 0.0, 0.0
    if family == NEGBINOMIAL:
        a = d1
        lam = k2 - math.log(a + mu)  # log(a / (a + mu))
        ll = const + math.lgamma(y + a) + k0 + a * lam
        if y > 0.0:
            ll += y * (math.log(mu) - math.log(a + mu))
        dmu_ = y / mu - (y + a) / (a + mu)
        da = digamma(y + a) + k1 + lam + 1.0 - (y + a) / (a + mu)
        return ll, dmu_ * dmu, da, 0.0
    if family == GAMMA:
        a = d1
        lmu = math.log(mu)
        ll = k0 - a * lmu + (a - 1.0) * aux - a * y / mu
        dmu_ = a * (y - mu) / (mu * mu)
        da = k1 - lmu + aux - y / mu
        return ll, dmu_ * dmu, da, 0.0
    return math.nan, math.nan, math.nan, math.nan
