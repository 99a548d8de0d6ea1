"""Priors, keyed like brms's ``set_prior(prior, class, coef, group)``.

Classes
-------
``Intercept``  the intercept at the means of the predictors (brms's centred intercept); for ordinal
               families every threshold, or with ``coef=k`` the k-th (1..K-1) alone
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

from hierfit.errors import PriorError

__all__ = ["Dist", "Prior", "prior", "parse_dist", "PredictorPriors", "PriorSet", "resolve_priors", "POSITIVE_ONLY"]

_ARITY = {
    "normal": ("mu", "sigma"),
    "student_t": ("nu", "mu", "sigma"),
    "cauchy": ("mu", "sigma"),
    "exponential": ("lam",),
    "gamma": ("alpha", "beta"),
    "lognormal": ("mu", "sigma"),
    "inv_gamma": ("alpha", "beta"),
    "beta": ("alpha", "beta"),
    "lkj": ("eta",),
}
POSITIVE_ONLY = {"exponential", "gamma", "lognormal", "inv_gamma", "beta"}
CLASSES = ("Intercept", "b", "sd", "cor", "sds", "sigma", "shape", "nu", "phi", "zi", "hu")


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

    def scipy(self):
        """The (untruncated) distribution as a frozen scipy distribution.

        Example
        -------
        >>> round(float(Dist("normal", (0.0, 2.0)).scipy().std()), 6)
        2.0
        """
        from scipy import stats

        f, p = self.family, self.params
        if f == "lkj":
            raise PriorError("lkj() has no univariate scipy distribution")
        return {
            "normal": lambda: stats.norm(p[0], p[1]),
            "student_t": lambda: stats.t(p[0], p[1], p[2]),
            "cauchy": lambda: stats.cauchy(p[0], p[1]),
            "exponential": lambda: stats.expon(scale=1 / p[0]),
            "gamma": lambda: stats.gamma(p[0], scale=1 / p[1]),
            "lognormal": lambda: stats.lognorm(p[1], scale=np.exp(p[0])),
            "inv_gamma": lambda: stats.invgamma(p[0], scale=p[1]),
            "beta": lambda: stats.beta(p[0], p[1]),
        }[f]()

    def logpdf(self, x: np.ndarray, positive: bool) -> np.ndarray:
        """Log density at x (of the half-distribution when ``positive``), for prior plots."""
        dist = self.scipy()
        out = dist.logpdf(x)
        if positive and self.family not in POSITIVE_ONLY:
            out = np.where(x >= 0, out - np.log(dist.sf(0.0)), -np.inf)
        return out


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
    Prior(dist=normal(0, 1), class_='b', coef='standLRT', group=None, dpar=None)
    """

    dist: Dist
    class_: str
    coef: str | None = None
    group: str | None = None
    dpar: str | None = None

    def __post_init__(self):
        if self.class_ not in CLASSES:
            raise PriorError(f"unknown prior class '{self.class_}' (known: {', '.join(CLASSES)})")
        if (self.dist.family == "lkj") != (self.class_ == "cor"):
            raise PriorError(
                "class 'cor' takes an lkj(eta) prior" if self.class_ == "cor" else "lkj() is only a prior for class 'cor'"
            )
        if self.class_ in ("sd", "sigma", "shape", "nu"):
            f, p = self.dist.family, self.dist.params
            if f in ("normal", "cauchy") and p[0] < 0 or f == "student_t" and p[1] < 0:
                raise PriorError(f"prior {self.dist} for class '{self.class_}' has a negative location")
        if self.class_ == "b" and self.dist.family in POSITIVE_ONLY:
            raise PriorError(f"{self.dist.family}() is a prior for positive parameters (sd, sigma), not for 'b'")


