"""Priors, keyed like brms's ``set_prior(prior, class, coef, group)``.

Classes
-------
``Intercept``  the intercept at the means of the predictors (brms's centred intercept)
``b``          fixed-effect coefficients (``coef=`` picks one)
``sd``         group-level standard deviations (``group=``, ``coef=``)
``cor``        LKJ prior on group-level correlations (``group=``)
``sigma``      residual standard deviation

Defaults (brms's, made proper for ``b``)::

    Intercept ~ student_t(3, median(y), max(2.5, mad(y)))
    b         ~ normal(0, 2.5 * sd(y) / sd(x))          # rstanarm's autoscaled default
    sd, sigma ~ student_t(3, 0, max(2.5, mad(y)))        # half-t, bounded at 0
    cor       ~ lkj(1)

Distributions are written as in brms/Stan: ``normal(0, 1)``, ``student_t(3, 0, 2.5)``,
``cauchy(0, 1)``, ``exponential(1)``, ``gamma(2, 0.1)``, ``lognormal(0, 1)``, ``lkj(2)``.
For ``sd`` and ``sigma`` a normal/student_t/cauchy prior is the half-distribution.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import PriorError

__all__ = ["Dist", "Prior", "prior", "parse_dist", "PriorSet", "resolve_priors", "default_priors", "pymc_rv"]

_ARITY = {
    "normal": ("mu", "sigma"),
    "student_t": ("nu", "mu", "sigma"),
    "cauchy": ("mu", "sigma"),
    "exponential": ("lam",),
    "gamma": ("alpha", "beta"),
    "lognormal": ("mu", "sigma"),
    "lkj": ("eta",),
}
_POSITIVE_ONLY = {"exponential", "gamma", "lognormal"}
CLASSES = ("Intercept", "b", "sd", "cor", "sigma")


@dataclass(frozen=True)
class Dist:
    """A prior distribution in brms/Stan spelling.

    Example
    -------
    >>> Dist("student_t", (3.0, 0.0, 2.5))
    student_t(3, 0, 2.5)
    """

    family: str
    params: tuple[float, ...]

    def __post_init__(self):
        if self.family not in _ARITY:
            raise PriorError(f"unknown prior distribution '{self.family}' (known: {', '.join(_ARITY)})")
        if len(self.params) != len(_ARITY[self.family]):
            raise PriorError(
                f"{self.family} takes {len(_ARITY[self.family])} parameter(s) "
                f"({', '.join(_ARITY[self.family])}), got {len(self.params)}"
            )
        names = _ARITY[self.family]
        for n, v in zip(names, self.params):
            if not math.isfinite(v):
                raise PriorError(f"{self.family}: parameter {n} must be finite, got {v}")
            if n in ("sigma", "nu", "lam", "alpha", "beta", "eta") and v <= 0:
                raise PriorError(f"{self.family}: parameter {n} must be positive, got {v:g}")

    def __repr__(self) -> str:
        return f"{self.family}({', '.join(f'{p:.4g}' for p in self.params)})"

    __str__ = __repr__

    def to_pymc(self, name: str, positive: bool, **kwargs):
        """Create the PyMC random variable (half-distribution when ``positive``)."""
        if self.family == "lkj":
            raise PriorError("lkj() is only a prior for class 'cor'")
        return pymc_rv(name, self.family, list(self.params), positive, **kwargs)

    def logpdf(self, x: np.ndarray, positive: bool) -> np.ndarray:
        """Log density at x (of the half-distribution when ``positive``), for prior plots."""
        from scipy import stats

        f, p = self.family, self.params
        dist = {
            "normal": lambda: stats.norm(p[0], p[1]),
            "student_t": lambda: stats.t(p[0], p[1], p[2]),
            "cauchy": lambda: stats.cauchy(p[0], p[1]),
            "exponential": lambda: stats.expon(scale=1 / p[0]),
            "gamma": lambda: stats.gamma(p[0], scale=1 / p[1]),
            "lognormal": lambda: stats.lognorm(p[1], scale=np.exp(p[0])),
        }[f]()
        out = dist.logpdf(x)
        if positive and f not in _POSITIVE_ONLY:
            out = np.where(x >= 0, out - np.log(dist.sf(0.0)), -np.inf)
        return out


def pymc_rv(name: str, family: str, params: list, positive: bool, **kwargs):
    """A PyMC random variable of ``family`` with (scalar or vector) ``params``.

    ``positive`` gives the half-distribution (bounded at 0) used for sd and sigma.

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
    if family in _POSITIVE_ONLY and not positive:
        raise PriorError(f"{family}() is a prior for positive parameters (sd, sigma), not for coefficients")
    loc = {"normal": 0, "student_t": 1, "cauchy": 0}.get(family)
    if positive and loc is not None and not np.all(p[loc] == 0):
        base = {
            "normal": lambda: pm.Normal.dist(mu=p[0], sigma=p[1]),
            "student_t": lambda: pm.StudentT.dist(nu=p[0], mu=p[1], sigma=p[2]),
            "cauchy": lambda: pm.Cauchy.dist(alpha=p[0], beta=p[1]),
        }[family]()
        return pm.Truncated(name, base, lower=0, **kwargs)
    make = {
        ("normal", True): lambda: pm.HalfNormal(name, sigma=p[1], **kwargs),
        ("normal", False): lambda: pm.Normal(name, mu=p[0], sigma=p[1], **kwargs),
        ("student_t", True): lambda: pm.HalfStudentT(name, nu=p[0], sigma=p[2], **kwargs),
        ("student_t", False): lambda: pm.StudentT(name, nu=p[0], mu=p[1], sigma=p[2], **kwargs),
        ("cauchy", True): lambda: pm.HalfCauchy(name, beta=p[1], **kwargs),
        ("cauchy", False): lambda: pm.Cauchy(name, alpha=p[0], beta=p[1], **kwargs),
        ("exponential", True): lambda: pm.Exponential(name, lam=p[0], **kwargs),
        ("gamma", True): lambda: pm.Gamma(name, alpha=p[0], beta=p[1], **kwargs),
        ("lognormal", True): lambda: pm.LogNormal(name, mu=p[0], sigma=p[1], **kwargs),
    }
    if (family, positive) not in make:
        raise PriorError(f"no PyMC translation for a {family} prior")
    return make[(family, positive)]()


