"""The grouped pass: the collapsed model's sufficient statistics, summed per level by the workers.

Each partition is re-coded with the frozen design (the same specs that
``predict(newdata)`` uses), and the products of its design columns are summed per
inner level: with ``W = [1, X, Z, y - offset]`` the partition contributes
``W_i W_i'`` to its row's level, plus a histogram of the response for the default
priors.  Partial sums are added in a tree, so the process that samples receives
O(levels * (1 + p + q + 1)^2) numbers however many rows there are.
"""

from __future__ import annotations

import os
import socket
from functools import partial

import numpy as np
import pandas as pd

from hierfit.data.allocation import heap_allocations
from hierfit.data.coding import complete_rows, fast_coder
from hierfit.data import passes
from hierfit.data.passes import run_pass
from hierfit.errors import DataError
from hierfit.spec.design import FORMULA_CONTEXT
from hierfit.families import ResponseSummary
from hierfit.spec.layout import SufficientStats

__all__ = ["StatsPlan", "partition_stats", "response_values", "grouped_stats", "worker_design", "histogram_quantile",
           "HIST_BINS"]

#: Bins of the response histogram that gives the prior's median and MAD (error below range / HIST_BINS).
HIST_BINS = 1 << 16


def worker_design(design):
    """A copy of ``design`` without its rows and statistics: what a worker needs to re-code partitions.

    The design of a fit from engine data holds placeholder rows (its skeleton frame, X, Z)
    and the per-level statistics, megabytes for many levels; the frozen coding (specs,
    levels, categories) is all the passes use, and it is what every worker receives.

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> small = worker_design(d)
    >>> small.X.shape, small.blocks[0].n_levels, d.X.shape
    ((0, 2), 65, (4059, 2))
    """
    import copy
    import dataclasses

    def empty(a):
        return None if a is None else a[:0]

    out = copy.copy(design)
    out.predictors = {}
    for dp, pred in design.predictors.items():
        small = copy.copy(pred)
        small.X, small.offset = empty(pred.X), empty(pred.offset)
        small.blocks = [dataclasses.replace(b, index=b.index[:0], Z=b.Z[:0]) for b in pred.blocks]
        out.predictors[dp] = small
    out.y, out.trials, out.offset_values, out.used_rows = empty(design.y), empty(design.trials), None, None
    out.frame = None if design.frame is None else design.frame.iloc[:0]
    out.summary = None
    return out


class StatsPlan:
    """What a worker needs to turn a partition into statistics (the frozen design, no rows)."""

    def __init__(self, design, layout, used: list[str], y_range: tuple[float, float] | None):
        self.design = design = worker_design(design)
        self.used = used
        self.y_range = y_range
        K = len(layout.order)
        self.position = np.empty(K, dtype=np.int64)
        self.position[layout.order] = np.arange(K)
        self.keys = [b.key for b in layout.outer + layout.inner]
        self.inner_key = (layout.inner or layout.outer)[0].key
        self.k = 1 + design.X.shape[1] + sum(b.n_coefs for b in layout.outer + layout.inner) + 1
        self.coder = fast_coder(design, used)  # numpy re-coding of simple designs; None: formulaic
        self.fused = None
        recipes = None
        if self.coder is not None:  # the recipes of W's columns, for the compiled sweep
            keys = [b.key for b in design.mu.blocks]
            recipes = [(), *self.coder.x_recipes,
                       *(r for key in self.keys for r in self.coder.z_recipes[keys.index(key)]),
                       (("y", self.coder.response, None),)]
            self.fused = self.coder.encode(list(dict.fromkeys(recipes)))
        # the sums are kept for W's distinct columns (those of one recipe are equal), the upper triangle of each level
        recipes = recipes or list(range(self.k))
        distinct = list(dict.fromkeys(recipes))
        self.where = np.array([distinct.index(r) for r in recipes], dtype=np.int64)  # W's column -> kept column
        self.stored = np.array([recipes.index(r) for r in distinct], dtype=np.int64)  # kept column -> W's column
        self.pairs = len(distinct) * (len(distinct) + 1) // 2
        self.gather = None if np.array_equal(self.position, np.arange(K)) else self.position

    def cross(self, packed: np.ndarray) -> np.ndarray:
        """The ``(levels, k, k)`` sums of ``W_i W_i'`` from the kept upper triangles of W's distinct columns."""
        from hierfit.data.accumulate import unpack_cross

        return unpack_cross(packed, len(self.stored))[:, self.where][:, :, self.where]


