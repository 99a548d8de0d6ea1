"""Families for proportions and positive responses: beta, lognormal, weibull, exponential (brms's).

``beta``: y in (0, 1), mean mu (logit link), precision phi: Beta(mu phi, (1 - mu) phi).
``lognormal``: log y ~ N(mu, sigma), mu on the identity link (the mean of log y).
``weibull``: mean mu (log link) and shape k; scale = mu / Gamma(1 + 1/k).
``exponential``: mean mu (log link).

hierfit's compiled kernel evaluates them (beta with its logit link).

Example
-------
>>> import numpy as np
>>> round(float(Lognormal().mean(np.array([0.0]), {"sigma": np.array([1.0])})[0]), 4)
1.6487
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hierfit.errors import DataError
from hierfit.families import codes as codes
from hierfit.families.base import DPar, Family, scipy_stats
from hierfit.families.classic import sigma_prior
from hierfit.spec.priors import Dist

__all__ = ["Beta", "Lognormal", "Weibull", "Exponential"]


def _positive(y, column, name):
    bad = y <= 0
    if bad.any():
        raise DataError(f"{name} response '{column}' must be positive; {int(bad.sum())} row(s) are zero or negative")


def _gamma001(y):
    return Dist("gamma", (0.01, 0.01))


@dataclass(frozen=True, repr=False)
class Beta(Family):
    """brms's ``beta`` family for proportions strictly between 0 and 1."""

    name: str = "beta"
    link_name: str = "logit"
    links: tuple[str, ...] = ("logit", "probit", "cloglog")
    dpars: tuple[DPar, ...] = (DPar("phi", "log", default_prior=_gamma001, symbol=r"\phi"),)
    kernel_code: ClassVar[int | None] = codes.BETA
    kernel_links: ClassVar[tuple[str, ...]] = ("logit",)

    def row_terms(self, y, trials):
        y = np.asarray(y, dtype=float)
        return np.zeros_like(y), np.log(y)

    def validate(self, y, trials, column):
        bad = (y <= 0) | (y >= 1)
        if bad.any():
            raise DataError(f"beta response '{column}' must lie strictly between 0 and 1; {int(bad.sum())} row(s) "
                            "do not (for 0s and 1s use a zero-one-inflated model or transform the data)")

    def working_variance(self, y, trials):
        m = float(np.clip(np.mean(y), 1e-3, 1 - 1e-3))
        return float(np.var(y)) / (m * (1 - m)) ** 2 if len(y) > 1 else 1.0

    def latex(self, dsym, trials):
        phi = dsym("phi")
        return r"\mu_{i}", rf"\operatorname{{Beta}} \left(\mu_{{i}} {phi}, (1 - \mu_{{i}}) {phi} \right)"

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.Beta(name, alpha=mu * dpars["phi"], beta=(1.0 - mu) * dpars["phi"], observed=observed)

    def variance(self, mu, dpars, trials=None):
        return mu * (1.0 - mu) / (1.0 + dpars["phi"])

    def scipy_dist(self, mu, dpars, trials=None):
        phi = np.asarray(dpars["phi"])
        return scipy_stats().beta(mu * phi, (1.0 - mu) * phi)

    def link_scale_variance(self, mu_mean, dpars):
        m = min(max(mu_mean, 1e-6), 1 - 1e-6)
        return float(np.mean(1.0 / ((1.0 + np.asarray(dpars["phi"])) * m * (1.0 - m))))  # delta method


def _log_y(y):
    return np.log(np.asarray(y, dtype=float))


