"""Response families: one declaration per family, used by every stage.

A :class:`Family` declares its link, its distributional parameters (with their
links and default priors), its PyMC likelihood, and the numpy/scipy functions
that the rest of hierfit needs: mean, variance, log density, CDF (for quantile
residuals) and a simulator.  Nothing outside this module branches on the family.

Example
-------
>>> import hierfit
>>> hierfit.spec.families.binomial(link="probit")
binomial(link='probit')
>>> hierfit.spec.families.get("poisson").link.name
'log'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from hierfit.errors import DataError, HierfitError
from hierfit.spec import family_codes as codes
from hierfit.spec.priors import Dist

__all__ = ["Link", "DPar", "Family", "get", "gaussian", "student", "poisson", "negbinomial", "binomial",
           "bernoulli", "gamma", "FAMILIES", "LINKS"]


@dataclass(frozen=True)
class Link:
    """A link function g with its inverse, in numpy and in PyTensor."""

    name: str
    fun: Callable
    inv: Callable
    inv_pt: Callable
    latex: str = "{}"  # g(x) in LaTeX, with {} for x

    def latex_of(self, x: str) -> str:
        """g(x) written in LaTeX, e.g. ``\\log(\\mu_{i})``."""
        return self.latex.replace("{}", x)


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
    "log": Link("log", np.log, np.exp, lambda e: _pt().exp(e), r"\log({})"),
    "logit": Link("logit", _logit, _expit, lambda e: _pt().sigmoid(e), r"\operatorname{logit}({})"),
    "probit": Link("probit", _probit, _ndtr,
                   lambda e: 0.5 * (1 + _pt().erf(e / np.sqrt(2.0))), r"\Phi^{-1}({})"),
    "cloglog": Link("cloglog", lambda m: np.log(-np.log1p(-m)), lambda e: -np.expm1(-np.exp(e)),
                    lambda e: -_pt().expm1(-_pt().exp(e)), r"\log(-\log(1 - {}))"),
}


@dataclass(frozen=True)
class DPar:
    """A distributional parameter besides the mean (sigma, shape, nu), modelled on its link scale."""

    name: str
    link: str
    lower: float = 0.0
    default_prior: Callable[[np.ndarray], Dist] = field(default=lambda y: Dist("student_t", (3.0, 0.0, 2.5)))
    symbol: str | None = None  # its LaTeX symbol in equation(); None: the name written in LaTeX


def _resp_scale(y: np.ndarray) -> float:
    mad = 1.4826 * float(np.median(np.abs(y - np.median(y))))
    return round(max(2.5, mad), 1)


@dataclass(frozen=True)
class Family:
    """A response distribution with a link for its mean.

    Subclasses implement the distribution-specific pieces; everything is vectorised
    over draws (leading axis) and observations (last axis).  Class-level declarations
    (``kernel_code``, ``location_scale``, ...) tell the other stages what they need to
    know, so that none of them branches on the family's name.
    """

    #: the compiled kernel's integer code (hierfit.spec.family_codes), None: PyMC only
    kernel_code: ClassVar[int | None] = None
    #: the links the compiled kernel evaluates for this family
    kernel_links: ClassVar[tuple[str, ...]] = ()
    #: the mean is a location: least-squares residuals estimate the noise (parametrization choice, plots)
    location_scale: ClassVar[bool] = False
    #: an observation-level group term is confounded with the residual sd (Gaussian)
    confounds_observation_effects: ClassVar[bool] = False
    #: residuals named in the summary header
    summary_residuals: ClassVar[str] = "pearson"

    name: str = "gaussian"
    link_name: str = "identity"
    links: tuple[str, ...] = ("identity",)
    dpars: tuple[DPar, ...] = ()
    discrete: bool = False
    needs_trials: bool = False

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

    @property
    def has_kernel(self) -> bool:
        """Whether the compiled kernel evaluates this family with its link."""
        return self.kernel_code is not None and self.link_name in self.kernel_links

    def collapsible(self) -> tuple[bool, str]:
        """Whether the group effects integrate out in closed form (the collapsed sampler), and why not."""
        return False, f"the {self.name} family ({self.link_name} link) has no closed-form marginal likelihood"

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
            return Dist("student_t", (3.0, round(float(np.median(y)), 1), _resp_scale(y)))
        return Dist("student_t", (3.0, 0.0, 2.5))

    def effect_scale(self, y: np.ndarray) -> float:
        """Scale of the response on the link scale, for the autoscaled normal prior of slopes."""
        if self.link_name == "identity":
            return float(np.std(y, ddof=1)) if len(y) > 1 else 1.0
        return 1.0

    def sd_prior(self, y: np.ndarray) -> Dist:
        scale = _resp_scale(y) if self.link_name == "identity" else 2.5
        return Dist("student_t", (3.0, 0.0, scale))

    def working_variance(self, y: np.ndarray, trials: np.ndarray | None) -> float:
        """Observation-level variance on the link scale at the mean response (for the parametrization choice)."""
        return 1.0

    # -- the compiled kernel's per-row constants ----------------------------------------
    def row_terms(self, y: np.ndarray, trials: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(const, aux) per row: the log-likelihood's parts that depend on the data alone.

        ``const`` is added to each row's log-likelihood (-log y!, the binomial coefficient,
        -log(2 pi)/2); ``aux`` is a transformation of y the kernel reuses (log y).
        """
        y = np.asarray(y, dtype=float)
        return np.zeros_like(y), np.zeros_like(y)

    # -- presentation ------------------------------------------------------------------
    def latex(self, dsym: Callable[[str], str], trials: str) -> tuple[str, str]:
        """(symbol of the mean, the response distribution) in LaTeX for :func:`equation`.

        ``dsym(name)`` writes a distributional parameter's symbol; ``trials`` the number of trials.
        """
        return r"\mu_{i}", r"\operatorname{" + self.name + r"} \left(\mu_{i} \right)"

    def equation_lines(self, y: str, eta: str, dsym: Callable[[str], str], trials: str) -> list[tuple[str, str]]:
        """The lines ``y ~ distribution`` and ``g(mean) = eta`` of the model's equation."""
        mean, dist = self.latex(dsym, trials)
        return [(y, r"\sim " + dist), (self.link.latex_of(mean), "= " + eta)]

    def response_label(self, response: str) -> str:
        """Axis label for the expected response (plots)."""
        return response

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
    dpars: tuple[DPar, ...] = (DPar("sigma", "log", default_prior=_sigma_prior, symbol=r"\sigma"),)
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
        return _stats().norm(mu, dpars["sigma"])

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.mean(np.asarray(dpars["sigma"]) ** 2))


