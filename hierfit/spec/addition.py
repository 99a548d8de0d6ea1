"""brms's response addition terms evaluated on data: weights, censoring and known standard errors.

``y | weights(w) ~ ...``
    each row's log-likelihood is multiplied by ``w`` (brms's semantics; also ``weights=``
    of :func:`hierfit.fit`, an array or a column name).  The pointwise log-likelihood
    used by LOO is the weighted one, as brms's ``log_lik()``.
``y | cens(c) ~ ...``, ``y | cens(c, y2) ~ ...``
    ``c`` holds ``"left"``/``"none"``/``"right"``/``"interval"`` (or -1/0/1/2, or
    TRUE for right-censored): a left-censored row contributes log P(Y <= y), a
    right-censored one log P(Y > y), an interval-censored one log P(y < Y <= y2).
    The family supplies its log CDF and log survival function (scipy's ``logcdf`` and
    ``logsf`` of :meth:`Family.scipy_dist`; PyMC's ``logcdf`` in the model).
``y | se(s) ~ ...``, ``y | se(s, sigma = TRUE) ~ ...``
    known measurement standard errors (meta-analysis): y_i ~ Normal(mu_i, s_i) with no
    residual sd (brms's default), or Normal(mu_i, sqrt(sigma^2 + s_i^2)) with one.

Example
-------
>>> import numpy as np, pandas as pd, hierfit
>>> d = hierfit.specify("y | se(sei) ~ 1 + (1 | school)",
...                     pd.DataFrame({"y": [28., 8, -3, 7], "sei": [15., 10, 16, 11],
...                                   "school": list("ABCD")})).design
>>> d.addition.se.tolist(), d.family.dpar_names
([15.0, 10.0, 16.0, 11.0], ())
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierfit.errors import DataError, FormulaError
from hierfit.families import Family, Gaussian

__all__ = ["Addition", "KnownSEGaussian", "evaluate_addition", "addition_family", "CENS_CODES", "row_logpdf",
           "censoring_codes", "rows_addition", "total_sd", "check_weights_array"]

#: brms's censoring codes.
CENS_CODES = {"left": -1, "none": 0, "right": 1, "interval": 2}


@dataclass(frozen=True, repr=False)
class KnownSEGaussian(Gaussian):
    """The Gaussian family of ``y | se(s)`` without a residual sd: y_i ~ Normal(mu_i, s_i).

    The per-row sd is the known standard error, so the family has no ``sigma`` parameter.

    Example
    -------
    >>> KnownSEGaussian().dpar_names
    ()
    """

    dpars: tuple = ()

    def __reduce__(self):
        return (KnownSEGaussian, (self.name, self.link_name))


@dataclass
class Addition:
    """Per-row values of the addition terms (None when absent).

    Attributes
    ----------
    weights : (n,) log-likelihood weights
    cens : (n,) int codes -1 (left), 0 (none), 1 (right), 2 (interval)
    y2 : (n,) upper bounds of interval-censored rows
    se : (n,) known standard errors
    sigma : bool   whether a residual sd is estimated besides ``se``
    se_spec : formulaic spec re-evaluating ``se`` on new data
    """

    weights: np.ndarray | None = None
    cens: np.ndarray | None = None
    y2: np.ndarray | None = None
    se: np.ndarray | None = None
    sigma: bool = True
    se_spec: object = None

    @property
    def active(self) -> bool:
        return self.weights is not None or self.cens is not None or self.se is not None

    def describe(self) -> str:
        """Short text for messages: ``weights, cens, se``."""
        return ", ".join(n for n in ("weights", "cens", "se") if getattr(self, n) is not None)

    def take(self, keep: np.ndarray) -> Addition:
        """The rows ``keep`` (a boolean mask or index)."""
        def sub(a):
            return None if a is None else a[keep]
        return Addition(sub(self.weights), sub(self.cens), sub(self.y2), sub(self.se), self.sigma, self.se_spec)


def censoring_codes(values, column: str) -> np.ndarray:
    """brms's censoring codes from strings, numbers or booleans (TRUE = right-censored).

    Example
    -------
    >>> censoring_codes(["left", "none", "right", "interval"], "c").tolist()
    [-1, 0, 1, 2]
    >>> censoring_codes([0, 1, -1], "c").tolist()
    [0, 1, -1]
    """
    s = pd.Series(values)
    if s.dtype == bool:
        return s.to_numpy().astype(np.int64)
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.to_numpy(dtype=float)
        bad = ~np.isin(v, [-1.0, 0.0, 1.0, 2.0])
        if bad.any():
            raise DataError(f"censoring column '{column}' has value(s) {sorted(set(v[bad].tolist()))[:5]}; "
                            "use -1 (left), 0 (none), 1 (right), 2 (interval)")
        return v.astype(np.int64)
    labels = s.astype(str).str.lower()
    bad = ~labels.isin(list(CENS_CODES))
    if bad.any():
        raise DataError(f"censoring column '{column}' has value(s) {sorted(set(labels[bad]))[:5]}; "
                        "use 'left', 'none', 'right' or 'interval' (or -1, 0, 1, 2)")
    return labels.map(CENS_CODES).to_numpy().astype(np.int64)


def _check(values: np.ndarray, what: str, positive: bool, strict: bool) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    bad = ~np.isfinite(values) | ((values <= 0) if strict else (values < 0) if positive else False)
    if bad.any():
        rule = "positive" if strict else "non-negative"
        raise DataError(f"{what} must be finite and {rule}: {int(bad.sum())} row(s) are not "
                        f"(first: {values[bad][0]!r})")
    return values


def evaluate_addition(pf, data: pd.DataFrame, family: Family, evaluate, weights=None, y=None) -> Addition | None:
    """The addition terms of ``pf`` on ``data`` (plus ``weights=``), checked against the family.

    ``evaluate(expr, what)`` returns ``(values, spec)`` of a numeric expression of columns.
    """
    w_term, c_term, se_term = (pf.addition_term(n) for n in ("weights", "cens", "se"))
    out = Addition()
    if w_term is not None and weights is not None:
        raise FormulaError("weights given twice: in the formula (y | weights(w)) and as weights=", pf.text)
    if w_term is not None:
        out.weights = _check(evaluate(w_term.args[0], "weights")[0], f"weights '{w_term.args[0]}'", True, False)
    elif weights is not None:
        if isinstance(weights, str):
            out.weights = _check(evaluate(weights, "weights")[0], f"weights '{weights}'", True, False)
        else:
            out.weights = weights  # an array, already checked and subset by the caller
    if c_term is not None:
        if family.needs_trials or family.name == "bernoulli" or family.thresholds:
            raise FormulaError(f"cens() is not available for the {family.name} family", pf.text)
        col = c_term.args[0]
        raw = data[col].to_numpy() if col in data.columns else evaluate(col, "cens")[0]
        out.cens = censoring_codes(raw, col)
        if (out.cens == 2).any():
            if len(c_term.args) < 2:
                raise DataError(f"{int((out.cens == 2).sum())} row(s) are interval-censored but cens() has no upper "
                                "bound: write cens(censored, y2)")
            out.y2 = evaluate(c_term.args[1], "cens upper bound")[0]
            rows = out.cens == 2
            if y is not None and not (out.y2[rows] > y[rows]).all():
                raise DataError(f"interval-censored rows need y2 > y: {int((out.y2[rows] <= y[rows]).sum())} "
                                f"row(s) have y2 '{c_term.args[1]}' <= the response")
        elif len(c_term.args) > 1:
            out.y2 = evaluate(c_term.args[1], "cens upper bound")[0]
    if se_term is not None:
        if family.name != "gaussian" or family.link_name != "identity":
            raise FormulaError(f"se() needs the gaussian family with the identity link, not {family!r}", pf.text)
        values, spec = evaluate(se_term.args[0], "se")
        out.se = _check(values, f"se '{se_term.args[0]}'", True, True)
        out.se_spec = spec
        out.sigma = se_term.flag("sigma", False)
    return out if out.active else None


def check_weights_array(weights, n: int) -> np.ndarray:
    """``weights=`` given as numbers: one finite non-negative value per row."""
    try:
        w = np.asarray(weights, dtype=float).ravel()
    except (TypeError, ValueError) as err:
        raise DataError(f"weights must be numbers (or a string naming a column): {err}") from err
    if w.shape[0] != n:
        raise DataError(f"weights has {w.shape[0]} values but the data has {n} rows")
    return _check(w, "weights", True, False)


def addition_family(family: Family, pf) -> Family:
    """The family with ``sigma`` removed for ``se()`` without ``sigma = TRUE`` (brms's default)."""
    se_term = pf.addition_term("se")
    if se_term is not None and not se_term.flag("sigma", False) and family.name == "gaussian":
        return KnownSEGaussian(link_name=family.link_name)
    return family


def rows_addition(design, data: pd.DataFrame | None, context: dict | None = None) -> Addition | None:
    """The addition terms of the training rows (``data`` None), or of new data: only ``se`` applies there.

    New data without the ``se`` column predict with se = 0 (the latent mean plus any residual sd).
    """
    add = getattr(design, "addition", None)
    if add is None or data is None:
        return add
    if add.se is None:
        return None
    term = design.formula.addition_term("se")
    try:
        se = np.asarray(add.se_spec.get_model_matrix(data, context=context or {}), dtype=float)[:, 0]
    except Exception:  # noqa: BLE001  the se column is absent from new data
        if term is not None and term.args[0] in data.columns:
            raise
        se = np.zeros(len(data))
    return Addition(se=se, sigma=add.sigma)


def total_sd(sigma, se):
    """sqrt(sigma^2 + se^2), or se when there is no residual sd (sigma None)."""
    if sigma is None:
        return se
    return np.sqrt(np.asarray(sigma) ** 2 + se ** 2)


def row_logpdf(family: Family, y, mu, dpars: dict, trials, addition: Addition | None) -> np.ndarray:
    """Pointwise log-likelihood with censoring and weights: (S, n).

    Censored rows use the family's log CDF / log survival function (scipy's ``logcdf``/``logsf``).

    Example
    -------
    >>> import numpy as np
    >>> from hierfit.families import gaussian
    >>> a = Addition(cens=np.array([0, -1, 1]), weights=np.array([1.0, 2.0, 1.0]))
    >>> row_logpdf(gaussian(), np.zeros(3), np.zeros((1, 3)), {"sigma": np.ones((1, 1))}, None, a).round(4)
    array([[-0.9189, -1.3863, -0.6931]])
    """
    ll = np.asarray(family.logpdf(y, mu, dpars, trials), dtype=float)
    if addition is None:
        return ll
    if addition.cens is not None and (addition.cens != 0).any():
        dist = family.scipy_dist(mu, dpars, trials)
        c = addition.cens
        ll = np.where(c == -1, dist.logcdf(y), ll)
        ll = np.where(c == 1, dist.logsf(y), ll)
        if (c == 2).any():
            y2 = addition.y2
            lo, hi = dist.logcdf(y), dist.logcdf(y2)
            with np.errstate(divide="ignore", invalid="ignore"):
                interval = hi + np.log1p(-np.exp(np.minimum(lo - hi, 0.0)))
                lo_s, hi_s = dist.logsf(y), dist.logsf(y2)  # the upper tail: P(Y > y) - P(Y > y2)
                upper = lo_s + np.log1p(-np.exp(np.minimum(hi_s - lo_s, 0.0)))
            interval = np.where(np.asarray(lo) > np.log(0.5), upper, interval)
            ll = np.where(c == 2, interval, ll)
    if addition.weights is not None:
        ll = ll * addition.weights
    return ll