_DIST_RE = re.compile(r"^\s*([A-Za-z_]+)\s*\((.*)\)\s*$")


def parse_dist(text: str | Dist) -> Dist:
    """Parse a brms-style distribution string.

    Example
    -------
    >>> parse_dist("normal(0, 2.5)")
    normal(0, 2.5)
    >>> parse_dist("lkj(2)")
    lkj(2)
    """
    if isinstance(text, Dist):
        return text
    if not isinstance(text, str):
        raise PriorError(f"a prior must be a string such as 'normal(0, 1)', got {type(text).__name__}")
    m = _DIST_RE.match(text)
    if not m:
        raise PriorError(f"cannot read prior {text!r}; write it like 'normal(0, 1)' or 'student_t(3, 0, 2.5)'")
    family = m.group(1).lower()
    family = {"student": "student_t", "studentt": "student_t", "t": "student_t", "lkj_corr_cholesky": "lkj"}.get(
        family, family
    )
    args = [a.strip() for a in m.group(2).split(",")] if m.group(2).strip() else []
    try:
        params = tuple(float(a) for a in args)
    except ValueError as err:
        raise PriorError(f"prior {text!r}: parameters must be numbers") from err
    return Dist(family, params)


@dataclass(frozen=True)
class Prior:
    """One prior statement, as brms's ``set_prior(prior, class, coef, group)``.

    Example
    -------
    >>> prior("normal(0, 1)", class_="b", coef="standLRT")
    Prior(dist=normal(0, 1), class_='b', coef='standLRT', group=None)
    """

    dist: Dist
    class_: str
    coef: str | None = None
    group: str | None = None

    def __post_init__(self):
        if self.class_ not in CLASSES:
            raise PriorError(f"unknown prior class '{self.class_}' (known: {', '.join(CLASSES)})")
        if (self.dist.family == "lkj") != (self.class_ == "cor"):
            raise PriorError(
                "class 'cor' takes an lkj(eta) prior" if self.class_ == "cor" else "lkj() is only a prior for class 'cor'"
            )
        if self.class_ in ("sd", "sigma"):
            f, p = self.dist.family, self.dist.params
            if f in ("normal", "cauchy") and p[0] < 0 or f == "student_t" and p[1] < 0:
                raise PriorError(f"prior {self.dist} for class '{self.class_}' has a negative location")
        if self.class_ == "b" and self.dist.family in _POSITIVE_ONLY:
            raise PriorError(f"{self.dist.family}() is a prior for positive parameters (sd, sigma), not for 'b'")


