"""Custom families: any PyMC distribution as the response distribution.

:func:`custom_family` wraps a function that creates a PyMC random variable from the
mean ``mu`` (the inverse link of the linear predictor) and the distributional
parameters.  Such a family has no compiled kernel: it is sampled through the PyMC
model (``kernel="pytensor"``, compiled once per model structure).  Predictions,
LOO and checks need the numpy side: ``mean``, ``logpdf`` and ``simulate`` functions
(without them only the posterior of the parameters is available).  Give module-level
functions (not lambdas) to save and load the fit.

Example
-------
>>> import numpy as np
>>> from scipy import stats
>>> def laplace(name, mu, observed, scale):
...     import pymc as pm
...     return pm.Laplace(name, mu=mu, b=scale, observed=observed)
>>> fam = custom_family("laplace", laplace, dpars={"scale": "log"},
...                     logpdf=lambda y, mu, scale: stats.laplace(mu, scale).logpdf(y))
>>> fam
laplace(link='identity')
>>> round(float(fam.logpdf(np.array([0.0]), np.array([0.0]), {"scale": np.array([1.0])})[0]), 4)
-0.6931
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from hierfit.errors import HierfitError
from hierfit.families.base import LINKS, DPar, Family
from hierfit.spec.priors import Dist

__all__ = ["CustomFamily", "custom_family", "rebuild_custom"]


_RESERVED = {"b", "beta", "Intercept", "y", "mu", "y_obs", "trials", "X"}


def _half_t(y):
    return Dist("student_t", (3.0, 0.0, 2.5))


@dataclass(frozen=True, repr=False)
class CustomFamily(Family):
    """A family defined by a PyMC distribution (see :func:`custom_family`)."""

    name: str = "custom"
    link_name: str = "identity"
    links: tuple[str, ...] = tuple(LINKS)
    dpars: tuple[DPar, ...] = ()
    discrete: bool = False
    distribution: Callable | None = None
    functions: dict = field(default_factory=dict)  # mean, variance, logpdf, simulate

    def __reduce__(self):
        spec = {d.name: d.link for d in self.dpars}
        return (rebuild_custom, (self.name, self.distribution, self.link_name, spec, self.discrete,
                                 dict(self.functions)))

    def __hash__(self):
        return hash((self.name, self.link_name, self.dpars))

    def _need(self, what: str) -> Callable:
        fn = self.functions.get(what)
        if fn is None:
            raise HierfitError(f"the custom family {self.name!r} was given no {what}= function; pass one to "
                               f"hierfit.families.custom_family to use predictions, LOO and checks")
        return fn

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        return self.distribution(name, mu, observed, **dpars)

    def mean(self, mu, dpars, trials=None):
        fn = self.functions.get("mean")
        return mu if fn is None else fn(mu, **dpars)

    def variance(self, mu, dpars, trials=None):
        return self._need("variance")(mu, **dpars)

    def logpdf(self, y, mu, dpars, trials=None):
        return self._need("logpdf")(y, mu, **dpars)

    def cdf(self, y, mu, dpars, trials=None):
        return self._need("cdf")(y, mu, **dpars)

    def simulate(self, rng, mu, dpars, trials=None):
        return self._need("simulate")(rng, mu, **dpars)

    def link_scale_variance(self, mu_mean, dpars):
        raise HierfitError(f"R² needs the link-scale variance of the custom family {self.name!r}")


def custom_family(name: str, distribution: Callable, *, link: str = "identity", dpars: dict | None = None,
                  discrete: bool = False, mean: Callable | None = None, variance: Callable | None = None,
                  logpdf: Callable | None = None, simulate: Callable | None = None,
                  cdf: Callable | None = None) -> CustomFamily:
    """A response family from a PyMC distribution (brms's ``custom_family``).

    Parameters
    ----------
    name : str
        Shown in the summary.
    distribution : callable
        ``distribution(name, mu, observed, **dpars)`` creates the PyMC random variable
        of the response (inside the model), e.g. ``pm.Laplace(name, mu=mu, b=b, observed=observed)``.
    link : str
        The link of ``mu``: identity, log, logit, probit, cloglog or inverse.
    dpars : dict
        Distributional parameters and their links, ``{"scale": "log"}`` (positive) or
        ``"logit"`` (a probability); each is a parameter (prior student_t(3, 0, 2.5),
        half for log links; beta(1, 1) for logit links) or gets a formula with ``bf()``.
    mean, variance, logpdf, simulate, cdf : callable, optional
        numpy versions for predictions (``mean(mu, **dpars)``), LOO (``logpdf(y, mu,
        **dpars)``), posterior predictive checks and quantile residuals
        (``simulate(rng, mu, **dpars)``); ``mean`` defaults to ``mu``.

    The family is sampled through the PyMC model (compiled per model).

    Example
    -------
    >>> def laplace(name, mu, observed, scale):
    ...     import pymc as pm
    ...     return pm.Laplace(name, mu=mu, b=scale, observed=observed)
    >>> custom_family("laplace", laplace, dpars={"scale": "log"}).dpar_names
    ('scale',)
    """
    if not callable(distribution):
        raise HierfitError("custom_family: distribution must be a function (name, mu, observed, **dpars) -> PyMC RV")
    spec = dict(dpars or {})
    declared = []
    for dp, dlink in spec.items():
        if dp in _RESERVED or not dp.isidentifier():
            raise HierfitError(f"custom_family: {dp!r} is reserved for the model's own variables or not a name; "
                               f"call the parameter something else (e.g. 'scale', 'kappa')")
        if dlink not in ("log", "logit"):
            raise HierfitError(f"custom_family: the link of {dp!r} must be 'log' or 'logit', got {dlink!r}")
        prior = _half_t if dlink == "log" else (lambda y: Dist("beta", (1.0, 1.0)))
        declared.append(DPar(dp, dlink, default_prior=prior, dispersion=dlink == "log"))
    functions = {k: v for k, v in dict(mean=mean, variance=variance, logpdf=logpdf, simulate=simulate,
                                       cdf=cdf).items() if v is not None}
    return CustomFamily(name=name, link_name=link, dpars=tuple(declared), discrete=discrete,
                        distribution=distribution, functions=functions)


def rebuild_custom(name, distribution, link, dpars, discrete, functions) -> CustomFamily:
    """A custom family from its saved pieces (how a saved fit restores it)."""
    return custom_family(name, distribution, link=link, dpars=dpars, discrete=discrete, **functions)

