"""Response families: one declaration per family, used by every stage.

A :class:`Family` declares its link, its distributional parameters (with their
links and default priors), its PyMC likelihood, and the numpy/scipy functions
that the rest of hierfit needs: mean, variance, log density, CDF (for quantile
residuals) and a simulator.  Nothing outside this module branches on the family.

Example
-------
>>> import hierfit
>>> hierfit.families.binomial(link="probit")
binomial(link='probit')
>>> hierfit.families.get("poisson").link.name
'log'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hierfit.errors import DataError, HierfitError
from hierfit.spec.priors import Dist

__all__ = ["ResponseSummary", "response_summary", "Link", "DPar", "Family", "get", "gaussian", "student", "poisson", "negbinomial", "binomial",
           "bernoulli", "gamma", "FAMILIES", "LINKS"]


@dataclass(frozen=True)
class Link:
    """A link function g with its inverse, in numpy and in PyTensor."""

    name: str
    fun: Callable
    inv: Callable
    inv_pt: Callable


def _pt():
    import pytensor.tensor as pt

    return pt


# scipy.special and scipy.stats load on first use, so that importing hierfit (and
# summarising a Gaussian fit) does not pay for them
def _logit(m):
    from scipy.special import logit

    return logit(m)


def _expit(e):
    from scipy.special import expit

    return expit(e)


def _probit(m):
    from scipy.special import ndtri  # what scipy.stats.norm.ppf evaluates

    return ndtri(m)


def _ndtr(e):
    from scipy.special import ndtr

    return ndtr(e)


def _stats():
    from scipy import stats

    return stats


LINKS = {
    "identity": Link("identity", lambda m: m, lambda e: e, lambda e: e),
    "log": Link("log", np.log, np.exp, lambda e: _pt().exp(e)),
    "logit": Link("logit", _logit, _expit, lambda e: _pt().sigmoid(e)),
    "probit": Link("probit", _probit, _ndtr,
                   lambda e: 0.5 * (1 + _pt().erf(e / np.sqrt(2.0)))),
    "cloglog": Link("cloglog", lambda m: np.log(-np.log1p(-m)), lambda e: -np.expm1(-np.exp(e)),
                    lambda e: -_pt().expm1(-_pt().exp(e))),
}


@dataclass(frozen=True)
class DPar:
    """A distributional parameter besides the mean (sigma, shape, nu), modelled on its link scale."""

    name: str
    link: str
    lower: float = 0.0
    default_prior: Callable[[np.ndarray], Dist] = field(default=lambda y: Dist("student_t", (3.0, 0.0, 2.5)))


@dataclass(frozen=True)
class ResponseSummary:
    """What the default priors read from the response: its median, median absolute deviation, sd and count.

    Computed from the rows (:func:`response_summary`) or, for data held by a data
    engine, from one pass over them; the family's prior methods accept either.

    Example
    -------
    >>> s = response_summary(np.array([1.0, 2.0, 4.0]))
    >>> s.median, s.mad, round(s.sd, 4), s.n
    (2.0, 1.0, 1.5275, 3)
    """

    median: float
    mad: float  # median(|y - median(y)|), unscaled
    sd: float  # ddof=1
    n: int


def response_summary(y) -> ResponseSummary:
    """The :class:`ResponseSummary` of a response vector (or the summary itself, unchanged)."""
    if isinstance(y, ResponseSummary):
        return y
    y = np.asarray(y, dtype=float)
    med = float(np.median(y))
    return ResponseSummary(med, float(np.median(np.abs(y - med))),
                           float(np.std(y, ddof=1)) if len(y) > 1 else 1.0, len(y))


def _resp_scale(y) -> float:
    mad = 1.4826 * response_summary(y).mad
    return round(max(2.5, mad), 1)


@dataclass(frozen=True)
class Family:
    """A response distribution with a link for its mean.

    Subclasses implement the distribution-specific pieces; everything is vectorised
    over draws (leading axis) and observations (last axis).
    """

    name: str = "gaussian"
    link_name: str = "identity"
    links: tuple[str, ...] = ("identity",)
    dpars: tuple[DPar, ...] = ()
    discrete: bool = False
    needs_trials: bool = False
    #: How rows that share the linear predictor aggregate exactly into one (data engines, hierfit.data.counts):
    #: "trials" (successes | trials(rows), binomial), "exposure" (sum ~ offset(log(rows)), same family) or None.
    aggregation: str | None = None

    def __post_init__(self):
        if self.link_name not in self.links:
            raise HierfitError(f"family {self.name} has no link {self.link_name!r}; links: {', '.join(self.links)}")

    def __repr__(self) -> str:
        return f"{self.name}(link={self.link_name!r})"

    def __reduce__(self):
        # saved by name and link: the declarations hold functions that pickle cannot store
        return (get, (self.name, self.link_name))

    @property
    def link(self) -> Link:
        return LINKS[self.link_name]

    @property
    def dpar_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dpars)

    def dpar(self, name: str) -> DPar:
        for d in self.dpars:
            if d.name == name:
                return d
        raise HierfitError(f"family {self.name} has no distributional parameter {name!r}; it has "
                           f"{', '.join(self.dpar_names) or 'none'}")

    # -- priors ---------------------------------------------------------------------
    def intercept_prior(self, y: np.ndarray) -> Dist:
        """brms's default: student_t(3, median(y), scale) on identity links, student_t(3, 0, 2.5) otherwise."""
        if self.link_name == "identity":
            return Dist("student_t", (3.0, round(response_summary(y).median, 1), _resp_scale(y)))
        return Dist("student_t", (3.0, 0.0, 2.5))

    def effect_scale(self, y: np.ndarray) -> float:
        """Scale of the response on the link scale, for the autoscaled normal prior of slopes."""
        if self.link_name == "identity":
            return response_summary(y).sd
        return 1.0

    def sd_prior(self, y: np.ndarray) -> Dist:
        scale = _resp_scale(y) if self.link_name == "identity" else 2.5
        return Dist("student_t", (3.0, 0.0, scale))

    # -- data ------------------------------------------------------------------------
    def validate(self, y: np.ndarray, trials: np.ndarray | None, column: str) -> None:
        """Raise DataError naming the column and the number of bad rows."""

    # -- the distribution ----------------------------------------------------------------
    def pymc_likelihood(self, name, mu, dpars: dict, observed, trials):
        raise NotImplementedError

    def mean(self, mu, dpars: dict, trials=None):
        """Expected response given the mean parameter mu (the inverse link of eta)."""
        return mu if trials is None or not self.needs_trials else mu * trials

    def variance(self, mu, dpars: dict, trials=None):
        raise NotImplementedError

    def scipy_dist(self, mu, dpars: dict, trials=None):
        raise NotImplementedError

    def logpdf(self, y, mu, dpars: dict, trials=None):
        d = self.scipy_dist(mu, dpars, trials)
        return d.logpmf(y) if self.discrete else d.logpdf(y)

    def cdf(self, y, mu, dpars: dict, trials=None):
        return self.scipy_dist(mu, dpars, trials).cdf(y)

    def simulate(self, rng: np.random.Generator, mu, dpars: dict, trials=None):
        return self.scipy_dist(mu, dpars, trials).rvs(random_state=rng)

    def link_scale_variance(self, mu_mean: float, dpars: dict) -> float:
        """Nakagawa-Schielzeth distribution-specific variance on the link scale (for R²)."""
        raise NotImplementedError