def _worker_id() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"local:{socket.gethostname()}:{os.getpid()}"


def response_values(part: pd.DataFrame, design, used: list[str]) -> np.ndarray:
    """The response of a partition's complete rows (the training coding), as floats."""
    from formulaic import model_matrix

    part = part[used].dropna()
    col = design.response.strip().strip("`")
    if col in part.columns:
        return np.asarray(part[col], dtype=float)
    mm = model_matrix("0 + " + design.response, design.prepare(part, finite=False), context=FORMULA_CONTEXT,
                      na_action="ignore")
    return np.asarray(mm, dtype=float)[:, 0]


def formulaic_code(part: pd.DataFrame, design, used: list[str]) -> tuple:
    """``(y, X, [Z per block], [level index per block])`` of complete rows, re-coded by formulaic.

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> exam = hierfit.datasets.load("exam")
    >>> d = build_design("normexam ~ standLRT + (1 | school)", exam)
    >>> y, X, Z, index = formulaic_code(exam.head(3), d, ["normexam", "standLRT", "school"])
    >>> X.shape, Z[0].shape, index[0].tolist()
    ((3, 2), (3, 1), [0, 0, 0])
    """
    with np.errstate(all="ignore"):  # non-finite values are counted by the pass, which names the columns
        rec = design.mu.recode(design.prepare(part, finite=False))  # infinite values: counted by the pass
        y = response_values(part, design, used)
    if rec["offset"] is not None:
        y = y - rec["offset"]
    return y, rec["X"], [b[0] for b in rec["blocks"]], [b[1] for b in rec["blocks"]]


def _distinct(columns: list[np.ndarray]) -> tuple[list[int], list[int]]:
    """Positions of the distinct columns, and for every column the index of its equal among them."""
    keep: list[int] = []
    where: list[int] = []
    for j, col in enumerate(columns):
        for u, i in enumerate(keep):
            other = columns[i]
            if np.array_equal(other[:64], col[:64]) and np.array_equal(other, col):
                where.append(u)
                break
        else:
            where.append(len(keep))
            keep.append(j)
    return keep, where


def _seen_levels(index: list[np.ndarray], design) -> None:
    """Refuse rows whose level the metadata pass did not see (index -1): the data changed between the passes."""
    for idx, blk in zip(index, design.mu.blocks):
        if len(idx) and idx.min() < 0:
            raise DataError(f"{int((idx < 0).sum())} row(s) of a partition have a level of "
                            f"{':'.join(map(repr, blk.factors))} that the metadata pass had not seen: "
                            "the data changed between the passes; fit again")


def _add_response(y: np.ndarray, plan: StatsPlan, out: dict) -> None:
    from hierfit.data.accumulate import add_histogram, add_sums

    if plan.y_range is not None:
        lo, hi = plan.y_range
        add_histogram(y, float(lo), max(hi - lo, 1e-300), out["hist"])
    add_sums(y, out["sums"])  # in row order: the same in blocks as at once


def _swept_stats(part: pd.DataFrame, plan: StatsPlan, out: dict) -> np.ndarray | None:
    """Numpy's coding and the compiled sweep, ``passes.BLOCK_ROWS`` rows at a time into the same sums.

    The blocks add their rows to the same upper triangles in row order, so the sums are
    those of one sweep, bit for bit.  Returns the non-finite counts of W's columns, or None
    when numpy does not code a block (the caller starts again with formulaic).
    """
    from hierfit.data.accumulate import coded_cross

    d = plan.design
    fallback = partial(formulaic_code, design=d, used=plan.used)
    inner = [b.key for b in d.mu.blocks].index(plan.inner_key)
    num_ref, ind_ref = plan.fused
    bad = np.zeros(len(plan.stored), dtype=np.int64)
    block = passes.BLOCK_ROWS
    for start in range(0, len(part), block):
        raw = plan.coder.raw_columns(part.iloc[start:start + block], fallback)
        if raw is None:
            return None
        V, C, index = raw
        _seen_levels(index, d)
        idx = index[inner] if plan.gather is None else plan.gather[index[inner]]
        coded_cross(V, C, idx, num_ref, ind_ref, out["packed"], bad)
        _add_response(V[0], plan, out)  # the response (no offset: numpy does not code one)
    return bad[plan.where]


