"""Posterior draws as plain arrays, and the one linear-predictor computation.

Everything that needs the model's linear predictor (fitted values, residuals,
scaled residuals in the summary, and predictions) goes through
:func:`linear_predictor`, so there is exactly one copy of that code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.arguments import check_probability

__all__ = ["stack", "interval_table", "linear_predictor", "STAT_COLUMNS", "ci_columns", "index_coords", "variable"]


def ci_columns(ci: float) -> tuple[str, str]:
    """brms's interval column names for a probability ``ci``.

    Example
    -------
    >>> ci_columns(0.95)
    ('l-95% CI', 'u-95% CI')
    """
    ci = check_probability("ci", ci)
    pct = f"{100 * ci:g}"
    return f"l-{pct}% CI", f"u-{pct}% CI"


STAT_COLUMNS = ("Estimate", "Est.Error") + ci_columns(0.95)


def stack(posterior, name: str) -> np.ndarray:
    """Draws of one variable as an array with all chains stacked first: (S, ...).

    Example
    -------
    >>> import xarray as xr, numpy as np
    >>> ds = xr.Dataset({"x": (("chain", "draw"), np.zeros((2, 5)))})
    >>> stack(ds, "x").shape
    (10,)
    """
    da = posterior[name]
    arr = np.asarray(da.values)
    return arr.reshape((arr.shape[0] * arr.shape[1],) + arr.shape[2:])


def interval_table(samples: np.ndarray, index, ci: float = 0.95) -> pd.DataFrame:
    """Posterior mean, sd and equal-tailed interval of each column of (S, k) samples.

    Example
    -------
    >>> import numpy as np
    >>> t = interval_table(np.random.default_rng(1).normal(size=(4000, 1)), ["x"])
    >>> list(t.columns)
    ['Estimate', 'Est.Error', 'l-95% CI', 'u-95% CI']
    """
    ci = check_probability("ci", ci)
    samples = np.asarray(samples, dtype=float)
    if samples.ndim == 1:
        samples = samples[:, None]
    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
    q = np.quantile(samples, [lo, hi], axis=0)
    lcol, ucol = ci_columns(ci)
    return pd.DataFrame(
        {
            "Estimate": samples.mean(axis=0),
            "Est.Error": samples.std(axis=0, ddof=1) if samples.shape[0] > 1 else np.zeros(samples.shape[1]),
            lcol: q[0],
            ucol: q[1],
        },
        index=pd.Index(list(index)),
    )


def linear_predictor(b: np.ndarray, X: np.ndarray, ranef: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """The linear predictor for S draws: X b + sum over blocks of Z * r[index].

    Parameters
    ----------
    b : (S, p) fixed-effect draws
    X : (n, p) fixed-effect design
    ranef : list of (r, Z, index)
        r is (S, levels, q) group-effect draws, Z is (n, q), index is (n,) level of
        each row.  A row whose index is -1 gets no contribution from that block.

    Returns
    -------
    (S, n) array

    Example
    -------
    >>> import numpy as np
    >>> b = np.array([[1.0, 2.0]]); X = np.array([[1.0, 0.5], [1.0, 1.0]])
    >>> r = np.array([[[10.0], [20.0]]]); Z = np.ones((2, 1)); idx = np.array([0, 1])
    >>> linear_predictor(b, X, [(r, Z, idx)])
    array([[12., 23.]])
    """
    b = np.atleast_2d(b)
    if not isinstance(X, np.ndarray) and hasattr(X, "linear_predictor"):
        return X.linear_predictor(b, ranef)  # coded rows that compute it from raw columns (hierfit.data.coding)
    eta = b @ X.T if X.shape[1] else np.zeros((b.shape[0], X.shape[0]))
    for r, Z, index in ranef:
        # np.take gathers the rows' levels several times faster than r[:, index, :], with the same values
        if not len(index) or index.min() >= 0:  # every row has a level: no masking (copies of n rows)
            eta = eta + np.einsum("snq,nq->sn", np.take(r, index, axis=1), Z)
            continue
        known = index >= 0
        contrib = np.einsum("snq,nq->sn", np.take(r, np.where(known, index, 0), axis=1), Z)
        eta = eta + contrib * known
    return eta


def index_coords(coords: dict) -> dict:
    """Coordinates as xarray's index variables, built directly (as xarray builds them from arrays).

    With :func:`variable` (arrays that are numpy already), a Dataset is built without xarray's
    generic conversion, which checks every array against the duck-array types of the libraries
    installed (dask, sparse, pint, cupy), importing them: half a second on a small fit, for plain
    numpy arrays. The result is the same (labels, dtype and index).

    Example
    -------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"x": variable(("g",), np.zeros(2))}, coords=index_coords({"g": ["a", "b"]}))
    >>> ds.indexes["g"].tolist(), str(ds["g"].dtype)
    (['a', 'b'], '<U1')
    """
    import xarray as xr
    from xarray.core.indexing import PandasIndexingAdapter

    out = {}
    for d, labels in coords.items():
        a = np.asarray(labels)
        index = pd.Index(a, dtype="object" if a.dtype.kind == "O" else None)
        out[d] = xr.IndexVariable((d,), PandasIndexingAdapter(index, dtype=a.dtype))
    return out


def variable(dims: tuple, values: np.ndarray):
    """An xarray Variable of a numpy array, without xarray's duck-array checks (see :func:`index_coords`).

    Example
    -------
    >>> variable(("chain", "draw"), np.zeros((1, 3))).dims
    ('chain', 'draw')
    """
    import xarray as xr

    return xr.Variable(dims, np.asarray(values), fastpath=True)
