"""Penalised smooths ``s(x, k = 10)`` as in brms/mgcv: a linear fixed part and a wiggly part with its own sd.

The basis is a cubic P-spline (mgcv's ``bs = "ps"``): ``k`` cubic B-splines on equally
spaced knots over the range of x with a second-order difference penalty.  As brms does
with mgcv's ``smooth2random``, the penalty is diagonalised: its null space (constant and
linear functions) becomes one fixed effect, x itself, named ``sx_1`` like brms; the
penalised directions, scaled to an identity penalty and made orthogonal to the constant and
linear functions in the training data (which leaves the penalty unchanged), become ``k - 2`` coefficients
``s_sx_1[1]``, ... drawn from Normal(0, sds^2).  The sd ``sds_sx_1`` (brms's
"Smooth Terms: sds(sx_1)") is estimated, so the data decide how wiggly the curve is.
Knots and the reparametrisation are frozen for new data.

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

__all__ = ["s", "smooth_names", "smooth_groups", "SMOOTH_COEF"]

#: Names of the penalised coefficients: ``s_<label>[j]``.
SMOOTH_COEF = re.compile(r"^s_(\w+)\[(\d+)\]$")
_SMOOTH_COLUMN = re.compile(r"^s\(\s*`?([^,`)]+?)`?\s*(?:,[^)]*)?\)\[(\d+)\]$")


def _reparametrise(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Penalised directions of the second-order difference penalty and their scales (U_+ Lambda^-1/2)."""
    D = np.diff(np.eye(k), n=2, axis=0)
    lam, U = np.linalg.eigh(D.T @ D)
    keep = lam > 1e-9 * lam.max()
    return U[:, keep], 1.0 / np.sqrt(lam[keep])


@stateful_transform
def s(x, k: int = 10, by=None, _state=None):
    """brms/mgcv's penalised smooth ``s(x, k = 10)``: columns [x, wiggly part (k - 2)], knots frozen.

    Example
    -------
    >>> np.asarray(s(np.arange(20.0), k=5, _state={}))[:, 0][:3].tolist()
    [0.0, 1.0, 2.0]
    """
    if by is not None:
        raise DataError("s(x, by = f) is not available; write one smooth per level with a factor interaction "
                        "of ns(): ns(x, df = 4):f")
    x = np.asarray(x, dtype=float).ravel()
    if not np.isfinite(x).all():
        raise DataError("s() needs finite numbers")
    k = int(k)
    if k < 4:
        raise DataError(f"s(): k must be at least 4, got {k}")
    if "knots" not in _state:
        lo, hi = float(x.min()), float(x.max())
        if hi <= lo:
            raise DataError("s(): x is constant")
        n_inner = k - 4
        step = (hi - lo) / (n_inner + 1)
        _state["knots"] = [lo - 3 * step + i * step for i in range(n_inner + 8)]
    knots = np.asarray(_state["knots"], dtype=float)
    B = spline_design(knots, x, 4)
    U, scale = _reparametrise(B.shape[1])
    Z = (B @ U) * scale
    N = np.column_stack([np.ones_like(x), x])
    if "null_projection" not in _state:
        # the wiggly columns minus their constant and linear parts (unpenalised: the penalty is unchanged),
        # so that they are uncorrelated with the intercept and sx_1 in the training data
        _state["null_projection"] = np.linalg.lstsq(N, Z, rcond=None)[0].tolist()
    Z = Z - N @ np.asarray(_state["null_projection"])
    out = np.column_stack([x, Z])
    return FactorValues(out, column_names=tuple(str(i) for i in range(1, out.shape[1] + 1)))


def smooth_names(columns: list[str]) -> list[str]:
    """formulaic names of ``s(x)`` columns renamed as brms names them: ``sx_1`` and ``s_sx_1[j]``.

    Example
    -------
    >>> smooth_names(["Intercept", "s(x, k=5)[1]", "s(x, k=5)[2]", "z"])
    ['Intercept', 'sx_1', 's_sx_1[1]', 'z']
    """
    out = []
    for c in columns:
        m = _SMOOTH_COLUMN.match(c)
        if not m:
            out.append(c)
            continue
        label = "s" + re.sub(r"\W", "", m.group(1)) + "_1"
        j = int(m.group(2))
        out.append(label if j == 1 else f"s_{label}[{j - 1}]")
    return out


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
