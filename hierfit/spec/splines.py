"""Spline bases for formulas, equal to R's ``splines::bs`` and ``splines::ns``, frozen for new data.

Both are formulaic stateful transforms: the knots (interior knots at quantiles of x,
boundary knots at its range, as R) are computed on the training data and stored, so
new data are evaluated on the same basis.  Outside the boundary knots ``bs`` continues
the boundary polynomial pieces and ``ns`` is linear, as R's.

Example
-------
>>> import numpy as np
>>> np.asarray(bs(np.arange(1.0, 11.0), df=4, _state={}))[1].round(5).tolist()
[0.46365, 0.0631, 0.00274, 0.0]
"""

from __future__ import annotations

import numpy as np
from formulaic.materializers.types import FactorValues
from formulaic.utils.stateful_transforms import stateful_transform

from hierfit.errors import DataError

__all__ = ["bs", "ns", "spline_design"]


def spline_design(knots: np.ndarray, x: np.ndarray, order: int = 4, derivs: int = 0) -> np.ndarray:
    """R's ``splines::splineDesign``: B-spline basis (or its derivatives) of the full knot sequence at x.

    Example
    -------
    >>> spline_design(np.array([0, 0, 0, 0, 1, 1, 1, 1.0]), np.array([0.5])).round(4).tolist()
    [[0.125, 0.375, 0.375, 0.125]]
    """
    from scipy.interpolate import BSpline

    knots = np.asarray(knots, dtype=float)
    x = np.asarray(x, dtype=float)
    degree = order - 1
    n_basis = len(knots) - order
    out = np.empty((len(x), n_basis))
    for j in range(n_basis):
        coef = np.zeros(n_basis)
        coef[j] = 1.0
        spl = BSpline(knots, coef, degree, extrapolate=True)
        out[:, j] = spl.derivative(derivs)(x) if derivs else spl(x)
    return out


def _interior(x: np.ndarray, n_interior: int) -> np.ndarray:
    if n_interior <= 0:
        return np.zeros(0)
    probs = np.linspace(0.0, 1.0, n_interior + 2)[1:-1]
    return np.quantile(x, probs)  # R's quantile type 7


def _numeric(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    if not np.isfinite(x).all():
        raise DataError(f"{what}() needs finite numbers")
    return x


@stateful_transform
def bs(x, df=None, knots=None, degree: int = 3, intercept: bool = False, _state=None):
    """R's ``splines::bs(x, df, knots, degree = 3, intercept = FALSE)``: the B-spline basis, knots frozen.

    ``df`` columns (``df - degree`` interior knots at quantiles of x), boundary knots at range(x).

    Example
    -------
    >>> np.asarray(bs(np.linspace(0, 1, 5), df=3, _state={})).shape
    (5, 3)
    """
    x = _numeric(x, "bs")
    degree = int(degree)
    if "knots" not in _state:
        if knots is None:
            n_int = (int(df) if df is not None else degree + int(intercept)) - degree - int(intercept)
            if n_int < 0:
                raise DataError(f"bs(): df must be at least {degree + int(intercept)} for degree {degree}")
            knots = _interior(x, n_int)
        _state["knots"] = [float(k) for k in np.atleast_1d(knots)]
        _state["boundary"] = [float(x.min()), float(x.max())]
    inner, (lo, hi) = np.asarray(_state["knots"], dtype=float), _state["boundary"]
    full = np.concatenate([[lo] * (degree + 1), inner, [hi] * (degree + 1)])
    basis = spline_design(full, np.clip(x, lo, hi), degree + 1)
    for side, pivot in ((x < lo, lo), (x > hi, hi)):  # R: Taylor expansion of the boundary piece
        if side.any():
            derivs = np.stack([spline_design(full, np.array([pivot]), degree + 1, d)[0] for d in range(degree + 1)])
            fact = np.array([np.prod(np.arange(1, d + 1)) for d in range(degree + 1)], dtype=float)
            powers = (x[side, None] - pivot) ** np.arange(degree + 1) / fact
            basis[side] = powers @ derivs
    if not intercept:
        basis = basis[:, 1:]
    return FactorValues(basis, column_names=tuple(str(i) for i in range(1, basis.shape[1] + 1)))


@stateful_transform
def ns(x, df=None, knots=None, intercept: bool = False, _state=None):
    """R's ``splines::ns(x, df, knots, intercept = FALSE)``: natural cubic splines, knots frozen, linear outside.

    ``df - 1 - intercept`` interior knots at quantiles of x, boundary knots at range(x); the basis is
    R's: the cubic B-spline basis projected on the null space of the second derivatives at the
    boundary knots (a QR decomposition, as R's ``qr.qty``).

    Example
    -------
    >>> np.asarray(ns(np.linspace(0, 1, 5), df=2, _state={})).shape
    (5, 2)
    """
    x = _numeric(x, "ns")
    if "knots" not in _state:
        if knots is None:
            n_int = (int(df) if df is not None else 1 + int(intercept)) - 1 - int(intercept)
            if n_int < 0:
                raise DataError("ns(): df must be at least 1")
            knots = _interior(x, n_int)
        _state["knots"] = [float(k) for k in np.atleast_1d(knots)]
        _state["boundary"] = [float(x.min()), float(x.max())]
    inner, (lo, hi) = np.asarray(_state["knots"], dtype=float), _state["boundary"]
    full = np.concatenate([[lo] * 4, inner, [hi] * 4])
    basis = spline_design(full, np.clip(x, lo, hi), 4)
    for side, pivot in ((x < lo, lo), (x > hi, hi)):  # linear beyond the boundary
        if side.any():
            tt = np.stack([spline_design(full, np.array([pivot]), 4, d)[0] for d in (0, 1)])
            basis[side] = np.column_stack([np.ones(side.sum()), x[side] - pivot]) @ tt
    const = np.stack([spline_design(full, np.array([b]), 4, 2)[0] for b in (lo, hi)])
    if not intercept:
        const, basis = const[:, 1:], basis[:, 1:]
    q, _ = np.linalg.qr(const.T, mode="complete")
    basis = (q.T @ basis.T).T[:, 2:]
    return FactorValues(basis, column_names=tuple(str(i) for i in range(1, basis.shape[1] + 1)))
