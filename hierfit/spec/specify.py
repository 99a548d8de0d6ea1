"""The specify stage, hierfit's ``lFormula``: formula + data + family + priors -> one frozen :class:`Specification`.

Every entry point (:func:`hierfit.fit`, :func:`hierfit.sample_prior`,
:func:`hierfit.default_priors`) calls :func:`specify` and nothing else to turn
user input into a model: the family is resolved once, the formula split once
(``bf()``, ``dpars=``, ``dispformula=``), the design built once, the priors
resolved once, and the collapsed-or-full method and the per-term parametrization
chosen once, each with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from hierfit.arguments import reject_unknown
from hierfit.errors import HierfitError
from hierfit import families
from hierfit.spec.design import Design, build_design
from hierfit.spec.distributional import split_formula
from hierfit.spec.layout import collapsible
from hierfit.spec.parametrization import Parametrization, choose_parametrization
from hierfit.spec.priors import PriorSet, resolve_priors

__all__ = ["specify", "specify_design", "Specification", "Method", "METHODS", "choose_method", "default_priors"]

METHODS = ("auto", "collapsed", "full")


@dataclass(frozen=True)
class Method:
    """How the group effects are handled: ``name`` ("collapsed" or "full") and ``reason``.

    ``message`` is set when the method asked for could not be used (said as a warning).

    Example
    -------
    >>> str(Method("full", "group effects sampled by NUTS"))
    'full (group effects sampled by NUTS)'
    """

    name: str
    reason: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def choose_method(design: Design, method: str = "auto", parametrization="auto") -> Method:
    """Collapsed (group effects integrated out) or full (sampled by NUTS), with the reason.

    Example
    -------
    >>> import hierfit
    >>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> choose_method(d).name
    'collapsed'
    """
    if method not in METHODS:
        raise HierfitError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    ok, why = collapsible(design)
    if ok and any(p.smooths for p in design.predictors.values()):
        ok, why = False, "penalised smooths s() are sampled with their coefficients"
    if ok and design.addition is not None:
        ok, why = False, (f"the addition term(s) {design.addition.describe()} change the Gaussian likelihood "
                          "row by row")
    if method == "full":
        return Method("full", "group effects sampled by NUTS (method='full')")
    if method == "collapsed" and not ok:
        return Method("full", f"not collapsible: {why}", f"method='collapsed' is not available: {why}; "
                      "sampling the group effects with NUTS instead")
    if not ok:
        return Method("full", f"group effects sampled by NUTS; not collapsible: {why}")
    if method == "auto" and parametrization != "auto":
        return Method("full", f"group effects sampled by NUTS (parametrization={parametrization!r} was asked for)")
    return Method("collapsed", f"group effects integrated out exactly: {why}")


@dataclass(frozen=True)
class Specification:
    """Everything a model is, before sampling: the inspectable result of :func:`specify`.

    Attributes
    ----------
    design : Design
        Parsed formula (``design.formula``), response, fixed-effect matrix, group blocks,
        distributional predictors and the frozen re-coding specs for new data.
    priors : PriorSet
        Resolved priors (``priors.table()`` is brms's ``get_prior`` table).
    method : Method
        Collapsed or full, with the reason.
    parametrization : Parametrization
        Centred / non-centred / collapsed per group term, with reasons.

    Example
    -------
    >>> import hierfit
    >>> s = hierfit.specify("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> s.family.name, s.method.name, s.design.nobs
    ('gaussian', 'collapsed', 4059)
    """

    design: Design
    priors: PriorSet
    method: Method
    parametrization: Parametrization

    @property
    def family(self):
        """The response family object."""
        return self.design.family

    @property
    def formula(self):
        """The parsed formula (:class:`hierfit.spec.formula.ParsedFormula`)."""
        return self.design.formula

    def __repr__(self) -> str:
        d = self.design
        return (f"Specification({d.formula.text!r}, family={d.family.name}({d.family.link.name}), nobs={d.nobs}, "
                f"method={self.method.name}, parametrization={{{self.parametrization}}})")


def specify(formula, data, family="gaussian", *, priors=None, dpars: dict | None = None,
            dispformula: str | None = None, ziformula: str | None = None, link: str | None = None, offset=None,
            weights=None, method: str = "auto", parametrization="auto", data_name: str | None = None,
            **unknown) -> Specification:
    """Turn a formula and data into a :class:`Specification` (lme4's ``lFormula``).

    Parameters are those of :func:`hierfit.fit` that describe the model (not the sampler);
    ``weights`` (a column expression or one value per row) is brms's ``y | weights(w)``.

    Example
    -------
    >>> import hierfit
    >>> s = hierfit.specify("normexam ~ standLRT + sex + (standLRT | school)", hierfit.datasets.load("exam"))
    >>> list(s.priors.table()["class"])
    ['Intercept', 'b', 'b', 'sd', 'sd', 'cor', 'sigma']
    """
    reject_unknown("specify", unknown, ("formula", "data", "family", "priors", "dpars", "dispformula", "offset",
                                        "method", "parametrization", "data_name", "weights",
                                        "ziformula", "link"))
    fam = families.get(family, link)
    formula, dpar_formulas = split_formula(formula, dpars, dispformula, fam, ziformula)
    design = build_design(formula, data, data_name=data_name, family=fam, dpars=dpar_formulas, offset=offset,
                          weights=weights)
    return specify_design(design, priors=priors, method=method, parametrization=parametrization)


def specify_design(design: Design, *, priors=None, method: str = "auto", parametrization="auto") -> Specification:
    """The priors, method and parametrization of a built design (the second half of :func:`specify`).

    Data engines (:mod:`hierfit.data`) build the design from their metadata pass and
    attach the statistics of the rows before calling this.

    Example
    -------
    >>> import hierfit
    >>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> specify_design(d).method.name
    'collapsed'
    """
    prior_set = resolve_priors(design, priors)
    how = choose_method(design, method, parametrization)
    par = choose_parametrization(design, parametrization)
    if how.name == "collapsed":
        par = Parametrization({b.key: "collapsed" for b in design.all_blocks},
                              {b.key: "integrated out; drawn exactly per posterior draw" for b in design.all_blocks},
                              par.names)
    return Specification(design, prior_set, how, par)


def default_priors(formula, data, priors=None, family="gaussian", **kwargs):
    """The priors hierfit would use for ``formula`` on ``data`` (brms's ``get_prior``).

    Parameters
    ----------
    formula : str
    data : pandas.DataFrame
    priors : optional
        User priors to merge in, to check what they change.
    family, **kwargs
        As for :func:`specify` (``dpars``, ``dispformula``, ``offset``).

    Example
    -------
    >>> import hierfit
    >>> tab = hierfit.default_priors("normexam ~ standLRT + sex + (standLRT | school)",
    ...                              hierfit.datasets.load("exam"))
    >>> list(tab["class"])
    ['Intercept', 'b', 'b', 'sd', 'sd', 'cor', 'sigma']
    """
    return specify(formula, data, family, priors=priors, **kwargs).priors.table()