def _materialised_stats(part: pd.DataFrame, plan: StatsPlan, out: dict) -> np.ndarray:
    """The sums from the design matrices (formulaic's coding, or numpy's :meth:`FastCoder.code`); non-finite counts."""
    from hierfit.data.accumulate import add_cross, count_nonfinite

    d = plan.design
    fallback = partial(formulaic_code, design=d, used=plan.used)
    yo, X, Z_all, index = fallback(part) if plan.coder is None else plan.coder.code(part, fallback)
    _seen_levels(index, d)
    keys = [b.key for b in d.mu.blocks]
    Z = [Z_all[keys.index(key)] for key in plan.keys]
    idx = plan.position[index[keys.index(plan.inner_key)]]
    columns = [np.ones(len(yo)), *X.T, *(c for z in Z for c in z.T), yo]  # W = [1, X, Z, y - offset]
    keep, where = _distinct(columns)
    U = np.empty((len(yo), len(keep)))  # the distinct columns of W (the intercept and slopes appear in X and Z)
    for u, j in enumerate(keep):
        U[:, u] = columns[j]
    bad = count_nonfinite(U)[where]
    if bad.any():
        return bad
    cross_u = np.zeros((len(plan.position), len(keep), len(keep)))
    add_cross(idx, U, cross_u)
    kept = np.asarray(where)[plan.stored]  # kept column -> column of U
    a, c = np.triu_indices(len(kept))
    out["packed"] += cross_u[:, kept[a], kept[c]]  # zeros plus the sums: the sums
    _add_response(np.asarray(response_values(part, d, plan.used) if d.mu.offset_specs else yo, dtype=float),
                  plan, out)  # the response, not y - offset
    return bad


def _empty_stats(plan: StatsPlan) -> dict:
    return {"packed": np.zeros((len(plan.position), plan.pairs)), "hist": np.zeros(HIST_BINS), "rows": 0,
            "sums": np.zeros(2), "workers": {_worker_id()}, "bad": {}}


def partition_stats(part: pd.DataFrame, plan: StatsPlan) -> dict:
    """Sufficient statistics of one partition (runs in a worker).

    ``packed`` holds, for every level, the upper triangle of the sums of products of W's
    distinct columns (:meth:`StatsPlan.cross` makes the matrices), ``hist`` the response's
    histogram, ``bad`` the rows where a column of W is not finite.
    """
    heap_allocations()  # until the pass is over (hierfit.data.allocation)
    out = _empty_stats(plan)
    part = complete_rows(part[plan.used])
    if not len(part):
        return out
    bad = _swept_stats(part, plan, out) if plan.coder is not None else None
    if bad is None:  # formulaic codes the partition (numpy may have given up after some blocks: start again)
        out = _empty_stats(plan)
        bad = _materialised_stats(part, plan, out)
    if bad.any():
        out["bad"] = {int(j): int(bad[j]) for j in np.flatnonzero(bad)}
        return out
    out["rows"] = len(part)
    return out


def _add(*parts: dict) -> dict:
    out = dict(parts[0])
    out["workers"] = set(out["workers"])
    out["bad"] = dict(out["bad"])
    for p in parts[1:]:
        for key in ("packed", "hist", "rows", "sums"):
            out[key] = out.get(key, 0) + p.get(key, 0)
        out["workers"] |= p["workers"]
        for j, v in p["bad"].items():
            out["bad"][j] = out["bad"].get(j, 0) + v
    return out


def _order_statistic(hist: np.ndarray, cum: np.ndarray, k: int, lo: float, width: float) -> float:
    """The k-th smallest value (0-based), placed within its bin as if the bin's values were evenly spread."""
    b = int(np.searchsorted(cum, k + 1))
    before = cum[b - 1] if b else 0.0
    return lo + width * (b + (k - before + 0.5) / max(hist[b], 1.0))


def histogram_quantile(hist: np.ndarray, lo: float, width: float, prob: float) -> float:
    """R's default quantile (type 7, numpy's "linear") of the values a histogram counts, to one bin width.

    The order statistics at positions floor(h) and floor(h) + 1, h = (n - 1) prob, are
    found in the histogram and interpolated, as ``quantile()`` interpolates the sorted
    values: the median of an even number of values is the mean of the two middle ones,
    however far apart they are.

    Example
    -------
    >>> hist = np.zeros(10); hist[[4, 5]] = 20  # 20 values in [4, 5) and 20 in [5, 6)
    >>> float(histogram_quantile(hist, 0.0, 1.0, 0.5))  # the mean of the two middle values, as numpy
    5.0
    """
    cum = np.cumsum(hist)
    h = (cum[-1] - 1) * prob
    k = int(np.floor(h))
    a = _order_statistic(hist, cum, k, lo, width)
    if h == k or k + 1 >= cum[-1]:
        return a
    return a + (h - k) * (_order_statistic(hist, cum, k + 1, lo, width) - a)


