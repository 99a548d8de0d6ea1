"""The chapter's families: gaussian, student, poisson, negbinomial, binomial, bernoulli, gamma.

Example
-------
>>> Poisson().link.name
'log'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hierfit.errors import DataError
from hierfit.families import codes as codes
from hierfit.families.base import DPar, Family, response_scale, scipy_stats
from hierfit.spec.priors import Dist

__all__ = ["Gaussian", "Student", "Poisson", "NegBinomial", "Binomial", "Bernoulli", "Gamma", "log_factorial",
           "check_counts", "sigma_prior",
           "NEGBINOMIAL_SHAPE"]


def sigma_prior(y):
    return Dist("student_t", (3.0, 0.0, response_scale(y)))


@dataclass(frozen=True, repr=False)
class Gaussian(Family):
    name: str = "gaussian"
    link_name: str = "identity"
    links: tuple[str, ...] = ("identity", "log")
    dpars: tuple[DPar, ...] = (DPar("sigma", "log", default_prior=sigma_prior, symbol=r"\sigma"),)
    kernel_code: ClassVar[int | None] = codes.GAUSSIAN
    kernel_links: ClassVar[tuple[str, ...]] = ("identity", "log")
    location_scale: ClassVar[bool] = True
    confounds_observation_effects: ClassVar[bool] = True
    summary_residuals: ClassVar[str] = "scaled"

    def collapsible(self):
        if self.link_name != "identity":
            return super().collapsible()
        return True, ""

    def row_terms(self, y, trials):
        y = np.asarray(y, dtype=float)
        return np.full_like(y, -0.5 * np.log(2.0 * np.pi)), np.zeros_like(y)

    def latex(self, dsym, trials):
        return r"\mu_{i}", rf"N \left(\mu_{{i}}, {dsym('sigma')}^2 \right)"

    def equation_lines(self, y, eta, dsym, trials):
        if self.link_name != "identity":
            return super().equation_lines(y, eta, dsym, trials)
        s = dsym("sigma")
        var = s[:-4] + "^2_{i}" if s.endswith("_{i}") else s + "^2"
        return [(y, rf"\sim N \left({eta}, {var} \right)")]

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.Normal(name, mu=mu, sigma=dpars["sigma"], observed=observed)

    def variance(self, mu, dpars, trials=None):
        return np.broadcast_to(dpars["sigma"] ** 2, np.shape(mu))

    def scipy_dist(self, mu, dpars, trials=None):
        return scipy_stats().norm(mu, dpars["sigma"])

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.mean(np.asarray(dpars["sigma"]) ** 2))


@dataclass(frozen=True, repr=False)
class Student(Family):
    name: str = "student"
    link_name: str = "identity"
    links: tuple[str, ...] = ("identity", "log")
    dpars: tuple[DPar, ...] = (DPar("sigma", "log", default_prior=sigma_prior, symbol=r"\sigma"),
                               DPar("nu", "log", lower=1.0, default_prior=lambda y: Dist("gamma", (2.0, 0.1)),
                                    symbol=r"\nu"))
    kernel_code: ClassVar[int | None] = codes.STUDENT
    kernel_links: ClassVar[tuple[str, ...]] = ("identity", "log")
    location_scale: ClassVar[bool] = True

    def latex(self, dsym, trials):
        return r"\mu_{i}", rf"\operatorname{{Student-t}} \left({dsym('nu')}, \mu_{{i}}, {dsym('sigma')} \right)"

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.StudentT(name, nu=dpars["nu"], mu=mu, sigma=dpars["sigma"], observed=observed)

    def variance(self, mu, dpars, trials=None):
        nu = np.asarray(dpars["nu"])
        return np.broadcast_to(dpars["sigma"] ** 2 * np.where(nu > 2, nu / np.maximum(nu - 2, 1e-12), np.inf),
                               np.shape(mu))

    def scipy_dist(self, mu, dpars, trials=None):
        return scipy_stats().t(dpars["nu"], mu, dpars["sigma"])

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.mean(self.variance(np.zeros(1), dpars)))


#: the negative binomial's shape (brms's prior inv_gamma(0.4, 0.3)), shared by its zero-inflated and hurdle forms
NEGBINOMIAL_SHAPE = DPar("shape", "log", default_prior=lambda y: Dist("inv_gamma", (0.4, 0.3)), symbol=r"\phi")


def log_factorial(y):
    from scipy.special import gammaln

    return gammaln(np.asarray(y, dtype=float) + 1.0)


def _count_working_variance(y, extra: float) -> float:
    m = max(float(np.mean(y)), 1e-3)
    return 1.0 / m + extra


def check_counts(y, column, what="counts"):
    bad = (y < 0) | (y != np.round(y))
    if bad.any():
        raise DataError(f"response '{column}' must hold non-negative whole numbers ({what}); "
                        f"{int(bad.sum())} row(s) do not")


@dataclass(frozen=True, repr=False)
class Poisson(Family):
    name: str = "poisson"
    link_name: str = "log"
    links: tuple[str, ...] = ("log", "identity")
    aggregation: str | None = "exposure"
    discrete: bool = True
    kernel_code: ClassVar[int | None] = codes.POISSON
    kernel_links: ClassVar[tuple[str, ...]] = ("log", "identity")

    def validate(self, y, trials, column):
        check_counts(y, column)

    def working_variance(self, y, trials):
        return _count_working_variance(y, 0.0)

    def row_terms(self, y, trials):
        return -log_factorial(y), np.zeros(np.shape(y))

    def latex(self, dsym, trials):
        return r"\lambda_{i}", r"\operatorname{Poisson} \left(\lambda_{i} \right)"

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.Poisson(name, mu=mu, observed=observed)

    def variance(self, mu, dpars, trials=None):
        return mu

    def scipy_dist(self, mu, dpars, trials=None):
        return scipy_stats().poisson(mu)

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.log1p(1.0 / max(mu_mean, 1e-12)))  # lognormal approximation (Nakagawa et al. 2017)


@dataclass(frozen=True, repr=False)
class NegBinomial(Family):
    name: str = "negbinomial"
    link_name: str = "log"
    links: tuple[str, ...] = ("log", "identity")
    dpars: tuple[DPar, ...] = (NEGBINOMIAL_SHAPE,)
    discrete: bool = True
    kernel_code: ClassVar[int | None] = codes.NEGBINOMIAL
    kernel_links: ClassVar[tuple[str, ...]] = ("log", "identity")

    def validate(self, y, trials, column):
        check_counts(y, column)

    def working_variance(self, y, trials):
        return _count_working_variance(y, 1.0)

    def row_terms(self, y, trials):
        return -log_factorial(y), np.zeros(np.shape(y))

    def latex(self, dsym, trials):
        return r"\mu_{i}", (rf"\operatorname{{NegBinomial}} \left(\text{{mean}} = \mu_{{i}}, "
                            rf"\text{{shape}} = {dsym('shape')} \right)")

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.NegativeBinomial(name, mu=mu, alpha=dpars["shape"], observed=observed)

    def variance(self, mu, dpars, trials=None):
        return mu + mu**2 / dpars["shape"]

    def scipy_dist(self, mu, dpars, trials=None):
        shape = np.asarray(dpars["shape"])
        return scipy_stats().nbinom(shape, shape / (shape + mu))

    def link_scale_variance(self, mu_mean, dpars):
        shape = float(np.mean(dpars["shape"]))
        return float(np.log1p(1.0 / max(mu_mean, 1e-12) + 1.0 / shape))


@dataclass(frozen=True, repr=False)
class Binomial(Family):
    name: str = "binomial"
    link_name: str = "logit"
    links: tuple[str, ...] = ("logit", "probit", "cloglog")
    aggregation: str | None = "trials"
    discrete: bool = True
    needs_trials: bool = True
    kernel_code: ClassVar[int | None] = codes.BINOMIAL
    kernel_links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog")

    def working_variance(self, y, trials):
        return _binary_working_variance(y, trials)

    def row_terms(self, y, trials):
        n = np.asarray(trials, dtype=float)
        return -log_factorial(y) + log_factorial(n) - log_factorial(n - np.asarray(y, dtype=float)), \
            np.zeros(np.shape(y))

    def latex(self, dsym, trials):
        return r"p_{i}", rf"\operatorname{{Binomial}} \left({trials}, p_{{i}} \right)"

    def response_label(self, response):
        return f"P(success) of {response}"

    def validate(self, y, trials, column):
        check_counts(y, column, "numbers of successes")
        if trials is None:
            raise DataError(f"binomial response '{column}' needs trials: write cbind(successes, failures) ~ ... "
                            "or successes | trials(n) ~ ...")
        bad = (trials < y) | (trials != np.round(trials)) | (trials < 1)
        if bad.any():
            raise DataError(f"binomial response '{column}': successes exceed trials (or trials are not positive "
                            f"whole numbers) in {int(bad.sum())} row(s)")

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.Binomial(name, n=trials, p=mu, observed=observed)

    def variance(self, mu, dpars, trials=None):
        return trials * mu * (1 - mu)

    def scipy_dist(self, mu, dpars, trials=None):
        return scipy_stats().binom(np.asarray(trials, dtype=np.int64), mu)

    def link_scale_variance(self, mu_mean, dpars):
        return _binary_link_variance(self.link_name)


def _binary_working_variance(y, trials) -> float:
    n = trials if trials is not None else np.ones_like(y)
    p = np.clip(np.sum(y) / np.sum(n), 1e-3, 1 - 1e-3)
    return 1.0 / (float(np.mean(n)) * p * (1 - p))


def _binary_link_variance(link: str) -> float:
    return {"logit": np.pi**2 / 3, "probit": 1.0, "cloglog": np.pi**2 / 6}[link]


@dataclass(frozen=True, repr=False)
class Bernoulli(Family):
    name: str = "bernoulli"
    link_name: str = "logit"
    links: tuple[str, ...] = ("logit", "probit", "cloglog")
    aggregation: str | None = "trials"
    discrete: bool = True
    kernel_code: ClassVar[int | None] = codes.BERNOULLI
    kernel_links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog")

    def working_variance(self, y, trials):
        return _binary_working_variance(y, None)

    def latex(self, dsym, trials):
        return r"p_{i}", r"\operatorname{Bernoulli} \left(p_{i} \right)"

    def response_label(self, response):
        return f"P({response} = 1)"

    def validate(self, y, trials, column):
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise DataError(f"bernoulli response '{column}' must be 0/1 or boolean; {int(bad.sum())} row(s) are not")

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.Bernoulli(name, p=mu, observed=observed)

    def variance(self, mu, dpars, trials=None):
        return mu * (1 - mu)

    def scipy_dist(self, mu, dpars, trials=None):
        return scipy_stats().bernoulli(mu)

    def link_scale_variance(self, mu_mean, dpars):
        return _binary_link_variance(self.link_name)


@dataclass(frozen=True, repr=False)
class Gamma(Family):
    name: str = "gamma"
    link_name: str = "log"
    links: tuple[str, ...] = ("log", "identity", "inverse")
    dpars: tuple[DPar, ...] = (DPar("shape", "log", default_prior=lambda y: Dist("gamma", (0.01, 0.01)),
                                    symbol=r"\phi"),)
    kernel_code: ClassVar[int | None] = codes.GAMMA
    kernel_links: ClassVar[tuple[str, ...]] = ("log", "identity", "inverse")

    def working_variance(self, y, trials):
        return 0.5

    def row_terms(self, y, trials):
        y = np.asarray(y, dtype=float)
        return np.zeros_like(y), np.log(y)

    def latex(self, dsym, trials):
        shape = dsym("shape")
        return r"\mu_{i}", (rf"\operatorname{{Gamma}} \left(\text{{shape}} = {shape}, "
                            rf"\text{{rate}} = {shape} / \mu_{{i}} \right)")

    def validate(self, y, trials, column):
        bad = y <= 0
        if bad.any():
            raise DataError(f"gamma response '{column}' must be positive; {int(bad.sum())} row(s) are zero or negative")

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.Gamma(name, alpha=dpars["shape"], beta=dpars["shape"] / mu, observed=observed)

    def variance(self, mu, dpars, trials=None):
        return mu**2 / dpars["shape"]

    def scipy_dist(self, mu, dpars, trials=None):
        shape = np.asarray(dpars["shape"])
        return scipy_stats().gamma(shape, scale=mu / shape)

    def link_scale_variance(self, mu_mean, dpars):
        from scipy.special import polygamma

        return float(polygamma(1, float(np.mean(dpars["shape"]))))  # trigamma(shape)