def _sigma_prior(y):
    return Dist("student_t", (3.0, 0.0, _resp_scale(y)))


@dataclass(frozen=True, repr=False)
class Gaussian(Family):
    name: str = "gaussian"
    link_name: str = "identity"
    links: tuple[str, ...] = ("identity", "log")
    dpars: tuple[DPar, ...] = (DPar("sigma", "log", default_prior=_sigma_prior),)

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.Normal(name, mu=mu, sigma=dpars["sigma"], observed=observed)

    def variance(self, mu, dpars, trials=None):
        return np.broadcast_to(dpars["sigma"] ** 2, np.shape(mu))

    def scipy_dist(self, mu, dpars, trials=None):
        return _stats().norm(mu, dpars["sigma"])

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.mean(np.asarray(dpars["sigma"]) ** 2))


@dataclass(frozen=True, repr=False)
class Student(Family):
    name: str = "student"
    link_name: str = "identity"
    links: tuple[str, ...] = ("identity", "log")
    dpars: tuple[DPar, ...] = (DPar("sigma", "log", default_prior=_sigma_prior),
                               DPar("nu", "log", lower=1.0, default_prior=lambda y: Dist("gamma", (2.0, 0.1))))

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.StudentT(name, nu=dpars["nu"], mu=mu, sigma=dpars["sigma"], observed=observed)

    def variance(self, mu, dpars, trials=None):
        nu = np.asarray(dpars["nu"])
        return np.broadcast_to(dpars["sigma"] ** 2 * np.where(nu > 2, nu / np.maximum(nu - 2, 1e-12), np.inf),
                               np.shape(mu))

    def scipy_dist(self, mu, dpars, trials=None):
        return _stats().t(dpars["nu"], mu, dpars["sigma"])

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.mean(self.variance(np.zeros(1), dpars)))


def _check_counts(y, column, what="counts"):
    bad = (y < 0) | (y != np.round(y))
    if bad.any():
        raise DataError(f"response '{column}' must hold non-negative whole numbers ({what}); "
                        f"{int(bad.sum())} row(s) do not")


