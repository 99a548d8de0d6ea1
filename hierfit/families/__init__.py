"""Response families: one declaration per family, used by every stage.

A :class:`Family` declares its link, its distributional parameters (with their
links and default priors), its PyMC likelihood, and the numpy/scipy functions
that the rest of hierfit needs: mean, variance, log density, CDF (for quantile
residuals) and a simulator, and what the other stages need to know (its compiled
kernel's code, LaTeX, collapsibility, ...).  Nothing outside the family modules
branches on the family.  Adding a family: a subclass of
:class:`hierfit.families.base.Family` in one of the family modules, its entry in
``FAMILIES`` below, and (for the compiled kernel) its code in
hierfit.families.codes and its row log-likelihood in hierfit.engine.kernel.likelihood.

Example
-------
>>> import hierfit
>>> hierfit.families.binomial(link="probit")
binomial(link='probit')
>>> hierfit.families.get("poisson").link.name
'log'
"""

from __future__ import annotations

from hierfit.errors import HierfitError
from hierfit.families.base import LINKS, DPar, Family, Link, ResponseSummary, rebuild, response_summary
from hierfit.families.classic import Bernoulli, Binomial, Gamma, Gaussian, NegBinomial, Poisson, Student
from hierfit.families.custom import CustomFamily, custom_family
from hierfit.families.mixtures import (HurdleLognormal, HurdleNegBinomial, HurdlePoisson, ZeroInflatedNegBinomial,
                                          ZeroInflatedPoisson)
from hierfit.families.ordinal import Cumulative
from hierfit.families.positive import Beta, Exponential, Lognormal, Weibull

__all__ = ["ResponseSummary", "response_summary", "Link", "DPar", "Family", "get", "gaussian", "student", "poisson", "negbinomial", "binomial",
           "bernoulli", "gamma", "zero_inflated_poisson", "zero_inflated_negbinomial", "hurdle_poisson",
           "hurdle_negbinomial", "hurdle_lognormal", "beta", "lognormal", "weibull", "exponential",
           "cumulative", "custom_family", "CustomFamily", "FAMILIES", "LINKS"]


FAMILIES: dict[str, type[Family]] = {
    "gaussian": Gaussian,
    "student": Student,
    "poisson": Poisson,
    "negbinomial": NegBinomial,
    "binomial": Binomial,
    "bernoulli": Bernoulli,
    "gamma": Gamma,
    "zero_inflated_poisson": ZeroInflatedPoisson,
    "zero_inflated_negbinomial": ZeroInflatedNegBinomial,
    "hurdle_poisson": HurdlePoisson,
    "hurdle_negbinomial": HurdleNegBinomial,
    "hurdle_lognormal": HurdleLognormal,
    "beta": Beta,
    "lognormal": Lognormal,
    "weibull": Weibull,
    "exponential": Exponential,
    "cumulative": Cumulative,
}

#: R's spellings whose default link differs from brms's: R's ``Gamma()`` uses the inverse link
R_DEFAULT_LINKS = {"Gamma": ("gamma", "inverse")}


def get(family, link: str | None = None) -> Family:
    """A family from its name (``"poisson"``), a ``(name, link)`` pair or a Family object.

    Names follow brms (``"gamma"`` has brms's log link); R's capitalised ``"Gamma"``
    takes R's default inverse link, as ``Gamma()`` does in glm/lme4.

    Example
    -------
    >>> get("bernoulli", link="probit")
    bernoulli(link='probit')
    >>> get(("gamma", "inverse")), get("Gamma"), get("gamma")
    (gamma(link='inverse'), gamma(link='inverse'), gamma(link='log'))
    """
    if isinstance(family, Family):
        if link is not None and link != family.link_name:
            return rebuild(type(family), link)
        return family
    if isinstance(family, tuple) and len(family) == 2 and all(isinstance(v, str) for v in family):
        if link is not None and link != family[1]:
            raise HierfitError(f"family {family!r} and link={link!r} disagree; give the link once")
        family, link = family
    elif isinstance(family, str) and family in R_DEFAULT_LINKS and link is None:
        family, link = R_DEFAULT_LINKS[family]
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
zero_inflated_poisson = _factory("zero_inflated_poisson")
zero_inflated_negbinomial = _factory("zero_inflated_negbinomial")
hurdle_poisson = _factory("hurdle_poisson")
hurdle_negbinomial = _factory("hurdle_negbinomial")
hurdle_lognormal = _factory("hurdle_lognormal")
beta = _factory("beta")
lognormal = _factory("lognormal")
weibull = _factory("weibull")
exponential = _factory("exponential")
cumulative = _factory("cumulative")
