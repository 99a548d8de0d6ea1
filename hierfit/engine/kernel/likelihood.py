"""One row's log-likelihood and its derivatives, for every family and link (numba).

``row_loglik`` returns (log p(y | eta, dpars), d/d eta, d/d dpar1, d/d dpar2) with the
family's distributional parameters in the order hierfit.families declares them
(gaussian: sigma; student: sigma, nu; negbinomial and gamma: shape; zero-inflated and
hurdle families: their count part's shape, then zi or hu).  The ordinal ``cumulative``
family's rows, whose ordered thresholds are a vector parameter, are ``cumulative_rows``.  What depends on
the distributional parameters alone is computed once by ``dpar_terms`` (once per
evaluation when they are parameters, per row when they have a formula); what depends
on y alone comes precomputed per row (hierfit.engine.kernel.spec.row_terms): ``const`` (e.g.
-log y!) and ``aux`` (log y for the gamma family).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from hierfit.engine.kernel.codes import (BERNOULLI, BETA, BINOMIAL, CLOGLOG, EXPONENTIAL, GAMMA, GAUSSIAN,
                                         HURDLE_LOGNORMAL, HURDLE_NEGBINOMIAL, HURDLE_POISSON, INVERSE, LOG, LOGIT,
                                         LOGNORMAL, NEGBINOMIAL, POISSON, PROBIT, STUDENT, WEIBULL, ZI_NEGBINOMIAL,
                                         ZI_POISSON)
from hierfit.engine.kernel.codes import (A_WEIGHTS, D_LINK, D_LOWER, D_SOURCE, D_WHERE, DPAR_WIDTH, H_ADDITION, H_DPARS,
                                         H_LINK, H_NDPAR, H_THRESH, H_Y, SRC_PARAM, TH_CODES, TH_N, TH_POS, TH_PRIORS)
from hierfit.engine.kernel.scalar import JIT, LOG_PI, digamma, log1pexp, log_ndtr, prior_logp, sigmoid

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@nb.njit(**JIT)
def dpar_terms(family, d1, d2):
    """Terms of the log-likelihood that depend on the distributional parameters alone."""
    if family == GAUSSIAN or family == LOGNORMAL or family == HURDLE_LOGNORMAL:
        return math.log(d1), 1.0 / (d1 * d1), 1.0 / d1, 0.0
    if family == STUDENT:
        sigma, nu = d1, d2
        c = math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu) - 0.5 * (math.log(nu) + LOG_PI) - math.log(sigma)
        dc = 0.5 * (digamma(0.5 * (nu + 1.0)) - digamma(0.5 * nu) - 1.0 / nu)
        return c, dc, 1.0 / (sigma * sigma), 1.0 / sigma
    if family == NEGBINOMIAL or family == ZI_NEGBINOMIAL or family == HURDLE_NEGBINOMIAL:
        return -math.lgamma(d1), -digamma(d1), math.log(d1), 0.0
    if family == GAMMA:
        la = math.log(d1)
        return d1 * la - math.lgamma(d1), la + 1.0 - digamma(d1), la, 0.0
    if family == BETA:
        return math.lgamma(d1), digamma(d1), 0.0, 0.0
    if family == WEIBULL:  # log k, g = lgamma(1 + 1/k), k dg/dk
        return math.log(d1), math.lgamma(1.0 + 1.0 / d1), -digamma(1.0 + 1.0 / d1) / d1, 0.0
    return 0.0, 0.0, 0.0, 0.0


@nb.njit(**JIT)
def count_loglik(negbin, y, mu, const, a, k0, k1, k2):
    """(log p, d/d mu, d/d shape) of a Poisson or (negbin) negative binomial count with mean mu."""
    if not negbin:
        ll = const - mu
        if y > 0.0:
            ll += y * math.log(mu)
        return ll, y / mu - 1.0 if y > 0.0 else -1.0, 0.0
    lam = k2 - math.log(a + mu)  # log(a / (a + mu))
    ll = const + math.lgamma(y + a) + k0 + a * lam
    if y > 0.0:
        ll += y * (math.log(mu) - math.log(a + mu))
    return ll, y / mu - (y + a) / (a + mu), digamma(y + a) + k1 + lam + 1.0 - (y + a) / (a + mu)


@nb.njit(**JIT)
def zero_inflated(negbin, y, mu, dmu, const, a, p, k0, k1, k2):
    """(log p, d/d eta, d/d shape, d/d zi): zi [y = 0] + (1 - zi) count(y)."""
    lc, gmu, ga = count_loglik(negbin, y, mu, const, a, k0, k1, k2)
    if y > 0.0:
        return math.log1p(-p) + lc, gmu * dmu, ga, -1.0 / (1.0 - p)
    m = math.log1p(-p) + lc
    lz = math.log(p)
    hi = max(lz, m)
    ll = hi + math.log(math.exp(lz - hi) + math.exp(m - hi))
    w = math.exp(m - ll)  # the count part's share of P(y = 0)
    return ll, w * gmu * dmu, w * ga, math.exp(-ll) - math.exp(lc - ll)


@nb.njit(**JIT)
def hurdle(negbin, y, mu, dmu, const, a, p, k0, k1, k2):
    """(log p, d/d eta, d/d shape, d/d hu): hu [y = 0] + (1 - hu) count(y) / P(count > 0) [y > 0]."""
    if y == 0.0:
        return math.log(p), 0.0, 0.0, 1.0 / p
    lc, gmu, ga = count_loglik(negbin, y, mu, const, a, k0, k1, k2)
    if negbin:
        lp0 = a * (k2 - math.log(a + mu))
        dp0_mu = -a / (a + mu)
        dp0_a = k2 - math.log(a + mu) + 1.0 - a / (a + mu)
    else:
        lp0, dp0_mu, dp0_a = -mu, -1.0, 0.0
    tail = math.log(-math.expm1(lp0))  # log P(count > 0)
    dtail = -1.0 / math.expm1(-lp0)  # d tail / d log P(count = 0)
    return (math.log1p(-p) + lc - tail, (gmu - dtail * dp0_mu) * dmu, ga - dtail * dp0_a, -1.0 / (1.0 - p))


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
    if family == LOGNORMAL or family == HURDLE_LOGNORMAL:  # mu: the mean of log y (identity link)
        if family == HURDLE_LOGNORMAL and y == 0.0:
            return math.log(d2), 0.0, 0.0, 1.0 / d2
        r = aux - eta
        ll = const - 0.5 * r * r * k1 - k0
        if family == HURDLE_LOGNORMAL:
            return ll + math.log1p(-d2), r * k1, (r * r * k1 - 1.0) * k2, -1.0 / (1.0 - d2)
        return ll, r * k1, (r * r * k1 - 1.0) * k2, 0.0
    if link == LOG:
        mu = math.exp(eta)
        dmu = mu
    elif link == INVERSE:
        mu = 1.0 / eta
        dmu = -mu * mu
    elif link == LOGIT:
        mu = sigmoid(eta)
        dmu = mu * (1.0 - mu)
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
    if family == ZI_POISSON:  # zi is the first distributional parameter
        ll, g, _, gz = zero_inflated(False, y, mu, dmu, const, 1.0, d1, k0, k1, k2)
        return ll, g, gz, 0.0
    if family == ZI_NEGBINOMIAL:
        return zero_inflated(True, y, mu, dmu, const, d1, d2, k0, k1, k2)
    if family == HURDLE_POISSON:
        ll, g, _, gh = hurdle(False, y, mu, dmu, const, 1.0, d1, k0, k1, k2)
        return ll, g, gh, 0.0
    if family == HURDLE_NEGBINOMIAL:
        return hurdle(True, y, mu, dmu, const, d1, d2, k0, k1, k2)
    if family == BETA:
        phi = d1
        if mu >= 1.0:
            return -math.inf, math.nan, math.nan, math.nan
        a, b = mu * phi, (1.0 - mu) * phi
        l1y = math.log1p(-y)
        ll = k0 - math.lgamma(a) - math.lgamma(b) + (a - 1.0) * aux + (b - 1.0) * l1y
        da, db = digamma(a), digamma(b)
        return ll, phi * (db - da + aux - l1y) * dmu, k1 - mu * da - (1.0 - mu) * db + mu * aux + (1.0 - mu) * l1y, 0.0
    if family == EXPONENTIAL:
        return -math.log(mu) - y / mu, (y - mu) / (mu * mu) * dmu, 0.0, 0.0
    if family == WEIBULL:
        k = d1
        lmu = math.log(mu)
        z = aux - lmu + k1  # log(y / scale)
        t = math.exp(k * z)
        ll = k0 - k * (lmu - k1) + (k - 1.0) * aux - t
        return ll, k * (t - 1.0) / mu * dmu, 1.0 / k + z + k2 - t * (z + k2), 0.0
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


@nb.njit(**JIT)
def dpar_value(x, lower, logit):
    """(value, d value / d x) of a distributional parameter: lower + exp(x), or the inverse logit of x."""
    if logit:
        v = sigmoid(x)
        return v, v * (1.0 - v)
    e = math.exp(x)
    return lower + e, e


@nb.njit(**JIT)
def read_dpars(x, ints, floats):
    """The (at most two) distributional parameters of the mean's family as the program lays them out.

    Returns ``(ndp, src, where, logit, lower, val, chain, per_row)``: per parameter its source
    (a sampled parameter or a linear predictor), position, logit link flag, lower bound, value and
    d value / d x for sampled parameters, and whether any is a per-row linear predictor.
    """
    ndp = min(ints[H_NDPAR], 2)
    src = np.zeros(2, dtype=np.int64)
    where = np.zeros(2, dtype=np.int64)
    logit = np.zeros(2, dtype=np.bool_)
    lower = np.zeros(2)
    val = np.zeros(2)
    chain = np.zeros(2)  # d value / d (its unconstrained x or linear predictor)
    per_row = False
    for d in range(ndp):
        row = ints[H_DPARS] + d * DPAR_WIDTH
        src[d], where[d] = ints[row + D_SOURCE], ints[row + D_WHERE]
        lower[d] = floats[ints[row + D_LOWER]]
        logit[d] = ints[row + D_LINK] == LOGIT
        if src[d] == SRC_PARAM:
            val[d], chain[d] = dpar_value(x[where[d]], lower[d], logit[d])
        else:
            per_row = True
    return ndp, src, where, logit, lower, val, chain, per_row


# -- the ordinal (cumulative) family ----------------------------------------------------------------------------------

LOG_2 = math.log(2.0)


@nb.njit(**JIT)
def log1mexp(u):
    """log(1 - exp(u)) for u <= 0 (Maechler's two branches); -inf at 0."""
    if u > -LOG_2:
        return math.log(-math.expm1(u))
    return math.log1p(-math.exp(u))


@nb.njit(**JIT)
def normal_logs(t):
    """(log Phi(t), log phi(t))."""
    return log_ndtr(t), -0.5 * t * t - HALF_LOG_2PI


@nb.njit(**JIT)
def category_loglik(link, a, b, first, last):
    """(log P, d log P / d a, d log P / d b) of P = F(b) - F(a), F the logistic or standard normal cdf.

    ``first``: a = -inf (P = F(b)); ``last``: b = +inf (P = F(-a)).  Logit: log P =
    log sigmoid(b) + log sigmoid(-a) + log(1 - exp(a - b)) (no cancellation anywhere).
    Probit: log Phi of the two ends in the lower tail (both ends above 0 are reflected,
    Phi(b) - Phi(a) = Phi(-a) - Phi(-b)), their difference by log1mexp; derivatives
    phi(b) / P and -phi(a) / P in log space.
    """
    if link == LOGIT:  # with t = exp(-|v|): log sigmoid(v) = -max(-v, 0) - log1p(t), sigmoid(v) from t
        lb = lsb = 0.0
        if not last:
            t = math.exp(-abs(b))
            lb = -max(-b, 0.0) - math.log1p(t)  # log sigmoid(b)
            lsb = t / (1.0 + t) if b >= 0.0 else 1.0 / (1.0 + t)  # sigmoid(-b)
        la = sa = 0.0
        if not first:
            t = math.exp(-abs(a))
            la = -max(a, 0.0) - math.log1p(t)  # log sigmoid(-a)
            sa = 1.0 / (1.0 + t) if a >= 0.0 else t / (1.0 + t)  # sigmoid(a)
        if first or last:
            return lb + la, -sa, lsb
        d = b - a  # log(1 - exp(-d)) and r = 1 / expm1(d), without cancellation on either side of log 2
        if d > LOG_2:
            e = math.exp(-d)
            l1, r = math.log1p(-e), e / (1.0 - e)
        elif d > 0.0:
            em = math.expm1(-d)
            l1, r = math.log(-em), (1.0 + em) / -em
        else:
            l1, r = -math.inf, math.inf
        return lb + la + l1, -sa - r, lsb + r
    if first:
        lF, lf = normal_logs(b)
        return lF, 0.0, math.exp(lf - lF)
    if last:
        lF, lf = normal_logs(-a)
        return lF, -math.exp(lf - lF), 0.0
    if a > 0.0:
        hi, lfa = normal_logs(-a)
        lo, lfb = normal_logs(-b)
    else:
        hi, lfb = normal_logs(b)
        lo, lfa = normal_logs(a)
    lp = hi + log1mexp(lo - hi)
    return lp, -math.exp(lfa - lp), math.exp(lfb - lp)


@nb.njit(**JIT)
def cumulative_rows(x, grad, ints, floats, eta, deta, n):
    """The ordinal rows' log-likelihood, the thresholds' priors and their transform's Jacobian.

    The thresholds theta (at the predictor means) come from PyMC's ordered transform of
    their n contiguous elements of x (the program's threshold table, ``H_THRESH``); row i
    with category k contributes w_i log(F(theta_k - eta_i) - F(theta_{k-1} - eta_i)) (w_i the
    weights, else 1).  d/d eta goes into ``deta``; d/d theta is carried back through the
    transform into ``grad``.
    """
    link = ints[H_LINK]
    t = ints[H_THRESH]
    m, p0, fo = ints[t + TH_N], ints[t + TH_POS], ints[t + TH_PRIORS]
    theta = np.empty(m)
    theta[0] = x[p0]
    lp = 0.0
    for k in range(1, m):
        theta[k] = theta[k - 1] + math.exp(x[p0 + k])
        lp += x[p0 + k]  # the Jacobian
    dtheta = np.zeros(m)
    for k in range(m):
        f = fo + 5 * k
        val, d = prior_logp(ints[t + TH_CODES + k], theta[k], floats[f], floats[f + 1], floats[f + 2])
        lp += val + floats[f + 4]
        dtheta[k] += d
    wo = ints[ints[H_ADDITION] + A_WEIGHTS] if ints[H_ADDITION] >= 0 else -1
    yo = ints[H_Y]
    for i in range(n):
        k = int(floats[yo + i])
        e = eta[i]
        a = theta[k - 1] - e if k > 0 else 0.0
        b = theta[k] - e if k < m else 0.0
        ll, ga, gb = category_loglik(link, a, b, k == 0, k == m)
        if wo >= 0:
            w = floats[wo + i]
            ll, ga, gb = w * ll, w * ga, w * gb
        lp += ll
        deta[i] -= ga + gb
        if k > 0:
            dtheta[k - 1] += ga
        if k < m:
            dtheta[k] += gb
    s = 0.0  # theta_k = x_0 + sum_{1 <= j <= k} exp(x_j): d/dx_j = exp(x_j) sum_{k >= j} dtheta_k
    for k in range(m - 1, 0, -1):
        s += dtheta[k]
        grad[p0 + k] += s * math.exp(x[p0 + k]) + 1.0
    grad[p0] += s + dtheta[0]
    return lp