@dataclass(frozen=True, repr=False)
class Poisson(Family):
    name: str = "poisson"
    link_name: str = "log"
    aggregation: str | None = "exposure"
    links: tuple[str, ...] = ("log", "identity")
    discrete: bool = True

    def validate(self, y, trials, column):
        _check_counts(y, column)

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.Poisson(name, mu=mu, observed=observed)

    def variance(self, mu, dpars, trials=None):
        return mu

    def scipy_dist(self, mu, dpars, trials=None):
        return _stats().poisson(mu)

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.log1p(1.0 / max(mu_mean, 1e-12)))  # lognormal approximation (Nakagawa et al. 2017)


@dataclass(frozen=True, repr=False)
class NegBinomial(Family):
    name: str = "negbinomial"
    link_name: str = "log"
    links: tuple[str, ...] = ("log", "identity")
    dpars: tuple[DPar, ...] = (DPar("shape", "log", default_prior=lambda y: Dist("inv_gamma", (0.4, 0.3))),)
    discrete: bool = True

    def validate(self, y, trials, column):
        _check_counts(y, column)

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        return pm.NegativeBinomial(name, mu=mu, alpha=dpars["shape"], observed=observed)

    def variance(self, mu, dpars, trials=None):
        return mu + mu**2 / dpars["shape"]

    def scipy_dist(self, mu, dpars, trials=None):
        shape = np.asarray(dpars["shape"])
        return _stats().nbinom(shape, shape / (shape + mu))

    def link_scale_variance(self, mu_mean, dpars):
        shape = float(np.mean(dpars["shape"]))
        return float(np.log1p(1.0 / max(mu_mean, 1e-12) + 1.0 / shape))


@dataclass(frozen=True, repr=False)
class Binomial(Family):
    name: str = "binomial"
    link_name: str = "logit"
    aggregation: str | None = "trials"
    links: tuple[str, ...] = ("logit", "probit", "cloglog")
    discrete: bool = True
    needs_trials: bool = True

    def validate(self, y, trials, column):
        _check_counts(y, column, "numbers of successes")
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
        return _stats().binom(np.asarray(trials, dtype=np.int64), mu)

    def link_scale_variance(self, mu_mean, dpars):
        return _binary_link_variance(self.link_name)


def _binary_link_variance(link: str) -> float:
    return {"logit": np.pi**2 / 3, "probit": 1.0, "cloglog": np.pi**2 / 6}[link]


@dataclass(frozen=True, repr=False)
class Bernoulli(Family):
    name: str = "bernoulli"
    link_name: str = "logit"
    aggregation: str | None = "trials"
    links: tuple[str, ...] = ("logit", "probit", "cloglog")
    discrete: bool = True

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
        return _stats().bernoulli(mu)

    def link_scale_variance(self, mu_mean, dpars):
        return _binary_link_variance(self.link_name)


@dataclass(frozen=True, repr=False)
class Gamma(Family):
    name: str = "gamma"
    link_name: str = "log"
    links: tuple[str, ...] = ("log", "identity")
    dpars: tuple[DPar, ...] = (DPar("shape", "log", default_prior=lambda y: Dist("gamma", (0.01, 0.01))),)

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
        return _stats().gamma(shape, scale=mu / shape)

    def link_scale_variance(self, mu_mean, dpars):
        from scipy.special import polygamma

        return float(polygamma(1, float(np.mean(dpars["shape"]))))  # trigamma(shape)


FAMILIES: dict[str, type[Family]] = {
    "gaussian": Gaussian,
    "student": Student,
    "poisson": Poisson,
    "negbinomial": NegBinomial,
    "binomial": Binomial,
    "bernoulli": Bernoulli,
    "gamma": Gamma,
}


def get(family, link: str | None = None) -> Family:
    """A family from its name (``"poisson"``) or a Family object.

    Example
    -------
    >>> get("bernoulli", link="probit")
    bernoulli(link='probit')
    """
    if isinstance(family, Family):
        return family
    if not isinstance(family, str) or family.lower() not in FAMILIES:
        raise HierfitError(f"unknown family {family!r}; available: {', '.join(FAMILIES)}")
    cls = FAMILIES[family.lower()]
    return cls() if link is None else cls(link_name=link)


def _factory(name: str):
    def make(link: str | None = None) -> Family:
        return get(name, link)

    make.__name__ = name
    make.__doc__ = (f"The {name} family (R spelling), e.g. ``hierfit.families.{name}()`` or with ``link=``.\n\n"
                    f"Example\n-------\n>>> {name}().name\n'{name}'\n")
    return make


gaussian = _factory("gaussian")
student = _factory("student")
poisson = _factory("poisson")
negbinomial = _factory("negbinomial")
binomial = _factory("binomial")
bernoulli = _factory("bernoulli")
gamma = _factory("gamma")
