"""Fast row loops of the commonest non-Gaussian likelihoods (numba).

:func:`hierfit.engine.kernel.likelihood.row_loglik` handles every family and link row
by row, branching on both; these loops are the same log-likelihoods with the family
and link fixed outside the loop and one exponential (and one log1p) per row:

* ``logit_rows``: Bernoulli and binomial, logit link.  With t = exp(-|eta|),
  log p = -max(-eta, 0) - log1p(t), log(1 - p) = -max(eta, 0) - log1p(t), so
  ``ll = const - n log1p(t) - y max(-eta, 0) - (n - y) max(eta, 0)`` and
  ``d ll / d eta = y - n sigmoid(eta)``.
* ``poisson_log_rows``: Poisson, log link: ``ll = const + y eta - exp(eta)``.

``tests/test_kernel.py`` checks the kernel's log density and gradient against PyMC's for
these families.
"""

from __future__ import annotations

import math

import numba as nb

from hierfit.engine.kernel.scalar import JIT


@nb.njit(**JIT)
def logit_rows(y, trials, has_trials, const, eta, deta):
    """Sum over rows of the Bernoulli (``has_trials`` False) or binomial log-likelihood, logit link; d/d eta into deta."""
    lp = 0.0
    for i in range(y.shape[0]):
        e = eta[i]
        n = trials[i] if has_trials else 1.0
        t = math.exp(-abs(e))
        l1 = math.log1p(t)
        if e >= 0.0:
            p = 1.0 / (1.0 + t)
            lp += const[i] - n * l1 - (n - y[i]) * e
        else:
            p = t / (1.0 + t)
            lp += const[i] - n * l1 + y[i] * e
        deta[i] += y[i] - n * p
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