def prior(dist: str | Dist, class_: str = "b", coef: str | None = None, group: str | None = None,
          dpar: str | None = None) -> Prior:
    """Build a prior statement (brms's ``set_prior``/``prior``).

    Parameters
    ----------
    dist : str
        ``"normal(0, 1)"``, ``"student_t(3, 0, 2.5)"``, ``"exponential(1)"``, ``"lkj(2)"``...
    class_ : {"Intercept", "b", "sd", "cor", "sigma"}
    coef : str or int, optional
        A coefficient name in lme4 spelling (``"standLRT"``, ``"sexM"``, ``"(Intercept)"`` for sd); for
        class ``"Intercept"`` of an ordinal family, the threshold's number k (``2`` or ``"2"``: ``Intercept[2]``).
    group : str, optional
        A grouping factor (``"school"``) for classes sd and cor.
    dpar : str, optional
        The distributional parameter whose formula the prior belongs to (``"sigma"`` for
        ``sigma ~ x``); None for the mean.

    Example
    -------
    >>> import hierfit
    >>> p = hierfit.prior("exponential(2)", class_="sd", group="school")
    >>> p.dist
    exponential(2)
    """
    if isinstance(coef, (int, np.integer)) and not isinstance(coef, bool):
        coef = str(int(coef))  # a threshold's number (class Intercept of ordinal families)
    return Prior(parse_dist(dist), class_, coef, group, None if dpar in (None, "mu") else dpar)


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
                    unknown = set(s) - {"dist", "prior", "coef", "group", "dpar"}
                    if unknown:
                        raise PriorError(f"prior for class '{cls}' has unknown key(s) {sorted(unknown)}; "
                                         "use dist, coef, group")
                    d = s.get("dist", s.get("prior"))
                    if d is None:
                        raise PriorError(f"prior for class '{cls}' needs a 'dist', e.g. {{'dist': 'normal(0, 1)'}}")
                    out.append(prior(d, class_=cls, coef=s.get("coef"), group=s.get("group"), dpar=s.get("dpar")))
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
class PredictorPriors:
    """Priors of one linear predictor: intercept, slopes, group sds and correlations."""

    intercept: Dist | None
    b: dict[str, Dist]
    sd: dict[str, list[Dist]]
    cor: dict[str, Dist]
    sds: dict[str, Dist] = field(default_factory=dict)  # penalised smooths s(x): label -> prior of their sd
    #: ordinal families: the prior of each threshold Intercept[1] ... (class Intercept, coef k); empty otherwise
    thresholds: list[Dist] = field(default_factory=list)

    def threshold_priors(self, n: int) -> list[Dist]:
        """The priors of ``n`` ordered thresholds: per threshold when set, else the class Intercept prior for all.

        Example
        -------
        >>> pp = PredictorPriors(Dist("student_t", (3.0, 0.0, 2.5)), {}, {}, {},
        ...                      thresholds=[Dist("normal", (0.0, 1.0)), Dist("student_t", (3.0, 0.0, 2.5))])
        >>> pp.threshold_priors(2)
        [normal(0, 1), student_t(3, 0, 2.5)]
        """
        if len(self.thresholds) == n:
            return list(self.thresholds)
        return [self.intercept] * n


@dataclass
class PriorSet:
    """The priors of one model, resolved for every parameter.

    ``predictors["mu"]`` holds the mean's; ``dpars`` the priors of distributional
    parameters without a formula (``sigma``, ``shape``, ``nu``).  ``intercept``, ``b``,
    ``sd``, ``cor`` and ``sigma`` are shortcuts for the mean's and sigma's.
    """

    predictors: dict[str, PredictorPriors]
    dpars: dict[str, Dist]
    rows: list[dict] = field(default_factory=list)

    @property
    def intercept(self) -> Dist | None:
        return self.predictors["mu"].intercept

    @property
    def b(self) -> dict[str, Dist]:
        return self.predictors["mu"].b

    @property
    def sd(self) -> dict[str, list[Dist]]:
        return self.predictors["mu"].sd

    @property
    def cor(self) -> dict[str, Dist]:
        return self.predictors["mu"].cor

    @property
    def sigma(self) -> Dist | None:
        return self.dpars.get("sigma")

    def table(self) -> pd.DataFrame:
        """The priors as a brms-like table (prior, class, coef, group, dpar, source)."""
        return PriorTable(self.rows, columns=["prior", "class", "coef", "group", "dpar", "source"])


class PriorTable(pd.DataFrame):
    """A DataFrame of priors that renders as HTML in Jupyter and as a table in terminals.

    Columns: prior, class, coef, group, dpar, source (``default`` or ``user``), one row
    per prior as brms's ``get_prior`` lists them.  ``print`` shows brms's layout (the
    dpar column only when a distributional formula has priors).

    Example
    -------
    >>> tab = PriorTable([{"prior": "normal(0, 1)", "class": "b", "coef": "x", "group": "", "dpar": "",
    ...                    "source": "user"}], columns=["prior", "class", "coef", "group", "dpar", "source"])
    >>> print(tab)
           prior class coef group source
    normal(0, 1)     b    x         user
    """

    @property
    def _constructor(self):
        return PriorTable

    def _display_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self).fillna("")
        if "dpar" in frame.columns and not frame["dpar"].astype(str).str.len().any():
            frame = frame.drop(columns="dpar")
        return frame

    def __repr__(self) -> str:
        if self.empty or not {"prior", "class"} <= set(self.columns):
            return super().__repr__()
        frame = self._display_frame()
        return frame.to_string(index=False, justify="right")

    def _repr_html_(self) -> str:
        if self.empty or not {"prior", "class"} <= set(self.columns):
            return super()._repr_html_()
        frame = self._display_frame()
        body = frame.to_html(index=False, escape=True)
        if "source" in frame.columns and (frame["source"] == "user").any():
            body = body.replace("<td>user</td>", "<td><b>user</b></td>")
        n_user = int((frame["source"] == "user").sum()) if "source" in frame.columns else 0
        note = f"{len(frame)} priors" + (f", {n_user} set by you" if n_user else ", all defaults")
        return f"<div class='hierfit-priors'><p><b>Priors</b> ({note})</p>{body}</div>"


