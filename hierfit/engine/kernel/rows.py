"""Fast row loops of the commonest non-Gaussian likelihoods (numba).

:func:`hierfit.engine.kernel.likelihood.row_loglik` handles every family and link row
by row, branching on both; these loops are the same log-likelihoods with the family
and link fixed outside the loop and one exponential (and one log1p) per row:

* ``logit_rows``: Bernoulli and binomial, logit link.  With t = exp(-|eta|),
  log p = -max(-eta, 0) - log1p(t), log(1 - p) = -max(eta, 0) - log1p(t), so
  ``ll = const - n log1p(t) - y max(-eta, 0) - (n - y) max(eta, 0)`` and
  ``d ll / d eta = y - n sigmoid(eta)``; with exp and log1p from
  :mod:`hierfit.engine.kernel.vecmath` the loop has no calls and no branches, so it runs
  on the vector units (each row's term goes to a small scratch array, summed 512 rows at a time).
* ``poisson_log_rows``: Poisson, log link: ``ll = const + y eta - exp(eta)``.

``tests/test_kernel.py`` checks the kernel's log density and gradient against PyMC's for
these families.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from hierfit.engine.kernel.scalar import JIT
from hierfit.engine.kernel.vecmath import VEC, exp_nonpos, log1p_unit

CHUNK = 512  # rows per pass of the logit loop


@nb.njit(**VEC)
def logit_terms(y, trials, has_trials, const, eta, deta, ll):
    """Each row's Bernoulli or binomial log-likelihood (logit link) into ll; d/d eta added to deta (SIMD)."""
    for i in range(y.shape[0]):
        e = eta[i]
        n = trials[i] if has_trials else 1.0
        t = exp_nonpos(-min(abs(e), 708.0))
        ll[i] = const[i] + y[i] * e - n * (max(e, 0.0) + log1p_unit(t))
        deta[i] += y[i] - n * (1.0 if e >= 0.0 else t) / (1.0 + t)


@nb.njit(cache=True, error_model="numpy", nogil=True, fastmath={"reassoc", "contract"})
def vector_sum(a):
    """Sum of an array, in whatever order the vector units like."""
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i]
    return s


@nb.njit(**JIT)
def logit_rows(y, trials, has_trials, const, eta, deta):
    """Sum over rows of the Bernoulli (``has_trials`` False) or binomial log-likelihood, logit link; d/d eta into deta."""
    n = y.shape[0]
    ll = np.empty(min(n, CHUNK))  # small: a scratch array of all rows would be mapped afresh on every call
    lp = 0.0
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        m = b - a
        logit_terms(y[a:b], trials[a:b], has_trials, const[a:b], eta[a:b], deta[a:b], ll[:m])
        lp += vector_sum(ll[:m])
    return lp


@nb.njit(**JIT)
def poisson_log_rows(y, const, eta, deta):
    """Sum over rows of the Poisson log-likelihood, log link; d/d eta into deta."""
    lp = 0.0
    for i in range(y.shape[0]):
        mu = math.exp(eta[i])
        lp += const[i] + y[i] * eta[i] - mu
        deta[i] += y[i] - mu
    return lp