@dataclass(frozen=True, repr=False)
class Lognormal(Family):
    """brms's ``lognormal``: log y ~ Normal(mu, sigma); mu on the identity link."""

    name: str = "lognormal"
    link_name: str = "identity"
    links: tuple[str, ...] = ("identity",)
    dpars: tuple[DPar, ...] = (DPar("sigma", "log", default_prior=lambda y: sigma_prior(_log_y(y)),
                                    symbol=r"\sigma"),)
    kernel_code: ClassVar[int | None] = codes.LOGNORMAL
    kernel_links: ClassVar[tuple[str, ...]] = ("identity",)

    def row_terms(self, y, trials):
        ly = _log_y(y)
        return -ly - 0.5 * np.log(2.0 * np.pi), ly

    def validate(self, y, trials, column):
        _positive(y, column, "lognormal")

    def intercept_prior(self, y):
        return super().intercept_prior(_log_y(y))

    def effect_scale(self, y):
        return super().effect_scale(_log_y(y))

    def sd_prior(self, y):
        return super().sd_prior(_log_y(y))

    def working_variance(self, y, trials):
        return float(np.var(_log_y(y))) if len(y) > 1 else 1.0

    def latex(self, dsym, trials):
        return r"\mu_{i}", rf"\operatorname{{LogNormal}} \left(\mu_{{i}}, {dsym('sigma')}^2 \right)"

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.LogNormal(name, mu=mu, sigma=dpars["sigma"], observed=observed)

    def mean(self, mu, dpars, trials=None):
        return np.exp(mu + 0.5 * dpars["sigma"] ** 2)

    def variance(self, mu, dpars, trials=None):
        s2 = dpars["sigma"] ** 2
        return np.expm1(s2) * np.exp(2 * mu + s2)

    def scipy_dist(self, mu, dpars, trials=None):
        return scipy_stats().lognorm(dpars["sigma"], scale=np.exp(mu))

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.mean(np.asarray(dpars["sigma"]) ** 2))


@dataclass(frozen=True, repr=False)
class Weibull(Family):
    """brms's ``weibull``: mean mu (log link), shape k; scale mu / Gamma(1 + 1/k)."""

    name: str = "weibull"
    link_name: str = "log"
    links: tuple[str, ...] = ("log", "identity")
    dpars: tuple[DPar, ...] = (DPar("shape", "log", default_prior=_gamma001, symbol=r"k"),)
    kernel_code: ClassVar[int | None] = codes.WEIBULL
    kernel_links: ClassVar[tuple[str, ...]] = ("log", "identity")

    def row_terms(self, y, trials):
        y = np.asarray(y, dtype=float)
        return np.zeros_like(y), np.log(y)

    def validate(self, y, trials, column):
        _positive(y, column, "weibull")

    def latex(self, dsym, trials):
        k = dsym("shape")
        return r"\mu_{i}", (rf"\operatorname{{Weibull}} \left(\text{{shape}} = {k}, "
                            rf"\text{{scale}} = \mu_{{i}} / \Gamma(1 + 1 / {k}) \right)")

    @staticmethod
    def _scale(mu, k):
        from scipy.special import gamma as gamma_fn

        return mu / gamma_fn(1.0 + 1.0 / k)

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm
        import pytensor.tensor as pt

        k = dpars["shape"]
        return pm.Weibull(name, alpha=k, beta=mu / pt.exp(pt.gammaln(1.0 + 1.0 / k)), observed=observed)

    def variance(self, mu, dpars, trials=None):
        from scipy.special import gamma as gamma_fn

        k = np.asarray(dpars["shape"])
        return self._scale(mu, k) ** 2 * gamma_fn(1.0 + 2.0 / k) - mu**2

    def scipy_dist(self, mu, dpars, trials=None):
        k = np.asarray(dpars["shape"])
        return scipy_stats().weibull_min(k, scale=self._scale(mu, k))

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.mean(np.pi**2 / (6.0 * np.asarray(dpars["shape"]) ** 2)))  # var(log y)


@dataclass(frozen=True, repr=False)
class Exponential(Family):
    """brms's ``exponential``: mean mu (log link)."""

    name: str = "exponential"
    link_name: str = "log"
    links: tuple[str, ...] = ("log", "identity")
    kernel_code: ClassVar[int | None] = codes.EXPONENTIAL
    kernel_links: ClassVar[tuple[str, ...]] = ("log", "identity")

    def validate(self, y, trials, column):
        _positive(y, column, "exponential")

    def latex(self, dsym, trials):
        return r"\mu_{i}", r"\operatorname{Exponential} \left(\text{rate} = 1 / \mu_{i} \right)"

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.Exponential(name, lam=1.0 / mu, observed=observed)

    def variance(self, mu, dpars, trials=None):
        return mu**2

    def scipy_dist(self, mu, dpars, trials=None):
        return scipy_stats().expon(scale=mu)

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.pi**2 / 6.0)  # var(log y)