def resolve_priors(design, priors=None) -> PriorSet:
    """Combine the defaults for ``design`` with user priors (most specific statement wins).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> ps = resolve_priors(d, [hierfit.prior("normal(0, 1)", "b", coef="standLRT")])
    >>> ps.b["standLRT"]
    normal(0, 1)
    """
    user = _as_prior_list(priors)
    fam = design.family
    summary = getattr(design, "summary", None)
    y = summary.response if summary is not None and summary.response is not None else design.y
    rows: list[dict] = []

    def pick(cls: str, coef: str | None, dpar: str, group_names: tuple[str, ...] = ()) -> tuple[Dist | None, str]:
        best, best_rank = None, -1
        for p in user:
            if p.class_ != cls or (p.dpar or "mu") != dpar:
                continue
            if p.coef is not None and p.coef != coef:
                continue
            if p.group is not None and p.group not in group_names:
                continue
            rank = (p.coef is not None) * 2 + (p.group is not None)
            if rank >= best_rank:
                best, best_rank = p.dist, rank
        return best, "user" if best is not None else "default"

    def add_row(dist, cls, coef="", group="", dpar="mu", src="default"):
        rows.append({"prior": str(dist), "class": cls, "coef": coef, "group": group,
                     "dpar": "" if dpar == "mu" else dpar, "source": src})

    # check that user priors refer to things that exist
    for p in user:
        dp = p.dpar or "mu"
        if dp not in design.predictors and not (p.class_ in fam.dpar_names and dp == "mu"):
            raise PriorError(f"prior names dpar '{dp}', which has no formula in this model "
                             f"(formulas: {', '.join(design.predictors)})")
        if p.class_ in ("shape", "nu", "sigma"):
            if p.class_ not in fam.dpar_names:
                raise PriorError(f"a prior for class '{p.class_}' was given, but the {fam.name} family has no "
                                 f"{p.class_} (it has: {', '.join(fam.dpar_names) or 'no extra parameters'})")
            if p.class_ in design.predictors:
                raise PriorError(f"'{p.class_}' has its own formula here; put priors on its coefficients with "
                                 f"class 'b'/'Intercept' and dpar='{p.class_}'")
            continue
        pred = design.predictors.get(dp)
        coef_names = set(pred.fixed_names) if pred else set()
        groups = {b.name for b in pred.blocks} | {b.factor for b in pred.blocks} if pred else set()
        if p.class_ == "b" and p.coef is not None and p.coef not in coef_names - {"(Intercept)"}:
            raise PriorError(
                f"prior for class 'b' names coef '{p.coef}', which is not a fixed effect of this model "
                f"(fixed effects: {', '.join(n for n in pred.fixed_names if n != '(Intercept)') or 'none'})"
            )
        if p.class_ in ("sd", "cor") and p.group is not None and p.group not in groups:
            raise PriorError(f"prior for class '{p.class_}' names group '{p.group}', which is not a grouping factor "
                             f"of this model (groups: {', '.join(sorted(groups)) or 'none'})")
        if p.class_ in ("sd", "cor") and not pred.blocks:
            raise PriorError(f"a prior for class '{p.class_}' was given, but the model has no group-level terms")
        if p.class_ == "sd" and p.coef is not None:
            blocks = [b for b in pred.blocks if p.group is None or p.group in (b.name, b.factor)]
            valid = list(dict.fromkeys(c for b in blocks for c in b.coefs))
            if p.coef not in valid:
                where = f" of group '{p.group}'" if p.group is not None else ""
                raise PriorError(f"prior for class 'sd' names coef '{p.coef}', which is not a group-level "
                                 f"coefficient{where} of this model (coefficients{where}: {', '.join(valid)})")
        if p.class_ == "cor" and not any(b.is_correlated for b in pred.blocks
                                         if p.group is None or p.group in (b.name, b.factor)):
            with_cor = sorted({b.name for b in pred.blocks if b.is_correlated})
            raise PriorError(f"a prior for class 'cor' was given{f' for group {p.group!r}' if p.group else ''}, but "
                             "no such term has correlated coefficients (groups with correlations: "
                             f"{', '.join(with_cor) or 'none'})")
        if p.class_ == "Intercept" and p.coef is not None and pred is not None and pred.n_thresholds:
            valid = [str(k) for k in range(1, pred.n_thresholds + 1)]
            if p.coef not in valid:
                raise PriorError(f"prior for class 'Intercept' names coef {p.coef!r}, which is not a threshold of "
                                 f"this model: the {pred.n_thresholds} thresholds Intercept[1] ... "
                                 f"Intercept[{pred.n_thresholds}] take coef 1..{pred.n_thresholds}")
        elif p.class_ in ("cor", "Intercept") and p.coef is not None:
            raise PriorError(f"a prior for class '{p.class_}' takes no coef (got coef '{p.coef}')"
                             + (f"; groups: {', '.join(sorted(groups))}" if p.class_ == "cor" else ""))
        if p.class_ in ("b", "Intercept") and p.group is not None:
            raise PriorError(f"a prior for class '{p.class_}' takes no group (got group '{p.group}'); "
                             "group-level priors are class 'sd' or 'cor'")
        if p.class_ == "Intercept" and not pred.centred:
            raise PriorError("a prior for class 'Intercept' was given, but the model has no intercept")

    out: dict[str, PredictorPriors] = {}
    for dp, pred in design.predictors.items():
        is_mu = dp == "mu"
        intercept = None
        if pred.has_intercept or pred.n_thresholds:  # one prior for every threshold (brms's class Intercept)
            default = fam.intercept_prior(y) if is_mu else Dist("student_t", (3.0, 0.0, 2.5))
            d, src = pick("Intercept", None, dp)
            intercept = d or default
            add_row(intercept, "Intercept", dpar=dp, src=src)
        thresholds: list[Dist] = []
        for k in range(1, pred.n_thresholds + 1):  # brms's prior(..., class = Intercept, coef = k)
            own = [p.dist for p in user if p.class_ == "Intercept" and (p.dpar or "mu") == dp and p.coef == str(k)]
            thresholds.append(own[-1] if own else intercept)
            if own:
                add_row(own[-1], "Intercept", coef=str(k), dpar=dp, src="user")
        b: dict[str, Dist] = {}
        scale_y = fam.effect_scale(y) if is_mu else 1.0
        penalised = {j for cols in pred.smooths.values() for j in cols}
        for j, name in enumerate(pred.fixed_names):
            if name == "(Intercept)" or j in penalised:
                continue
            if summary is not None and name in summary.x_sd.get(dp, {}):
                sd_x = summary.x_sd[dp][name]
            else:
                sd_x = float(np.std(pred.X[:, j], ddof=1)) if design.nobs > 1 else 1.0
            s = 2.5 * scale_y / sd_x if sd_x > 0 else 2.5 * scale_y
            d, src = pick("b", name, dp)
            b[name] = d or Dist("normal", (0.0, float(f"{s:.3g}")))
            add_row(b[name], "b", coef=name, dpar=dp, src=src)
        sd: dict[str, list[Dist]] = {}
        cor: dict[str, Dist] = {}
        for blk in pred.blocks:
            gnames = (blk.name, blk.factor)
            sd[blk.name] = []
            for c in blk.coefs:
                d, src = pick("sd", c, dp, gnames)
                dist = d or (fam.sd_prior(y) if is_mu else Dist("student_t", (3.0, 0.0, 2.5)))
                sd[blk.name].append(dist)
                add_row(dist, "sd", coef=c, group=blk.name, dpar=dp, src=src)
            if blk.is_correlated:
                d, src = pick("cor", None, dp, gnames)
                cor[blk.name] = d or Dist("lkj", (1.0,))
                add_row(cor[blk.name], "cor", group=blk.name, dpar=dp, src=src)
        sds: dict[str, Dist] = {}
        for label in pred.smooths:
            d, src = pick("sds", label, dp)
            sds[label] = d or (fam.sd_prior(y) if is_mu else Dist("student_t", (3.0, 0.0, 2.5)))
            add_row(sds[label], "sds", coef=label, dpar=dp, src=src)
        out[dp] = PredictorPriors(intercept=intercept, b=b, sd=sd, cor=cor, sds=sds, thresholds=thresholds)
    dpars: dict[str, Dist] = {}
    for dpar in fam.dpars:
        if dpar.name in design.predictors:
            continue
        d, src = pick(dpar.name, None, "mu")
        if d is not None and (dpar.link == "logit") != (d.family == "beta"):
            raise PriorError(f"{dpar.name} is a probability: give it a beta() prior (brms's default beta(1, 1)), "
                             f"not {d}" if dpar.link == "logit" else
                             f"beta() is a prior for probabilities (zi, hu), not for {dpar.name}")
        dpars[dpar.name] = d or dpar.default_prior(y)
        add_row(dpars[dpar.name], dpar.name, src=src)
    return PriorSet(predictors=out, dpars=dpars, rows=rows)