def prior(dist: str | Dist, class_: str = "b", coef: str | None = None, group: str | None = None) -> Prior:
    """Build a prior statement (brms's ``set_prior``/``prior``).

    Parameters
    ----------
    dist : str
        ``"normal(0, 1)"``, ``"student_t(3, 0, 2.5)"``, ``"exponential(1)"``, ``"lkj(2)"``...
    class_ : {"Intercept", "b", "sd", "cor", "sigma"}
    coef : str, optional
        A coefficient name in lme4 spelling (``"standLRT"``, ``"sexM"``, ``"(Intercept)"`` for sd).
    group : str, optional
        A grouping factor (``"school"``) for classes sd and cor.

    Example
    -------
    >>> import hierfit
    >>> p = hierfit.prior("exponential(2)", class_="sd", group="school")
    >>> p.dist
    exponential(2)
    """
    return Prior(parse_dist(dist), class_, coef, group)


def _as_prior_list(priors) -> list[Prior]:
    if priors is None:
        return []
    if isinstance(priors, Prior):
        return [priors]
    out: list[Prior] = []
    if isinstance(priors, dict):
        for cls, spec in priors.items():
            specs = spec if isinstance(spec, list) else [spec]
            for s in specs:
                if isinstance(s, (str, Dist)):
                    out.append(prior(s, class_=cls))
                elif isinstance(s, dict):
                    unknown = set(s) - {"dist", "prior", "coef", "group"}
                    if unknown:
                        raise PriorError(f"prior for class '{cls}' has unknown key(s) {sorted(unknown)}; "
                                         "use dist, coef, group")
                    d = s.get("dist", s.get("prior"))
                    if d is None:
                        raise PriorError(f"prior for class '{cls}' needs a 'dist', e.g. {{'dist': 'normal(0, 1)'}}")
                    out.append(prior(d, class_=cls, coef=s.get("coef"), group=s.get("group")))
                else:
                    raise PriorError(f"cannot read the prior given for class '{cls}': {s!r}")
        return out
    if isinstance(priors, (list, tuple)):
        for p in priors:
            out.extend(_as_prior_list(p))
        return out
    raise PriorError(f"priors must be a list of hierfit.prior(...) or a dict keyed by class; got {type(priors).__name__}")


def _mad(y: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(y - np.median(y))))


@dataclass
class PriorSet:
    """The priors of one model, resolved for every parameter.

    Attributes
    ----------
    intercept : Dist or None
    b : dict coef -> Dist (non-intercept fixed effects)
    sd : dict block name -> list of Dist (one per coefficient)
    cor : dict block name -> Dist (lkj)
    sigma : Dist
    rows : list of dict   the table shown by :func:`default_priors`
    """

    intercept: Dist | None
    b: dict[str, Dist]
    sd: dict[str, list[Dist]]
    cor: dict[str, Dist]
    sigma: Dist | None
    rows: list[dict] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """The priors as a brms-like table (prior, class, coef, group, source)."""
        return PriorTable(self.rows, columns=["prior", "class", "coef", "group", "source"])


class PriorTable(pd.DataFrame):
    """A DataFrame of priors that renders as HTML in Jupyter and as a table in terminals."""

    @property
    def _constructor(self):
        return PriorTable


