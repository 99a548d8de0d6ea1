"""Penalised smooths ``s(x, k = 10)`` as in brms/mgcv: a linear fixed part and a wiggly part with its own sd.

The default basis is mgcv's (and brms's) thin-plate regression spline, ``bs = "tp"``
(one dimension, m = 2): the thin-plate spline with a knot at every unique x (at most
2000, picked evenly among the sorted unique values when there are more), radial part
eta(r) = |r|^3 / 12, truncated to the ``k`` eigenvectors of the knots' matrix
E = eta(|x_i - x_j|) with the largest eigenvalues, and constrained to be orthogonal to
[1, x], exactly as mgcv's ``smooth.construct.tp.smooth.spec`` builds it (same functions,
same penalty: the integrated squared second derivative).  The computation runs on x
standardised to mean 0 and sd 1, so the penalty is that of the standardised x and the
smoothness sd does not depend on x's units.  ``bs = "ps"`` gives a cubic P-spline instead:
``k`` cubic B-splines on equally spaced knots over the range of x with a second-order
difference penalty.

As brms does with mgcv's ``smooth2random``, the penalty is diagonalised: its null space
(constant and linear functions) becomes one fixed effect, x itself, named ``sx_1`` like brms; the
penalised directions, scaled to an identity penalty and made orthogonal to the constant and
linear functions in the training data (which leaves the penalty unchanged), become ``k - 2`` coefficients
``s_sx_1[1]``, ... drawn from Normal(0, sds^2).  The sd ``sds_sx_1`` (brms's
"Smooth Terms: sds(sx_1)") is estimated, so the data decide how wiggly the curve is.
Knots and the reparametrisation are frozen for new data.  (mgcv also rescales its penalty
by a factor that depends on its internal representation, so the value of ``sds`` is on a
different scale from brms's; the fitted curve is the same kind of curve.)

Example
-------
>>> import numpy as np
>>> basis = np.asarray(s(np.linspace(0, 1, 50), k=6, _state={}))
>>> basis.shape
(50, 5)
"""

from __future__ import annotations

import re

import numpy as np
from formulaic.materializers.types import FactorValues
from formulaic.utils.stateful_transforms import stateful_transform

from hierfit.errors import DataError
from hierfit.spec.splines import spline_design

__all__ = ["s", "smooth_names", "smooth_groups", "smooth_var", "SMOOTH_COEF", "thin_plate_knots",
           "thin_plate_wiggly", "MAX_KNOTS"]

#: Names of the penalised coefficients: ``s_<label>[j]``.
SMOOTH_COEF = re.compile(r"^s_([\w:.]+)\[(\d+)\]$")
_SMOOTH_COLUMN = re.compile(r"^s\(\s*`?([^,`)]+?)`?\s*((?:,[^)]*)?)\)\[(?:(.+):)?(\d+)\]$")
_BY = re.compile(r"by\s*=\s*`?(\w[\w.]*)`?")


