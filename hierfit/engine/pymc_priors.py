"""Priors as PyMC random variables: the engine's reading of :class:`hierfit.spec.priors.Dist`."""

from __future__ import annotations

import numpy as np

from hierfit.errors import PriorError
from hierfit.spec.priors import POSITIVE_ONLY, Dist

__all__ = ["pymc_rv", "dist_rv"]


def dist_rv(dist: Dist, name: str, positive: bool, lower: float = 0.0, **kwargs):
    """The PyMC random variable of a prior (half-distribution when ``positive``, truncated at ``lower``).

    Example
    -------
    >>> import pymc as pm
    >>> from hierfit.spec.priors import parse_dist
    >>> with pm.Model():
    ...     rv = dist_rv(parse_dist("exponential(2)"), "sd", positive=True)
    >>> rv.owner.op.__class__.__name__
    'ExponentialRV'
    """
    if dist.family == "lkj":
        raise PriorError("lkj() is only a prior for class 'cor'")
    return pymc_rv(name, dist.family, list(dist.params), positive, lower=lower, **kwargs)


def pymc_rv(name: str, family: str, params: list, positive: bool, lower: float = 0.0, **kwargs):
    """A PyMC random variable of ``family`` with (scalar or vector) ``params``.

    ``positive`` gives the half-distribution (bounded at 0) used for sd and sigma;
    ``lower`` > 0 truncates further (brms's ``nu`` has a lower bound of 1).

    Example
    -------
    >>> import pymc as pm
    >>> with pm.Model():
    ...     rv = pymc_rv("sd", "student_t", [3.0, 0.0, 2.5], positive=True)
    >>> rv.owner.op.__class__.__name__
    'HalfStudentTRV'
    """
    import pymc as pm

    p = [np.asarray(v, dtype=float) for v in params]
    if family in POSITIVE_ONLY and not positive:
        raise PriorError(f"{family}() is a prior for positive parameters (sd, sigma), not for coefficients")
    loc = {"normal": 0, "student_t": 1, "cauchy": 0}.get(family)
    half = positive and loc is not None and bool(np.all(p[loc] == 0)) and lower == 0
    table = {
        "normal": lambda: (pm.HalfNormal, dict(sigma=p[1])) if half else (pm.Normal, dict(mu=p[0], sigma=p[1])),
        "student_t": lambda: (pm.HalfStudentT, dict(nu=p[0], sigma=p[2])) if half
        else (pm.StudentT, dict(nu=p[0], mu=p[1], sigma=p[2])),
        "cauchy": lambda: (pm.HalfCauchy, dict(beta=p[1])) if half else (pm.Cauchy, dict(alpha=p[0], beta=p[1])),
        "exponential": lambda: (pm.Exponential, dict(lam=p[0])),
        "gamma": lambda: (pm.Gamma, dict(alpha=p[0], beta=p[1])),
        "lognormal": lambda: (pm.LogNormal, dict(mu=p[0], sigma=p[1])),
        "inv_gamma": lambda: (pm.InverseGamma, dict(alpha=p[0], beta=p[1])),
        "beta": lambda: (pm.Beta, dict(alpha=p[0], beta=p[1])),
    }
    if family not in table:
        raise PriorError(f"no PyMC translation for a {family} prior")
    cls, kw = table[family]()
    if half or not positive or (family in POSITIVE_ONLY and lower == 0):
        return cls(name, **kw, **kwargs)
    return pm.Truncated(name, cls.dist(**kw), lower=lower, **kwargs)
