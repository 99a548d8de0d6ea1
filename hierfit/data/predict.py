"""Lazy predictions, fitted values and residuals for data held by Dask, through :func:`prepare_draws`.

Every partition goes through :func:`hierfit.analysis.prepare.prepare_draws` with the
partition as ``newdata`` (the training coding: levels, ``scale()`` moments).  The fit
(its posterior draws) enters the graph once as one task that every partition reads,
so the draws are sent to each worker once, not once per partition.  Nothing is
computed until the caller asks (``.compute()``, ``.to_parquet()``, ...).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from hierfit.data.allocation import heap_allocations
from hierfit.analysis.prepare import prepare_draws, required_columns, select_blocks
from hierfit.arguments import check_arguments
from hierfit.data.accumulate import add_histogram
from hierfit.data.coding import RawRows, complete_rows, fast_coder
from hierfit.data import passes
from hierfit.data.passes import run_pass
from hierfit.data.stats import formulaic_code, histogram_quantile, response_values, worker_design
from hierfit.errors import DataError, HierfitError
from hierfit.results.draws import interval_table

__all__ = ["summarise_engine_residuals", "predict_frame", "fitted_frame", "residuals_frame", "residual_quantiles"]

_QUANTILES = ["Min", "1Q", "Median", "3Q", "Max"]


def summarise_engine_residuals(fit, frame=None) -> None:
    """One more engine pass over the training frame (default: the fit's lazy one): the summary's residual quantiles.

    Example
    -------
    >>> # summarise_engine_residuals(fit); fit.design.summary.residual_quantiles["Median"]
    """
    import time

    t0 = time.perf_counter()
    summary = fit.design.summary
    if summary is not None and summary.stats is not None:
        summary.residual_quantiles = residual_quantiles(fit, fit.engine_frame if frame is None else frame)
        summary.timing["residual_pass"] = time.perf_counter() - t0


def _used(fit) -> list[str]:
    """The columns the fit read: the formula's, then those of an ``offset=`` expression."""
    d = fit.design
    offsets = [c for spec in d.mu.offset_specs for c in sorted(spec.required_variables)]
    return list(dict.fromkeys([t.text for t in d.formula.variables] + offsets))


def _fit_task(fit):
    import dask

    return dask.delayed(fit, pure=True, traverse=False)


_KINDS = ("link", "mean", "response")


def _on_all_rows(table, part: pd.DataFrame, complete: np.ndarray):
    """``table`` (one row per complete row of ``part``) on every row of ``part``, NaN where a value was missing."""
    if complete.all():
        return table
    if isinstance(table, pd.Series):
        out = pd.Series(np.nan, index=part.index, name=table.name)
    else:
        out = pd.DataFrame(np.nan, index=part.index, columns=table.columns)
    out.iloc[np.flatnonzero(complete)] = table.to_numpy()
    return out


def _training_part(part: pd.DataFrame, fit, used: list[str], re_form, ci: float) -> pd.DataFrame:
    """Expected values of a partition's training rows; rows with a missing value get NaN (R's na.exclude)."""
    complete = part[used].notna().all(axis=1).to_numpy()
    table = _predict_part(part[complete], fit, re_form, "mean", ci, None, None, False)
    return _on_all_rows(table, part, complete)


def _predict_part(part: pd.DataFrame, fit, re_form, kind: str, ci: float, ndraws, seed, allow_new_levels,
                  partition_info=None) -> pd.DataFrame:
    if not len(part):
        return _meta_table(ci, part.index)
    # the seeds of in-memory predict(): seed + 1 for new levels' effects, seed for the noise of partition 0
    prepared = prepare_draws(fit, part, re_form=re_form, ndraws=ndraws, seed=None if seed is None else seed + 1,
                             allow_new_levels=allow_new_levels)
    if kind == "link":
        draws = prepared.eta["mu"]
    elif kind == "mean":
        draws = prepared.expected()
    else:  # each partition its own stream: [seed, partition number] (the same rows in two partitions differ)
        number = partition_info["number"] if partition_info else 0
        draws = prepared.simulate(np.random.default_rng(seed if seed is None or not number else [seed, number]))
    return interval_table(draws, part.index, ci)


def _meta_table(ci: float, index=None) -> pd.DataFrame:
    return interval_table(np.zeros((2, 0)), [] if index is None else index, ci)


def predict_frame(fit, ddf, re_form=None, kind: str = "mean", ci: float = 0.95, ndraws: int | None = None,
                  seed: int | None = None, allow_new_levels: bool = False, summary: bool = True):
    """Lazy posterior predictions for every row of a Dask DataFrame (Estimate, Est.Error, interval).

    The arguments are checked here; the rows (their values, levels and missing values)
    when the result is computed.  With ``kind="response"`` and a ``seed``, partition
    ``i > 0`` draws its noise from the stream ``[seed, i]`` (partition 0 as in-memory
    ``predict`` does, from ``seed``).

    Example
    -------
    >>> # pred = fit.predict(ddf); pred.compute()   (a dask.dataframe.DataFrame)
    """
    if not summary:
        raise HierfitError("summary=False returns every row's draws, which for a Dask DataFrame would not fit in "
                           "memory; predict a pandas DataFrame (e.g. ddf.head(n) or a sample) for the draws")
    if kind not in _KINDS:
        raise HierfitError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    check_arguments(seed=seed, ndraws=ndraws, ci=ci)
    missing = [c for c in required_columns(fit.design, re_form) if c not in ddf.columns]
    if missing:
        raise DataError(f"newdata lacks column(s) {', '.join(map(repr, missing))} that the model needs "
                        f"(it has: {', '.join(map(str, ddf.columns))})")
    return ddf.map_partitions(_predict_part, _fit_task(fit), re_form, kind, ci, ndraws, seed, bool(allow_new_levels),
                              meta=_meta_table(ci), align_dataframes=False)


def _training_frame(fit, ddf):
    used = _used(fit)
    if getattr(fit, "engine_frame", None) is None and ddf is None:
        raise HierfitError("this fit keeps statistics, not rows: pass the data again, e.g. fit.predict(ddf) "
                           "with the Dask DataFrame (or hierfit.data.sources.open_frame(path))")
    return (ddf if ddf is not None else fit.engine_frame), used


def fitted_frame(fit, re_form=None, ci: float = 0.95, ddf=None, summary: bool = True):
    """Lazy expected values of the training rows, on their index; NaN for rows with a missing value (left out
    of the fit), as ``fitted()`` of an in-memory fit and R's ``na.exclude`` give them."""
    if not summary:
        raise HierfitError("summary=False returns every row's draws, which for data held by a data engine would "
                           "not fit in memory; use fit.predict(sample) on a pandas sample of the rows for the draws")
    frame, used = _training_frame(fit, ddf)
    select_blocks(fit.design, re_form)
    check_arguments(ci=ci)
    return frame.map_partitions(_training_part, _fit_task(fit), used, re_form, ci, meta=_meta_table(ci),
                                align_dataframes=False)


def _residual_part(part: pd.DataFrame, fit, used, re_form, scaled: bool) -> pd.Series:
    complete = part[used].notna().all(axis=1).to_numpy()
    if not complete.any():
        return pd.Series(np.nan, index=part.index, dtype=float)
    rows = part[complete]
    prepared = prepare_draws(fit, rows, re_form=re_form, point=scaled)
    r = response_values(rows, fit.design, used) - prepared.expected().mean(axis=0)
    if scaled:
        r = r / np.sqrt(prepared.variance()[0])
    return _on_all_rows(pd.Series(r, index=rows.index, dtype=float), part, complete)


def residuals_frame(fit, type: str = "response", re_form=None, ddf=None):  # noqa: A002
    """Lazy residuals of the training rows, on their index: ``"response"`` (y - fitted) or ``"pearson"``
    (scaled); NaN for rows with a missing value (left out of the fit)."""
    if type not in ("response", "pearson"):
        raise HierfitError(f"residuals of engine data: type must be 'response' or 'pearson', got {type!r} "
                           "(quantile residuals simulate every row; compute them on a sample in memory)")
    frame, used = _training_frame(fit, ddf)
    select_blocks(fit.design, re_form)
    return frame.map_partitions(_residual_part, _fit_task(fit), used, re_form, type == "pearson",
                                meta=pd.Series([], dtype=float, name=f"{type} residuals"), align_dataframes=False)


def _point_fit(fit):
    """A shallow copy of the fit whose posterior is its mean (one chain, one draw): small to send to workers."""
    import copy

    import xarray as xr

    # skipna=False: numpy's reduction in place; the NaN-skipping mean would copy every draw (group effects: GBs)
    mean = fit.draws.mean(dim=("chain", "draw"), skipna=False).expand_dims(chain=[0], draw=[0])
    out = copy.copy(fit)
    out.__dict__.pop("draws", None)
    out.engine_frame = None
    out.design = worker_design(fit.design)
    out.spec = None  # the specification holds the full design again; prepare_draws reads the design
    out.cache = {}
    out._summaries = {}
    out.posterior = xr.DataTree.from_dict({"posterior": mean})
    return out


#: Scaled residuals are binned on [-RES_RANGE, RES_RANGE] for the quartiles (bin width 2 * RES_RANGE / RES_BINS).
RES_RANGE, RES_BINS = 10.0, 1 << 18


def _scaled_residuals(rows: pd.DataFrame, fit, coder, used: list[str]) -> np.ndarray:
    """Scaled residuals of complete rows at the posterior means, through :func:`prepare_draws` as coded rows.

    The rows are coded as in the grouped pass (numpy where the design is simple, formulaic otherwise).
    """
    fallback = partial(formulaic_code, design=fit.design, used=used)
    raw = coder.raw_columns(rows, fallback) if coder is not None else None
    if raw is not None:  # raw columns: the linear predictor in compiled sweeps, no design matrices
        V, C, index = raw
        y, X, Z = V[0], RawRows(V, C, coder), range(len(index))
    else:
        y, X, Z, index = coder.code(rows, fallback) if coder is not None else fallback(rows)
    coded = {"mu": {"X": X, "blocks": [(z, i, None) for z, i in zip(Z, index)], "offset": None}}
    prepared = prepare_draws(fit, coded=coded, point=True)
    r = y - prepared.expected()[0]  # y and eta both without the offset
    var = prepared.variance()[0]
    r /= np.sqrt(var[0]) if var.strides == (0,) else np.sqrt(var)  # one sigma for every row: one square root
    return r


def _residual_hist_part(part: pd.DataFrame, fit, coder, used: list[str]) -> dict:
    """Histogram, min and max of one partition's scaled residuals at the posterior means, a block of rows at a time."""
    heap_allocations()  # until the pass is over (hierfit.data.allocation)
    part = complete_rows(part[used])
    out = {"hist": np.zeros(RES_BINS), "min": np.inf, "max": -np.inf}
    block = passes.BLOCK_ROWS
    for start in range(0, len(part), block):
        r = _scaled_residuals(part.iloc[start:start + block], fit, coder, used)
        add_histogram(r, -RES_RANGE, 2 * RES_RANGE, out["hist"])  # the grouped pass's compiled binning
        out["min"], out["max"] = min(out["min"], float(r.min())), max(out["max"], float(r.max()))
    return out


def _add_hist(*parts: dict) -> dict:
    hist = parts[0]["hist"].copy()
    for p in parts[1:]:
        hist += p["hist"]  # counts: exact in any order
    return {"hist": hist, "min": min(p["min"] for p in parts), "max": max(p["max"] for p in parts)}


def residual_quantiles(fit, ddf, split_every: int = 8) -> dict[str, float]:
    """Min, quartiles and max of the scaled residuals at the posterior means, from one pass.

    Min and max are exact; the quartiles are R's type 7, from a histogram of 2^18 bins on
    [-10, 10] (each order statistic exact to 1e-4), summed over the partitions in a tree.
    """
    used = _used(fit)
    point = _point_fit(fit)
    tot = run_pass(_residual_hist_part, ddf, used, (point, fast_coder(point.design, used), used), _add_hist,
                   split_every, exact=True)  # fast_coder None: formulaic codes; counts, min, max: exact in any order
    width = 2 * RES_RANGE / RES_BINS
    mid = [float(np.clip(histogram_quantile(tot["hist"], -RES_RANGE, width, p), tot["min"], tot["max"]))
           for p in (0.25, 0.5, 0.75)]
    return dict(zip(_QUANTILES, [tot["min"], *mid, tot["max"]]))
