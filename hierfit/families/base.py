"""The pieces every response family is made of: links, distributional parameters, the Family base class.

A concrete family (hierfit.families.classic, .mixtures, .positive,
.custom) subclasses :class:`Family`; hierfit.families keeps the
registry by name.

Example
-------
>>> float(LINKS["logit"].inv(0.0))
0.5
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from hierfit.errors import HierfitError
from hierfit.families import codes as codes
from hierfit.spec.priors import Dist

__all__ = ["ResponseSummary", "response_summary", "Link", "DPar", "Family", "LINKS", "rebuild", "scipy_stats", "pytensor_tensor", "response_scale"]


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


def pytensor_tensor():
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


def scipy_stats():
    from scipy import stats

    return stats


LINKS = {
    "identity": Link("identity", lambda m: m, lambda e: e, lambda e: e),
    "log": Link("log", np.log, np.exp, lambda e: pytensor_tensor().exp(e), r"\log({})"),
    "logit": Link("logit", _logit, _expit, lambda e: pytensor_tensor().sigmoid(e), r"\operatorname{logit}({})"),
    "probit": Link("probit", _probit, _ndtr,
                   lambda e: 0.5 * (1 + pytensor_tensor().erf(e / np.sqrt(2.0))), r"\Phi^{-1}({})"),
    "cloglog": Link("cloglog", lambda m: np.log(-np.log1p(-m)), lambda e: -np.expm1(-np.exp(e)),
                    lambda e: -pytensor_tensor().expm1(-pytensor_tensor().exp(e)), r"\log(-\log(1 - {}))"),
    "inverse": Link("inverse", lambda m: 1.0 / m, lambda e: 1.0 / e, lambda e: 1.0 / e, r"1 / {}"),
}


@dataclass(frozen=True)
class DPar:
    """A distributional parameter besides the mean (sigma, shape, nu), modelled on its link scale."""

    name: str
    link: str
    lower: float = 0.0
    default_prior: Callable[[np.ndarray], Dist] = field(default=lambda y: Dist("student_t", (3.0, 0.0, 2.5)))
    symbol: str | None = None  # its LaTeX symbol in equation(); None: the name written in LaTeX
    dispersion: bool = True  # glmmTMB's dispformula may model it (False for zi and hu)

    def inverse(self, eta):
        """The parameter from its linear predictor (numpy): lower + inverse link."""
        return self.lower + LINKS[self.link].inv(eta)

    def inverse_pt(self, eta):
        """The parameter from its linear predictor (PyTensor)."""
        return self.lower + LINKS[self.link].inv_pt(eta)


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
    """The :class:`ResponseSummary` of a response vector (or the summary itself, unchanged).

    Example
    -------
    >>> response_summary(np.array([0.0, 2.0])).median
    1.0
    """
    if isinstance(y, ResponseSummary):
        return y
    y = np.asarray(y, dtype=float)
    med = float(np.median(y))
    return ResponseSummary(med, float(np.median(np.abs(y - med))),
                           float(np.std(y, ddof=1)) if len(y) > 1 else 1.0, len(y))


def response_scale(y) -> float:
    """brms's default prior scale from the response: max(2.5, MAD), rounded (rows or a ResponseSummary).

    Example
    -------
    >>> response_scale(np.array([0.0, 10.0, 20.0]))
    14.8
    """
    mad = 1.4826 * response_summary(y).mad
    return round(max(2.5, mad), 1)


@dataclass(frozen=True)
class Family:
    """A response distribution with a link for its mean.

    Subclasses implement the distribution-specific pieces; everything is vectorised
    over draws (leading axis) and observations (last axis).  Class-level declarations
    (``kernel_code``, ``location_scale``, ...) tell the other stages what they need to
    know, so that none of them branches on the family's name.
    """

    #: the compiled kernel's integer code (hierfit.families.codes), None: PyMC only
    kernel_code: ClassVar[int | None] = None
    #: the links the compiled kernel evaluates for this family
    kernel_links: ClassVar[tuple[str, ...]] = ()
    #: the mean is a location: least-squares residuals estimate the noise (parametrization choice, plots)
    location_scale: ClassVar[bool] = False
    #: an observation-level group term is confounded with the residual sd (Gaussian)
    confounds_observation_effects: ClassVar[bool] = False
    #: residuals named in the summary header
    summary_residuals: ClassVar[str] = "pearson"
    #: the formula's intercept becomes K - 1 ordered thresholds ``Intercept[k]`` (ordinal families)
    thresholds: ClassVar[bool] = False

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
        # saved by class and link: the declarations hold functions that pickle cannot store
        return (rebuild, (type(self), self.link_name))

    @property
    def link(self) -> Link:
        return LINKS[self.link_name]

    @property
    def dpar_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dpars)

    @property
    def has_point_masses(self) -> bool:
        """Whether y has values of positive probability (ties that quantile residuals randomise)."""
        return self.discrete

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
            return Dist("student_t", (3.0, round(response_summary(y).median, 1), response_scale(y)))
        return Dist("student_t", (3.0, 0.0, 2.5))

    def effect_scale(self, y: np.ndarray) -> float:
        """Scale of the response on the link scale, for the autoscaled normal prior of slopes."""
        if self.link_name == "identity":
            return response_summary(y).sd
        return 1.0

    def sd_prior(self, y: np.ndarray) -> Dist:
        scale = response_scale(y) if self.link_name == "identity" else 2.5
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
    def response_codes(self, values, column: str):
        """(codes, category labels) of a categorical response column (families with ``thresholds``)."""
        raise NotImplementedError

    def validate(self, y: np.ndarray, trials: np.ndarray | None, column: str) -> None:
        """Raise DataError naming the column and the number of bad rows."""

    # -- the distribution ----------------------------------------------------------------
    def mean_parameter(self, eta):
        """The family's location parameter from the linear predictor (numpy): the inverse link."""
        return self.link.inv(eta)

    def mean_parameter_pt(self, eta):
        """The family's location parameter from the linear predictor (PyTensor)."""
        return self.link.inv_pt(eta)

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

    def point_residuals(self, y: np.ndarray, point) -> np.ndarray:
        """The summary's scaled residuals at the posterior means (``point``: prepared draws, S = 1): Pearson's."""
        return (y - point.expected()[0]) / np.sqrt(point.variance()[0])

    def link_scale_variance(self, mu_mean: float, dpars: dict) -> float:
        """Nakagawa-Schielzeth distribution-specific variance on the link scale (for R²)."""
        raise NotImplementedError



def rebuild(cls, link_name: str) -> Family:
    """A family from its class and link (how a saved family is restored)."""
    return cls(link_name=link_name)