@dataclass(frozen=True, repr=False)
class Student(Family):
    name: str = "student"
    link_name: str = "identity"
    links: tuple[str, ...] = ("identity", "log")
    dpars: tuple[DPar, ...] = (DPar("sigma", "log", default_prior=_sigma_prior, symbol=r"\sigma"),
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
        return _stats().t(dpars["nu"], mu, dpars["sigma"])

    def link_scale_variance(self, mu_mean, dpars):
        return float(np.mean(self.variance(np.zeros(1), dpars)))


def _log_factorial(y):
    from scipy.special import gammaln

    return gammaln(np.asarray(y, dtype=float) + 1.0)


def _count_working_variance(y, extra: float) -> float:
    m = max(float(np.mean(y)), 1e-3)
    return 1.0 / m + extra


def _check_counts(y, column, what="counts"):
    bad = (y < 0) | (y != np.round(y))
    if bad.any():
        raise DataError(f"response '{column}' must hold non-negative whole numbers ({what}); "
                        f"{int(bad.sum())} row(s) do not")


@dataclass(frozen=True, repr=False)
class Poisson(Family):
    name: str = "poisson"
    link_name: str = "log"
    links: tuple[str, ...] = ("log", "identity")
    discrete: bool = True
    kernel_code: ClassVar[int | None] = codes.POISSON
    kernel_links: ClassVar[tuple[str, ...]] = ("log", "identity")

    def validate(self, y, trials, column):
        _check_counts(y, column)

    def working_variance(self, y, trials):
        return _count_working_variance(y, 0.0)

    def row_terms(self, y, trials):
        return -_log_factorial(y), np.zeros(np.shape(y))

    def latex(self, dsym, trials):
        return r"\lambda_{i}", r"\operatorname{Poisson} \left(\lambda_{i} \right)"

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
    dpars: tuple[DPar, ...] = (DPar("shape", "log", default_prior=lambda y: Dist("inv_gamma", (0.4, 0.3)),
                                    symbol=r"\phi"),)
    discrete: bool = True
    kernel_code: ClassVar[int | None] = codes.NEGBINOMIAL
    kernel_links: ClassVar[tuple[str, ...]] = ("log", "identity")

    def validate(self, y, trials, column):
        _check_counts(y, column)

    def working_variance(self, y, trials):
        return _count_working_variance(y, 1.0)

    def row_terms(self, y, trials):
        return -_log_factorial(y), np.zeros(np.shape(y))

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
        return _stats().nbinom(shape, shape / (shape + mu))

    def link_scale_variance(self, mu_mean, dpars):
        shape = float(np.mean(dpars["shape"]))
        return float(np.log1p(1.0 / max(mu_mean, 1e-12) + 1.0 / shape))


@dataclass(frozen=True, repr=False)
class Binomial(Family):
    name: str = "binomial"
    link_name: str = "logit"
    links: tuple[str, ...] = ("logit", "probit", "cloglog")
    discrete: bool = True
    needs_trials: bool = True
    kernel_code: ClassVar[int | None] = codes.BINOMIAL
    kernel_links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog")

    def working_variance(self, y, trials):
        return _binary_working_variance(y, trials)

    def row_terms(self, y, trials):
        n = np.asarray(trials, dtype=float)
        return -_log_factorial(y) + _log_factorial(n) - _log_factorial(n - np.asarray(y, dtype=float)), \
            np.zeros(np.shape(y))

    def latex(self, dsym, trials):
        return r"p_{i}", rf"\operatorname{{Binomial}} \left({trials}, p_{{i}} \right)"

    def response_label(self, response):
        return f"P(success) of {response}"

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
        return _stats().bernoulli(mu)

    def link_scale_variance(self, mu_mean, dpars):
        return _binary_link_variance(self.link_name)


@dataclass(frozen=True, repr=False)
class Gamma(Family):
    name: str = "gamma"
    link_name: str = "log"
    links: tuple[str, ...] = ("log", "identity")
    dpars: tuple[DPar, ...] = (DPar("shape", "log", default_prior=lambda y: Dist("gamma", (0.01, 0.01)),
                                    symbol=r"\phi"),)
    kernel_code: ClassVar[int | None] = codes.GAMMA
    kernel_links: ClassVar[tuple[str, ...]] = ("log", "identity")

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
    make.__doc__ = (f"The {name} family (R spelling), e.g. ``hierfit.spec.families.{name}()`` or with ``link=``.\n\n"
                    f"Example\n-------\n>>> {name}().name\n'{name}'\n")
    return make


gaussian = _factory("gaussian")
student = _factory("student")
poisson = _factory("poisson")
negbinomial = _factory("negbinomial")
binomial = _factory("binomial")
bernoulli = _factory("bernoulli")
gamma = _factory("gamma")
