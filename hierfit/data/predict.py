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
from hierfit.analysis.prepare import prepare_draws
from hierfit.data.accumulate import add_histogram
from hierfit.data.coding import RawRows, complete_rows, fast_coder
from hierfit.data import passes
from hierfit.data.passes import run_pass
from hierfit.data.stats import formulaic_code, response_values, worker_design
from hierfit.errors import HierfitError
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
    d = fit.design
    return list(dict.fromkeys(t.text for t in d.formula.variables))


def _fit_task(fit):
    import dask

    return dask.delayed(fit, pure=True, traverse=False)


def _predict_part(part: pd.DataFrame, fit, re_form, kind: str, ci: float, ndraws, seed) -> pd.DataFrame:
    if not len(part):
        return _meta_table(ci)
    prepared = prepare_draws(fit, part, re_form=re_form, ndraws=ndraws, seed=seed)
    if kind == "link":
        draws = prepared.eta["mu"]
    elif kind == "mean":
        draws = prepared.expected()
    elif kind == "response":
        draws = prepared.simulate(np.random.default_rng(seed))
    else:
        raise HierfitError(f"kind must be one of link, mean, response, got {kind!r}")
    return interval_table(draws, part.index, ci)


def _meta_table(ci: float) -> pd.DataFrame:
    return interval_table(np.zeros((2, 0)), [], ci)


def predict_frame(fit, ddf, re_form=None, kind: str = "mean", ci: float = 0.95, ndraws: int | None = None,
                  seed: int | None = None):
    """Lazy posterior predictions for every row of a Dask DataFrame (Estimate, Est.Error, interval).

    Example
    -------
    >>> # pred = fit.predict(ddf); pred.compute()   (a dask.dataframe.DataFrame)
    """
    return ddf.map_partitions(_predict_part, _fit_task(fit), re_form, kind, ci, ndraws, seed,
                              meta=_meta_table(ci), align_dataframes=False)


def _complete(fit, ddf):
    used = _used(fit)
    if getattr(fit, "engine_frame", None) is None and ddf is None:
        raise HierfitError("this fit keeps statistics, not rows: pass the data again, e.g. fit.predict(ddf) "
                           "with the Dask DataFrame (or hierfit.data.sources.open_frame(path))")
    frame = ddf if ddf is not None else fit.engine_frame
    return frame.dropna(subset=used), used


def fitted_frame(fit, re_form=None, ci: float = 0.95, ddf=None):
    """Lazy expected values of the training rows (rows with missing values left out, as when fitting)."""
    frame, _ = _complete(fit, ddf)
    return predict_frame(fit, frame, re_form=re_form, kind="mean", ci=ci)


def _residual_part(part: pd.DataFrame, fit, used, re_form, scaled: bool) -> pd.Series:
    if not len(part):
        return pd.Series([], dtype=float)
    prepared = prepare_draws(fit, part, re_form=re_form, point=scaled)
    expected = prepared.expected().mean(axis=0)
    y = response_values(part, fit.design, used)
    res = y - expected
    if scaled:
        res = res / np.sqrt(prepared.variance()[0])
    return pd.Series(res, index=part.index)


def residuals_frame(fit, type: str = "response", re_form=None, ddf=None):  # noqa: A002
    """Lazy residuals of the training rows: ``"response"`` (y - fitted) or ``"pearson"`` (scaled)."""
    if type not in ("response", "pearson"):
        raise HierfitError(f"residuals of engine data: type must be 'response' or 'pearson', got {type!r} "
                           "(quantile residuals simulate every row; compute them on a sample in memory)")
    frame, used = _complete(fit, ddf)
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


def _hist_quantile(hist: np.ndarray, prob: float) -> float:
    cum = np.cumsum(hist)
    target = prob * cum[-1]
    b = int(np.searchsorted(cum, target))
    before = cum[b - 1] if b else 0.0
    width = 2 * RES_RANGE / RES_BINS
    return -RES_RANGE + width * (b + (target - before) / max(hist[b], 1.0))


def residual_quantiles(fit, ddf, split_every: int = 8) -> dict[str, float]:
    """Min, quartiles and max of the scaled residuals at the posterior means, from one pass.

    Min and max are exact; the quartiles come from a histogram of 2^18 bins on [-10, 10]
    (exact to 1e-4), summed over the partitions in a tree like the statistics.
    """
    used = _used(fit)
    point = _point_fit(fit)
    tot = run_pass(_residual_hist_part, ddf, used, (point, fast_coder(point.design, used), used), _add_hist,
                   split_every, exact=True)  # fast_coder None: formulaic codes; counts, min, max: exact in any order
    mid = [float(np.clip(_hist_quantile(tot["hist"], p), tot["min"], tot["max"])) for p in (0.25, 0.5, 0.75)]
    return dict(zip(_QUANTILES, [tot["min"], *mid, tot["max"]]))