def _reparametrise(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Penalised directions of the second-order difference penalty and their scales (U_+ Lambda^-1/2)."""
    D = np.diff(np.eye(k), n=2, axis=0)
    lam, U = np.linalg.eigh(D.T @ D)
    keep = lam > 1e-9 * lam.max()
    return U[:, keep], 1.0 / np.sqrt(lam[keep])


#: mgcv's largest number of thin-plate knots (``max.knots``)
MAX_KNOTS = 2000


def _eta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 1-D thin-plate radial function (m = 2) between all pairs: |a_i - b_j|^3 / 12."""
    d = np.subtract.outer(a, b)
    np.abs(d, out=d)
    r2 = d * d
    r2 *= d
    r2 /= 12.0
    return r2


def thin_plate_knots(x: np.ndarray, max_knots: int = MAX_KNOTS) -> np.ndarray:
    """The knots of a thin-plate smooth: the unique x, or ``max_knots`` of them evenly spaced in rank.

    Example
    -------
    >>> thin_plate_knots(np.array([3.0, 1.0, 3.0, 2.0])).tolist()
    [1.0, 2.0, 3.0]
    >>> thin_plate_knots(np.arange(10.0), max_knots=4).tolist()
    [0.0, 3.0, 6.0, 9.0]
    """
    u = np.unique(np.asarray(x, dtype=float))
    if len(u) > max_knots:
        u = u[np.round(np.linspace(0, len(u) - 1, max_knots)).astype(int)]
    return u


def thin_plate_wiggly(z: np.ndarray, knots: np.ndarray, k: int) -> np.ndarray:
    """(knots x (k - 2)) map W with wiggly basis eta(z, knots) @ W: penalised directions, identity penalty.

    mgcv's construction: E = eta(knots, knots) = U D U' truncated to the k eigenvalues
    largest in absolute value, the constraint T'U delta = 0 (T = [1, knots]) solved by the
    null space Z of (T'U)', the penalty S = Z' D Z, then (as smooth2random) the
    eigenvectors V and eigenvalues L of S: W = U Z V L^(-1/2).

    Example
    -------
    >>> t = np.linspace(-1.5, 1.5, 12)
    >>> thin_plate_wiggly(t, t, 5).shape
    (12, 3)
    """
    E = _eta(knots, knots)
    m = len(knots)
    if m > 10 * k:  # Lanczos, as mgcv: the k eigenvalues largest in absolute value (start vector fixed)
        from scipy.sparse.linalg import eigsh

        lam, U = eigsh(E, k=k, which="LM", v0=np.linspace(1.0, 2.0, m), tol=0)
    else:
        lam, U = np.linalg.eigh(E)
    order = np.argsort(-np.abs(lam), kind="stable")[:k]
    lam, U = lam[order], U[:, order]
    T = np.column_stack([np.ones_like(knots), knots])
    Q = np.linalg.qr(U.T @ T, mode="complete")[0]
    Z = Q[:, 2:]
    S = Z.T @ (lam[:, None] * Z)
    ev, V = np.linalg.eigh((S + S.T) / 2)
    if ev.min() <= 1e-12 * ev.max():
        raise DataError("s(): the thin-plate penalty is singular (too few distinct x values for k)")
    V = V[:, ::-1] * np.where(V[:, ::-1].sum(axis=0) < 0, -1.0, 1.0)  # largest first, signs fixed
    return (U @ Z @ V) / np.sqrt(ev[::-1])


def _thin_plate(x: np.ndarray, k: int, state: dict, fit_x: np.ndarray, where: str = "") -> np.ndarray:
    """Wiggly columns of a thin-plate smooth at x (knots and map stored in ``state`` from ``fit_x``)."""
    if "tp_knots" not in state:
        centre, scale = float(fit_x.mean()), float(fit_x.std())
        if not scale > 0:
            raise DataError("s(): x is constant" + where)
        knots = thin_plate_knots((fit_x - centre) / scale)
        if len(knots) < k:
            raise DataError(f"s(): x has {len(knots)} distinct values{where}, fewer than k = {k} (use a smaller k)")
        state["tp_centre"], state["tp_scale"] = centre, scale
        state["tp_knots"] = knots.tolist()
        state["tp_map"] = thin_plate_wiggly(knots, knots, k).tolist()
    knots = np.asarray(state["tp_knots"], dtype=float)
    W = np.asarray(state["tp_map"], dtype=float)
    z = (x - state["tp_centre"]) / state["tp_scale"]
    step = max(1, 4_000_000 // len(knots))  # rows at a time: eta(z, knots) never larger than 32 MB
    return np.concatenate([_eta(z[a:a + step], knots) @ W for a in range(0, len(z), step)] or [np.zeros((0, W.shape[1]))])


def _one_smooth(x: np.ndarray, k: int, state: dict, rows=None, bs: str = "tp") -> np.ndarray:
    """[x, wiggly part] of one smooth; ``rows`` (a mask) restricts the fit of the knots and projection."""
    fit_x = x if rows is None else x[rows]
    if "knots" in state or "tp_knots" in state:  # a fitted smooth keeps its basis (fits saved before "tp")
        bs = "ps" if "knots" in state else "tp"
    if bs == "tp":
        Z = _thin_plate(x, k, state, fit_x, "" if rows is None else " within a level of by")
        return _linear_free(x, Z, state, rows)
    if "knots" not in state:
        lo, hi = float(fit_x.min()), float(fit_x.max())
        if hi <= lo:
            raise DataError("s(): x is constant" + ("" if rows is None else " within a level of by"))
        n_inner = k - 4
        step = (hi - lo) / (n_inner + 1)
        state["knots"] = [lo - 3 * step + i * step for i in range(n_inner + 8)]
    B = spline_design(np.asarray(state["knots"], dtype=float), x, 4)
    U, scale = _reparametrise(B.shape[1])
    Z = (B @ U) * scale
    return _linear_free(x, Z, state, rows)


def _linear_free(x: np.ndarray, Z: np.ndarray, state: dict, rows) -> np.ndarray:
    """[x, Z minus its least-squares constant and linear part in the training rows] (the projection frozen)."""
    N = np.column_stack([np.ones_like(x), x])
    if "null_projection" not in state:
        # the wiggly columns minus their constant and linear parts (unpenalised: the penalty is unchanged),
        # so that they are uncorrelated with the intercept and sx_1 in the training data
        sel = slice(None) if rows is None else rows
        state["null_projection"] = np.linalg.lstsq(N[sel], Z[sel], rcond=None)[0].tolist()
    Z = Z - N @ np.asarray(state["null_projection"])
    return np.column_stack([x, Z])


@stateful_transform
def s(x, k: int = 10, by=None, bs: str = "tp", _state=None):
    """brms/mgcv's penalised smooth ``s(x, k = 10)``: columns [x, wiggly part (k - 2)], knots frozen.

    ``bs = "tp"`` (the default, as in brms and mgcv) is the thin-plate regression spline,
    ``bs = "ps"`` the cubic P-spline.

    With ``by = f`` (a factor) there is one smooth per level, each with its own sd, zero on
    the other levels' rows (mgcv's factor ``by``; add ``f`` itself for the level means).

    Example
    -------
    >>> np.asarray(s(np.arange(20.0), k=5, _state={}))[:, 0][:3].tolist()
    [0.0, 1.0, 2.0]
    """
    x = np.asarray(x, dtype=float).ravel()
    if not np.isfinite(x).all():
        raise DataError("s() needs finite numbers")
    k = int(k)
    if k < 4:
        raise DataError(f"s(): k must be at least 4, got {k}")
    if bs not in ("tp", "ps"):
        raise DataError(f's(): bs must be "tp" (thin plate, the default) or "ps" (P-spline), got {bs!r}')
    if by is None:
        out = _one_smooth(x, k, _state, bs=bs)
        return FactorValues(out, column_names=tuple(str(i) for i in range(1, out.shape[1] + 1)))
    labels = np.asarray(by.astype(str) if hasattr(by, "astype") else by, dtype=object).ravel()
    if "levels" not in _state:
        cats = getattr(getattr(by, "cat", None), "categories", None)
        levels = [str(c) for c in cats] if cats is not None else sorted(set(labels.tolist()))
        if np.issubdtype(np.asarray(by).dtype, np.floating):
            raise DataError("s(x, by = ...) needs a factor (numeric by-variables are not available)")
        _state["levels"] = levels
    blocks, names = [], []
    for lev in _state["levels"]:
        rows = labels == lev
        sub = _state.setdefault(f"level {lev}", {})
        fitted = "knots" in sub or "tp_knots" in sub
        part = _one_smooth(x, k, sub, None if fitted else rows, bs=bs) * rows[:, None]
        blocks.append(part)
        names += [f"{lev}:{i}" for i in range(1, part.shape[1] + 1)]
    return FactorValues(np.column_stack(blocks), column_names=tuple(names))


def smooth_names(columns: list[str]) -> list[str]:
    """formulaic names of ``s(x)`` columns renamed as brms names them: ``sx_1`` and ``s_sx_1[j]``.

    Example
    -------
    >>> smooth_names(["Intercept", "s(x, k=5)[1]", "s(x, k=5)[2]", "z"])
    ['Intercept', 'sx_1', 's_sx_1[1]', 'z']
    >>> smooth_names(["s(x, by=f)[a:1]", "s(x, by=f)[a:2]"])
    ['sx:fa_1', 's_sx:fa_1[1]']
    """
    out = []
    for c in columns:
        m = _SMOOTH_COLUMN.match(c)
        if not m:
            out.append(c)
            continue
        by = _BY.search(m.group(2) or "")
        label = "s" + re.sub(r"\W", "", m.group(1)) + (f":{by.group(1)}{m.group(3)}" if by and m.group(3) else "") + "_1"
        j = int(m.group(4))
        out.append(label if j == 1 else f"s_{label}[{j - 1}]")
    return out


def smooth_var(kind: str, label: str) -> str:
    """Model variable of a smooth: ``smooth_var("sds", "sx:fa_1")`` -> ``'sds_sx_fa_1'``.

    Example
    -------
    >>> smooth_var("sds", "sx_1")
    'sds_sx_1'
    """
    return f"{kind}_" + re.sub(r"\W", "_", label)


def smooth_groups(names: list[str]) -> dict[str, list[int]]:
    """Column positions of each smooth's penalised coefficients: ``{"sx_1": [2, 3, ...]}``.

    Example
    -------
    >>> smooth_groups(["(Intercept)", "sx_1", "s_sx_1[1]", "s_sx_1[2]"])
    {'sx_1': [2, 3]}
    """
    out: dict[str, list[int]] = {}
    for j, n in enumerate(names):
        m = SMOOTH_COEF.match(n)
        if m:
            out.setdefault(m.group(1), []).append(j)
    return out