def _hist_median(hist: np.ndarray, lo: float, hi: float) -> float:
    return histogram_quantile(hist, lo, (hi - lo) / HIST_BINS, 0.5)


def _hist_mad(hist: np.ndarray, lo: float, hi: float, med: float) -> float:
    """The median absolute deviation from ``med`` (type 7), each bin's values at the bin's centre."""
    width = (hi - lo) / HIST_BINS
    centres = lo + width * (np.arange(HIST_BINS) + 0.5)
    dev = np.abs(centres - med)
    order = np.argsort(dev, kind="stable")
    counts, dev = hist[order], dev[order]
    cum = np.cumsum(counts)
    h = (cum[-1] - 1) * 0.5
    k = int(np.floor(h))
    a = float(dev[int(np.searchsorted(cum, k + 1))])
    if h == k or k + 1 >= cum[-1]:
        return a
    return a + (h - k) * (float(dev[int(np.searchsorted(cum, k + 2))]) - a)


def grouped_stats(ddf, design, layout, used: list[str], y_range, split_every: int = 8):
    """Run the grouped pass; return (SufficientStats, ResponseSummary or None, column sds, pass facts).

    ``y_range`` (min, max of the response column) enables the histogram for the prior's
    median and MAD; None skips it (the caller computes them otherwise).
    """
    plan = StatsPlan(design, layout, used, y_range)
    tot = run_pass(partition_stats, ddf, used, (plan,), _add, split_every)
    p = design.X.shape[1]
    cols = ["(constant)"] + list(design.fixed_names) + \
        [f"{b.name}: {c}" for b in layout.outer + layout.inner for c in b.coefs] + [design.response]
    if tot["bad"]:
        raise DataError("after transformation these columns contain NaN or infinite values: "
                        + ", ".join(f"'{cols[j]}' ({n} rows)" for j, n in tot["bad"].items())
                        + " (check log() of zero/negative values, or inf in the data)")
    cross = plan.cross(tot["packed"])
    q = plan.k - p - 2
    stats = SufficientStats(
        n=np.rint(cross[:, 0, 0]).astype(np.int64), yy=cross[:, -1, -1].copy(), Xy=cross[:, 1:1 + p, -1].copy(),
        XX=cross[:, 1:1 + p, 1:1 + p].copy(), Zy=cross[:, 1 + p:1 + p + q, -1].copy(),
        ZX=cross[:, 1 + p:1 + p + q, 1:1 + p].copy(), ZZ=cross[:, 1 + p:1 + p + q, 1 + p:1 + p + q].copy())
    total = cross.sum(axis=0)
    n = total[0, 0]
    sums = total[0, 1:1 + p]
    var = (np.diag(total)[1:1 + p] - sums ** 2 / n) / max(n - 1, 1)
    x_sd = {name: float(np.sqrt(max(v, 0.0))) for name, v in zip(design.fixed_names, var)}
    XX = total[1:1 + p, 1:1 + p]
    if p and np.linalg.matrix_rank(XX / np.sqrt(np.outer(np.diag(XX), np.diag(XX)) + 1e-300), tol=1e-10) < p:
        raise DataError("fixed effects are perfectly collinear in the data (lm would report NA for some of them: "
                        f"{', '.join(design.fixed_names)}); remove the aliased term(s) from the formula")
    response = None
    if y_range is not None:
        lo, hi = y_range
        med = _hist_median(tot["hist"], lo, hi)
        sy, syy = tot["sums"]
        sd = float(np.sqrt(max((syy - sy ** 2 / n) / max(n - 1, 1), 0.0)))
        response = ResponseSummary(float(med), _hist_mad(tot["hist"], lo, hi, med), sd, int(n))
    facts = {"rows": int(tot["rows"]), "workers": sorted(tot["workers"]), "npartitions": ddf.npartitions}
    return stats, response, x_sd, facts