def resolve_priors(design, priors=None, family=None) -> PriorSet:
    """Combine the defaults for ``design`` with user priors (most specific statement wins).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.design import build_design
    >>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> ps = resolve_priors(d, [hierfit.prior("normal(0, 1)", "b", coef="standLRT")])
    >>> ps.b["standLRT"]
    normal(0, 1)
    """
    user = _as_prior_list(priors)
    y = design.y
    scale = round(max(2.5, _mad(y)), 1)
    sd_y = float(np.std(y, ddof=1)) if len(y) > 1 else 1.0
    rows: list[dict] = []

    def pick(cls: str, coef: str | None, group_names: tuple[str, ...] = ()) -> tuple[Dist | None, str]:
        best, best_rank = None, -1
        for p in user:
            if p.class_ != cls:
                continue
            if p.coef is not None and p.coef != coef:
                continue
            if p.group is not None and p.group not in group_names:
                continue
            rank = (p.coef is not None) * 2 + (p.group is not None)
            if rank >= best_rank:
                best, best_rank = p.dist, rank
        return best, "user" if best is not None else "default"

    # check that user priors refer to things that exist
    coef_names = set(design.fixed_names)
    groups = {b.name for b in design.blocks} | {b.factor for b in design.blocks}
    for p in user:
        if p.class_ == "b" and p.coef is not None and p.coef not in coef_names - {"(Intercept)"}:
            raise PriorError(
                f"prior for class 'b' names coef '{p.coef}', which is not a fixed effect of this model "
                f"(fixed effects: {', '.join(n for n in design.fixed_names if n != '(Intercept)') or 'none'})"
            )
        if p.class_ in ("sd", "cor") and p.group is not None and p.group not in groups:
            raise PriorError(f"prior for class '{p.class_}' names group '{p.group}', which is not a grouping factor "
                             f"of this model (groups: {', '.join(sorted(groups)) or 'none'})")
        if p.class_ == "Intercept" and not design.has_intercept:
            raise PriorError("a prior for class 'Intercept' was given, but the model has no intercept")

    intercept = None
    if design.has_intercept:
        default = Dist("student_t", (3.0, round(float(np.median(y)), 1), scale))
        d, src = pick("Intercept", None)
        intercept = d or default
        rows.append(dict(prior=str(intercept), **{"class": "Intercept"}, coef="", group="", source=src))
    b: dict[str, Dist] = {}
    for j, name in enumerate(design.fixed_names):
        if name == "(Intercept)":
            continue
        sd_x = float(np.std(design.X[:, j], ddof=1)) if design.nobs > 1 else 1.0
        s = 2.5 * sd_y / sd_x if sd_x > 0 else 2.5 * sd_y
        default = Dist("normal", (0.0, float(f"{s:.3g}")))
        d, src = pick("b", name)
        b[name] = d or default
        rows.append(dict(prior=str(b[name]), **{"class": "b"}, coef=name, group="", source=src))
    sd: dict[str, list[Dist]] = {}
    cor: dict[str, Dist] = {}
    for blk in design.blocks:
        gnames = (blk.name, blk.factor)
        sd[blk.name] = []
        for c in blk.coefs:
            d, src = pick("sd", c, gnames)
            dist = d or Dist("student_t", (3.0, 0.0, scale))
            sd[blk.name].append(dist)
            rows.append(dict(prior=str(dist), **{"class": "sd"}, coef=c, group=blk.name, source=src))
        if blk.is_correlated:
            d, src = pick("cor", None, gnames)
            cor[blk.name] = d or Dist("lkj", (1.0,))
            rows.append(dict(prior=str(cor[blk.name]), **{"class": "cor"}, coef="", group=blk.name, source=src))
    d, src = pick("sigma", None)
    sigma = d or Dist("student_t", (3.0, 0.0, scale))
    rows.append(dict(prior=str(sigma), **{"class": "sigma"}, coef="", group="", source=src))
    return PriorSet(intercept=intercept, b=b, sd=sd, cor=cor, sigma=sigma, rows=rows)


def default_priors(formula: str, data, priors=None) -> pd.DataFrame:
    """The priors hierfit would use for ``formula`` on ``data`` (brms's ``get_prior``).

    Parameters
    ----------
    formula : str
    data : pandas.DataFrame
    priors : optional
        User priors to merge in, to check what they change.

    Example
    -------
    >>> import hierfit
    >>> tab = hierfit.default_priors("normexam ~ standLRT + sex + (standLRT | school)",
    ...                              hierfit.datasets.load("exam"))
    >>> list(tab["class"])
    ['Intercept', 'b', 'b', 'sd', 'sd', 'cor', 'sigma']
    """
    from .design import build_design

    return resolve_priors(build_design(formula, data), priors).table()
