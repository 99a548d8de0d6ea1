"""Zero-inflated and hurdle count families, and the hurdle lognormal (brms's families of the same names).

zero_inflated_*: y = 0 with probability ``zi``, else a draw of the count distribution
(which may itself be 0).  hurdle_*: y = 0 with probability ``hu``, else a draw of the
distribution truncated to y > 0.  ``zi`` and ``hu`` are parameters (brms's default
prior beta(1, 1)) or have their own formula on the logit scale (``zi = "~ x"`` in
:func:`hierfit.bf`, glmmTMB's ``ziformula=``).  ``mu`` is the mean of the count part
(brms); the expected response is (1 - zi) mu, or (1 - hu) mu / P(count > 0).

hierfit's compiled kernel evaluates them, zi and hu as parameters or formulas.

Example
-------
>>> import numpy as np
>>> f = ZeroInflatedPoisson()
>>> float(f.mean(np.array([2.0]), {"zi": np.array([0.25])})[0])
1.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hierfit.errors import DataError
from hierfit.families import codes as codes
from hierfit.families.base import DPar, Family, scipy_stats
from hierfit.families.classic import NEGBINOMIAL_SHAPE as SHAPE, check_counts, log_factorial, sigma_prior
from hierfit.spec.priors import Dist

__all__ = ["ZeroInflatedPoisson", "ZeroInflatedNegBinomial", "HurdlePoisson", "HurdleNegBinomial",
           "HurdleLognormal"]


def _beta11(y):
    return Dist("beta", (1.0, 1.0))


ZI = DPar("zi", "logit", default_prior=_beta11, symbol=r"\operatorname{zi}", dispersion=False)
HU = DPar("hu", "logit", default_prior=_beta11, symbol=r"\operatorname{hu}", dispersion=False)


def _count_part(family, mu, dpars):
    """The scipy distribution of the count part (poisson or negbinomial)."""
    if "shape" in dpars:
        shape = np.asarray(dpars["shape"])
        return scipy_stats().nbinom(shape, shape / (shape + mu))
    return scipy_stats().poisson(mu)


def _count_variance(mu, dpars):
    return mu + (mu**2 / dpars["shape"] if "shape" in dpars else 0.0)


def _bernoulli_draw(rng, p, shape):
    return rng.uniform(size=shape) < p


@dataclass(frozen=True, repr=False)
class _PoissonCounts(Family):
    """What the zero-inflated and hurdle count families share: Poisson row constants, count checks and the
    working variance of a log-link count (the parametrization choice's information per row)."""

    def row_terms(self, y, trials):
        return -log_factorial(y), np.zeros(np.shape(y))

    def validate(self, y, trials, column):
        check_counts(y, column)

    def working_variance(self, y, trials):
        return 1.0 / max(float(np.mean(y)), 1e-3) + 1.0


@dataclass(frozen=True, repr=False)
class ZeroInflatedPoisson(_PoissonCounts):
    """brms's ``zero_inflated_poisson``: P(y) = zi [y = 0] + (1 - zi) Poisson(y | mu)."""

    name: str = "zero_inflated_poisson"
    link_name: str = "log"
    links: tuple[str, ...] = ("log", "identity")
    dpars: tuple[DPar, ...] = (ZI,)
    discrete: bool = True
    count_symbol: ClassVar[str] = r"\operatorname{Poisson}"
    kernel_code: ClassVar[int | None] = codes.ZI_POISSON
    kernel_links: ClassVar[tuple[str, ...]] = ("log", "identity")

    def latex(self, dsym, trials):
        shape = rf", \text{{shape}} = {dsym('shape')}" if "shape" in self.dpar_names else ""
        return r"\mu_{i}", (rf"{dsym(self.dpars[-1].name)} \, \mathbb{{1}}[y = 0] + (1 - {dsym(self.dpars[-1].name)}) "
                            rf"\, {self.count_symbol} \left(\mu_{{i}}{shape} \right)")

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.ZeroInflatedPoisson(name, psi=1.0 - dpars["zi"], mu=mu, observed=observed)

    def mean(self, mu, dpars, trials=None):
        return (1.0 - dpars["zi"]) * mu

    def variance(self, mu, dpars, trials=None):
        zi = dpars["zi"]
        return (1.0 - zi) * (_count_variance(mu, dpars) + mu**2) - ((1.0 - zi) * mu) ** 2

    def logpdf(self, y, mu, dpars, trials=None):
        zi = np.asarray(dpars["zi"])
        with np.errstate(divide="ignore"):
            count = _count_part(self, mu, dpars).logpmf(y)
            return np.where(np.asarray(y) == 0, np.logaddexp(np.log(zi), np.log1p(-zi) + count),
                            np.log1p(-zi) + count)

    def cdf(self, y, mu, dpars, trials=None):
        zi = np.asarray(dpars["zi"])
        return np.where(np.asarray(y) >= 0, zi + (1.0 - zi) * _count_part(self, mu, dpars).cdf(y), 0.0)

    def simulate(self, rng, mu, dpars, trials=None):
        shape = np.broadcast_shapes(np.shape(mu), np.shape(dpars["zi"]))
        counts = _count_part(self, mu, dpars).rvs(size=shape, random_state=rng)
        return np.where(_bernoulli_draw(rng, dpars["zi"], shape), 0, counts)

    def link_scale_variance(self, mu_mean, dpars):
        zi = float(np.mean(dpars["zi"]))
        m = max(mu_mean * (1.0 - zi), 1e-12)
        var = float(np.mean(self.variance(np.asarray(mu_mean), {k: np.mean(v) for k, v in dpars.items()})))
        return float(np.log1p(var / m**2))  # lognormal approximation (Nakagawa et al. 2017)


@dataclass(frozen=True, repr=False)
class ZeroInflatedNegBinomial(ZeroInflatedPoisson):
    """brms's ``zero_inflated_negbinomial``: zi [y = 0] + (1 - zi) NegBinomial(y | mu, shape)."""

    name: str = "zero_inflated_negbinomial"
    dpars: tuple[DPar, ...] = (SHAPE, ZI)
    count_symbol: ClassVar[str] = r"\operatorname{NegBinomial}"
    kernel_code: ClassVar[int | None] = codes.ZI_NEGBINOMIAL

    def working_variance(self, y, trials):
        return 1.0 / max(float(np.mean(y)), 1e-3) + 2.0

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.ZeroInflatedNegativeBinomial(name, psi=1.0 - dpars["zi"], mu=mu, alpha=dpars["shape"],
                                               observed=observed)


@dataclass(frozen=True, repr=False)
class HurdlePoisson(_PoissonCounts):
    """brms's ``hurdle_poisson``: P(0) = hu; P(y > 0) = (1 - hu) Poisson(y | mu) / (1 - Poisson(0 | mu))."""

    name: str = "hurdle_poisson"
    link_name: str = "log"
    links: tuple[str, ...] = ("log",)
    dpars: tuple[DPar, ...] = (HU,)
    discrete: bool = True
    count_symbol: ClassVar[str] = r"\operatorname{Poisson}"
    kernel_code: ClassVar[int | None] = codes.HURDLE_POISSON
    kernel_links: ClassVar[tuple[str, ...]] = ("log",)

    def latex(self, dsym, trials):
        shape = rf", \text{{shape}} = {dsym('shape')}" if "shape" in self.dpar_names else ""
        return r"\mu_{i}", (rf"{dsym('hu')} \, \mathbb{{1}}[y = 0] + (1 - {dsym('hu')}) \, {self.count_symbol}"
                            rf"_{{y > 0}} \left(\mu_{{i}}{shape} \right)")

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.HurdlePoisson(name, psi=1.0 - dpars["hu"], mu=mu, observed=observed)

    def _p0(self, mu, dpars):
        return _count_part(self, mu, dpars).pmf(0)

    def mean(self, mu, dpars, trials=None):
        return (1.0 - dpars["hu"]) * mu / (1.0 - self._p0(mu, dpars))

    def variance(self, mu, dpars, trials=None):
        hu = dpars["hu"]
        pos = 1.0 - self._p0(mu, dpars)
        second = (_count_variance(mu, dpars) + mu**2) / pos  # E[y^2 | y > 0]
        m = (1.0 - hu) * mu / pos
        return (1.0 - hu) * second - m**2

    def logpdf(self, y, mu, dpars, trials=None):
        hu = np.asarray(dpars["hu"])
        part = _count_part(self, mu, dpars)
        with np.errstate(divide="ignore"):
            pos = np.log1p(-hu) + part.logpmf(y) - np.log1p(-part.pmf(0))
            return np.where(np.asarray(y) == 0, np.log(hu), pos)

    def cdf(self, y, mu, dpars, trials=None):
        hu = np.asarray(dpars["hu"])
        part = _count_part(self, mu, dpars)
        p0 = part.pmf(0)
        return np.where(np.asarray(y) >= 0, hu + (1.0 - hu) * (part.cdf(y) - p0) / (1.0 - p0), 0.0)

    def simulate(self, rng, mu, dpars, trials=None):
        shape = np.broadcast_shapes(np.shape(mu), np.shape(dpars["hu"]))
        part = _count_part(self, np.broadcast_to(mu, shape), {k: np.broadcast_to(v, shape) for k, v in dpars.items()})
        p0 = part.pmf(0)
        u = p0 + rng.uniform(size=shape) * (1.0 - p0)  # the count part truncated to y > 0, by inversion
        pos = np.maximum(part.ppf(np.minimum(u, 1.0 - 1e-12)), 1.0)
        return np.where(_bernoulli_draw(rng, dpars["hu"], shape), 0, pos)

    def link_scale_variance(self, mu_mean, dpars):
        d = {k: np.asarray(np.mean(v)) for k, v in dpars.items()}
        m = float(self.mean(np.asarray(mu_mean), d))
        return float(np.log1p(float(self.variance(np.asarray(mu_mean), d)) / max(m, 1e-12) ** 2))


@dataclass(frozen=True, repr=False)
class HurdleNegBinomial(HurdlePoisson):
    """brms's ``hurdle_negbinomial``: the negative binomial truncated to y > 0 behind a hurdle."""

    name: str = "hurdle_negbinomial"
    dpars: tuple[DPar, ...] = (SHAPE, HU)
    count_symbol: ClassVar[str] = r"\operatorname{NegBinomial}"
    kernel_code: ClassVar[int | None] = codes.HURDLE_NEGBINOMIAL

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.HurdleNegativeBinomial(name, psi=1.0 - dpars["hu"], mu=mu, alpha=dpars["shape"],
                                         observed=observed)


@dataclass(frozen=True, repr=False)
class HurdleLognormal(Family):
    """brms's ``hurdle_lognormal``: P(0) = hu; y > 0 lognormal with meanlog mu (identity link) and sdlog sigma."""

    name: str = "hurdle_lognormal"
    link_name: str = "identity"
    links: tuple[str, ...] = ("identity",)
    dpars: tuple[DPar, ...] = (DPar("sigma", "log", default_prior=lambda y: sigma_prior(_log_positive(y)),
                                    symbol=r"\sigma"), HU)
    kernel_code: ClassVar[int | None] = codes.HURDLE_LOGNORMAL
    kernel_links: ClassVar[tuple[str, ...]] = ("identity",)

    def row_terms(self, y, trials):
        y = np.asarray(y, dtype=float)
        ly = np.log(np.where(y > 0, y, 1.0))
        return np.where(y > 0, -ly - 0.5 * np.log(2.0 * np.pi), 0.0), ly

    @property
    def has_point_masses(self) -> bool:
        return True  # y = 0

    def validate(self, y, trials, column):
        bad = y < 0
        if bad.any():
            raise DataError(f"hurdle_lognormal response '{column}' must be zero or positive; "
                            f"{int(bad.sum())} row(s) are negative")

    def intercept_prior(self, y):
        return super().intercept_prior(_log_positive(y))

    def effect_scale(self, y):
        return super().effect_scale(_log_positive(y))

    def sd_prior(self, y):
        return super().sd_prior(_log_positive(y))

    def latex(self, dsym, trials):
        return r"\mu_{i}", (rf"{dsym('hu')} \, \mathbb{{1}}[y = 0] + (1 - {dsym('hu')}) \, "
                            rf"\operatorname{{LogNormal}} \left(\mu_{{i}}, {dsym('sigma')}^2 \right)")

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.HurdleLogNormal(name, psi=1.0 - dpars["hu"], mu=mu, sigma=dpars["sigma"], observed=observed)

    def mean(self, mu, dpars, trials=None):
        return (1.0 - dpars["hu"]) * np.exp(mu + 0.5 * dpars["sigma"] ** 2)

    def variance(self, mu, dpars, trials=None):
        hu, s2 = dpars["hu"], dpars["sigma"] ** 2
        second = np.exp(2 * mu + 2 * s2)
        return (1.0 - hu) * second - ((1.0 - hu) * np.exp(mu + 0.5 * s2)) ** 2

    def logpdf(self, y, mu, dpars, trials=None):
        hu = np.asarray(dpars["hu"])
        y = np.asarray(y, dtype=float)
        ly = np.log(np.where(y > 0, y, 1.0))
        pos = np.log1p(-hu) + scipy_stats().norm(mu, dpars["sigma"]).logpdf(ly) - ly
        with np.errstate(divide="ignore"):
            return np.where(y == 0, np.log(hu), pos)

    def cdf(self, y, mu, dpars, trials=None):
        hu = np.asarray(dpars["hu"])
        y = np.asarray(y, dtype=float)
        ly = np.log(np.where(y > 0, y, 1e-300))
        return np.where(y >= 0, hu + (1.0 - hu) * scipy_stats().norm(mu, dpars["sigma"]).cdf(ly), 0.0)

    def simulate(self, rng, mu, dpars, trials=None):
        shape = np.broadcast_shapes(np.shape(mu), np.shape(dpars["hu"]), np.shape(dpars["sigma"]))
        pos = np.exp(mu + dpars["sigma"] * rng.standard_normal(shape))
        return np.where(_bernoulli_draw(rng, dpars["hu"], shape), 0.0, pos)

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.mean(np.asarray(dpars["sigma"]) ** 2))


def _log_positive(y):
    y = np.asarray(y, dtype=float)
    pos = y[y > 0]
    return np.log(pos) if pos.size else np.zeros(1)
