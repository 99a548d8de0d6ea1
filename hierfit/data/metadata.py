"""The metadata pass: what the design needs from data held by Dask, without loading the rows.

One ``dask.compute`` over the columns the formula uses gives the row count, the
missing values per column, the levels of every factor (R's order: sorted unique
values for strings, the categories' order for categoricals), min/max/mean/sd of
numeric columns (for ``scale()`` and ``center()``) and the distinct combinations of
the grouping columns.  :func:`skeleton_frame` turns that into a small pandas frame
with every level and category, from which :func:`hierfit.spec.design.build_design`
builds the frozen design (names, levels, re-coding specs); the rows themselves are
only ever seen by the workers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hierfit.data.accumulate import column_moments, mark_seen
from hierfit.data.allocation import heap_allocations
from hierfit.data.coding import complete_rows
from hierfit.data.passes import run_pass
from hierfit.errors import DataError, DataWarning, FormulaError, HierfitError, warn
from hierfit.spec.columns import columns_inside
from hierfit.spec.design import check_columns, check_dtypes, r_sort

__all__ = ["Metadata", "formula_columns", "scan_metadata", "skeleton_frame", "fix_stateful_transforms", "has_stateful_transforms",
           "STATEFUL_OK"]

#: Stateful formula transforms whose state the metadata pass computes exactly.
STATEFUL_OK = ("scale", "center")


@dataclass
class Metadata:
    """Result of the metadata pass (plain data)."""

    nrows: int
    used: list[str]
    group_cols: list[str]
    na_by_column: dict[str, int]
    n_dropped: int
    levels: dict[str, list] = field(default_factory=dict)  # categorical columns -> levels in R's order
    bools: list[str] = field(default_factory=list)
    numeric: dict[str, dict[str, float]] = field(default_factory=dict)  # min, max, mean, sd (complete rows)
    combos: pd.DataFrame | None = None  # distinct grouping-column combinations (complete rows)
    dtypes: dict[str, str] = field(default_factory=dict)
    distinct: dict[str, np.ndarray] = field(default_factory=dict)  # numeric columns used as factors (C(x)): values


def _is_categorical(dtype) -> bool:
    return isinstance(dtype, pd.CategoricalDtype) or dtype == object or pd.api.types.is_string_dtype(dtype)


def _validate_columns(meta: pd.DataFrame) -> None:
    bad = [c for c in meta.columns if not isinstance(c, str)]
    if bad:
        raise DataError(f"column names must be strings; got {', '.join(repr(c) for c in bad[:5])}")
    dup = meta.columns[meta.columns.duplicated()].unique().tolist()
    if dup:
        raise DataError(f"duplicated column name(s): {', '.join(map(repr, dup))}")


@dataclass
class _PassSpec:
    used: list[str]
    num_cols: list[str]
    cat_cols: list[str]
    float_groups: list[str]
    group_cols: list[str]
    distinct_cols: list[str] = field(default_factory=list)


def _partition_metadata(part: pd.DataFrame, spec: _PassSpec) -> dict:
    """What one partition tells about its columns (runs in a worker); :func:`_combine` adds these up."""
    heap_allocations()  # until the pass is over (hierfit.data.allocation)
    part = part[spec.used]
    clean = complete_rows(part)  # the partition itself when no row has a missing value
    na_counts = dict.fromkeys(spec.used, 0) if clean is part else part.isna().sum().to_dict()
    moments = {}
    for c in spec.num_cols:
        x = clean[c].to_numpy()
        if x.dtype.kind not in "iuf" or x.dtype.itemsize < 4:  # nullable, float16, small ints: numpy's way
            x = np.asarray(x, dtype=float)
        moments[c] = column_moments(x)
    present, categories = {}, {}
    for c in spec.cat_cols:
        s = clean[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            categories[c] = list(s.cat.categories)
            seen = np.zeros(len(categories[c]) + 1, dtype=bool)  # code -1 (missing) marks seen[0]
            mark_seen(s.array.codes, -1, seen)
            present[c] = {categories[c][i] for i in np.flatnonzero(seen[1:])}
        else:
            present[c] = set(pd.unique(s.to_numpy()))
            categories[c] = []
    return {"nrows": len(part), "na": na_counts, "dropped": len(part) - len(clean), "moments": moments,
            "present": present, "categories": categories,
            "nonint": {c: int((clean[c] % 1 != 0).sum()) for c in spec.float_groups},
            "distinct": {c: np.unique(clean[c].to_numpy()) for c in spec.distinct_cols},
            "combos": _distinct_groups(clean, spec.group_cols) if spec.group_cols else None}


def _distinct_groups(clean: pd.DataFrame, group_cols: list[str]) -> pd.DataFrame:
    """The distinct combinations of the grouping columns; one integer column by a table of its (exact) range."""
    if len(group_cols) == 1 and len(clean):
        col = group_cols[0]
        v = clean[col].to_numpy()
        if v.dtype.kind in "iu":
            lo, hi = int(v.min()), int(v.max())  # exact integers (the float moments round ids beyond 2**53)
            if hi - lo < 4 * len(v) + 65536 and hi < 2**63:
                seen = np.zeros(hi - lo + 1, dtype=bool)
                mark_seen(v, lo, seen)
                return pd.DataFrame({col: (np.flatnonzero(seen) + lo).astype(v.dtype)})
    return clean[group_cols].drop_duplicates()


def _merge_moments(a: tuple, b: tuple) -> tuple:
    """Count, min, max, mean and sum of squared deviations of two parts together (Chan et al.'s update)."""
    na_, lo_a, hi_a, mean_a, m2_a = a
    nb, lo_b, hi_b, mean_b, m2_b = b
    n = na_ + nb
    if not na_ or not nb:
        return a if nb == 0 else b
    delta = mean_b - mean_a
    return n, min(lo_a, lo_b), max(hi_a, hi_b), mean_a + delta * nb / n, m2_a + m2_b + delta * delta * na_ * nb / n


def _combine(*parts: dict) -> dict:
    out = {"nrows": 0, "na": {}, "dropped": 0, "moments": {}, "present": {}, "categories": {}, "nonint": {},
           "combos": None, "distinct": {}}
    frames = []
    for p in parts:
        out["nrows"] += p["nrows"]
        out["dropped"] += p["dropped"]
        for c, v in p["na"].items():
            out["na"][c] = out["na"].get(c, 0) + int(v)
        for c, m in p["moments"].items():
            out["moments"][c] = _merge_moments(out["moments"][c], m) if c in out["moments"] else m
        for c, v in p["present"].items():
            out["present"][c] = out["present"].get(c, set()) | v
        for c, cats in p["categories"].items():  # categories in order of first appearance, as pandas unites them
            known = out["categories"].setdefault(c, [])
            seen = set(known)
            known.extend(v for v in cats if v not in seen)
        for c, v in p["nonint"].items():
            out["nonint"][c] = out["nonint"].get(c, 0) + v
        for c, v in p.get("distinct", {}).items():
            out["distinct"][c] = np.union1d(out["distinct"][c], v) if c in out["distinct"] else v
        if p["combos"] is not None:
            frames.append(p["combos"])
    if frames:
        out["combos"] = pd.concat(frames).drop_duplicates() if len(frames) > 1 else frames[0]
    return out


def formula_columns(formulas) -> list[str]:
    """The data columns the formulas use, in order of first use.

    Example
    -------
    >>> from hierfit.spec.formula import parse_formula
    >>> formula_columns([parse_formula("y ~ x + (x | g)")])
    ['y', 'x', 'g']
    """
    return list(dict.fromkeys(t.text for f in formulas for t in f.variables))


def scan_metadata(ddf, formulas, response_cols: set[str], split_every: int = 8) -> Metadata:
    """Run the metadata pass over the columns the formulas use; raise or warn as :func:`build_design` would.

    One task per partition computes counts, moments, levels and grouping combinations
    with numpy/pandas, and the partial results are added in a tree (Chan's update for
    the moments), so the pass costs about one read of the columns.

    Example
    -------
    >>> import dask.dataframe as dd, hierfit
    >>> from hierfit.spec.formula import parse_formula
    >>> ddf = dd.from_pandas(hierfit.datasets.load("exam"), npartitions=2)
    >>> md = scan_metadata(ddf, [parse_formula("normexam ~ standLRT + sex + (1 | school)")], {"normexam"})
    >>> md.nrows, md.levels["sex"]
    (4059, ['F', 'M'])
    """
    meta = ddf._meta if hasattr(ddf, "_meta") else ddf.head(0)
    _validate_columns(meta)
    for f in formulas:
        check_columns(f, meta)
    used = formula_columns(formulas)
    group_cols = list(dict.fromkeys(c for f in formulas for c in f.group_factors))
    cat_cols = [c for c in used if _is_categorical(meta[c].dtype)]
    bool_cols = [c for c in used if meta[c].dtype == bool]
    num_cols = [c for c in used if c not in cat_cols and c not in bool_cols
                and pd.api.types.is_numeric_dtype(meta[c].dtype) and meta[c].dtype.kind != "c"]
    check_dtypes(meta, [c for c in used if c not in cat_cols and c not in bool_cols and
                        (c not in group_cols or c in response_cols)])
    float_groups = [c for c in group_cols if pd.api.types.is_float_dtype(meta[c].dtype)]
    # numeric columns coded as factors (C(dose)): their exact values, the factor's levels
    factors = columns_inside(formulas, "C")
    spec = _PassSpec(used, num_cols, cat_cols, float_groups, group_cols, [c for c in num_cols if c in factors])
    values = run_pass(_partition_metadata, ddf, used, (spec,), _combine, split_every)
    nrows = int(values["nrows"])
    if nrows == 0:
        raise DataError("data is empty (0 rows)")
    na = {c: int(values["na"][c]) for c in used if int(values["na"][c])}
    n_drop = int(values["dropped"])
    if n_drop == nrows:
        raise DataError(f"all {nrows} rows have a missing value in a column the formula uses "
                        f"({', '.join(f'{c}: {n} NA' for c, n in na.items())})")
    if n_drop:
        detail = ", ".join(f"{c}: {n}" for c, n in na.items())
        warn(f"dropped {n_drop} of {nrows} row(s) with missing values ({detail}), like R's na.omit", DataWarning)
    for c in float_groups:
        if int(values["nonint"][c]):
            f = next(f for f in formulas if c in f.group_factors)
            tok = next(t for t in f.variables if t.text == c)
            raise FormulaError(f"grouping variable '{c}' holds {int(values['nonint'][c])} non-integer number(s); "
                               "group ids must be labels or integers", f.text, tok.pos, tok.end - tok.pos)
    levels = {}
    for c in cat_cols:
        present = values["present"][c]
        if isinstance(meta[c].dtype, pd.CategoricalDtype):
            levels[c] = [v for v in values["categories"][c] if v in present]
        else:
            levels[c] = r_sort(list(present))
    numeric = {}
    for c in num_cols:
        n, lo, hi, mean, m2 = values["moments"][c]
        sd = float(np.sqrt(m2 / (n - 1))) if n > 1 else float("nan")
        numeric[c] = {"min": float(lo) if n else float("nan"), "max": float(hi) if n else float("nan"),
                      "mean": float(mean) if n else float("nan"), "sd": sd}
    return Metadata(nrows=nrows, used=used, group_cols=group_cols, na_by_column=na, n_dropped=n_drop,
                    levels=levels, bools=bool_cols, numeric=numeric, combos=values["combos"],
                    dtypes={c: str(meta[c].dtype) for c in used}, distinct=dict(values["distinct"]))


def skeleton_frame(md: Metadata, meta: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A small pandas frame with every grouping combination, level and category, and numeric values in range.

    The design built from it has the real names, levels and re-coding specs; its rows
    are placeholders (the statistics of the real rows come from the engine).
    """
    rng = np.random.default_rng(seed)
    reps = max(4, 2 + len(md.used))
    if md.combos is not None and len(md.combos):
        base = md.combos.reset_index(drop=True)
        frame = base.loc[np.repeat(np.arange(len(base)), reps)].reset_index(drop=True)
    else:
        frame = pd.DataFrame(index=pd.RangeIndex(reps))
    n = max(len(frame), max((len(v) for v in [*md.levels.values(), *md.distinct.values()]), default=0), 8)
    if len(frame) < n:
        frame = frame.loc[np.resize(np.arange(len(frame)), n)].reset_index(drop=True) if len(frame.columns) \
            else pd.DataFrame(index=pd.RangeIndex(n))
    for c in md.used:
        if c in frame.columns:
            continue
        dtype = meta[c].dtype
        if c in md.levels:
            levs = md.levels[c]
            vals = [levs[i % len(levs)] for i in rng.permutation(n)]
            frame[c] = pd.Categorical(vals, categories=levs) if isinstance(dtype, pd.CategoricalDtype) \
                else pd.Series(vals, dtype=object)
        elif c in md.bools:
            frame[c] = (rng.permutation(n) % 2).astype(bool)
        elif c in md.distinct:  # a numeric factor: every value the rows hold, in the column's own type
            vals = np.asarray(md.distinct[c])
            frame[c] = pd.Series(vals[rng.permutation(n) % len(vals)]).astype(dtype if dtype.kind in "iuf" else float)
        else:
            lo, hi = md.numeric[c]["min"], md.numeric[c]["max"]
            finite = [v for v in (lo, hi) if np.isfinite(v)]  # +-inf in the data: placeholders between finite ends
            a, b = (min(finite), max(finite)) if finite else (0.0, 1.0)
            if dtype.kind in "iu":
                vals = np.array([a + (b - a) * k / max(n - 1, 1) for k in rng.permutation(n)], dtype=float).round()
            else:
                vals = rng.uniform(a, b, size=n)
            vals[0], vals[-1] = lo, hi
            frame[c] = vals
    return frame


_STATE_KEY = re.compile(r"^(\w+)\((.*)\)$")


def _coding_specs(design):
    """Every formulaic model spec of the design: fixed parts, group terms' columns, offsets."""
    for pred in design.predictors.values():
        yield from (pred.fixed_spec, *pred.slope_specs, *pred.offset_specs)


def has_stateful_transforms(design) -> bool:
    """True when a formula term of the design learned its coding from the rows (``scale(x)``, ``center(x)``).

    Example
    -------
    >>> import hierfit
    >>> exam = hierfit.datasets.load("exam")
    >>> has_stateful_transforms(hierfit.build_design("normexam ~ scale(standLRT) + (1 | school)", exam))
    True
    """
    return any(getattr(spec, "transform_state", None) for spec in _coding_specs(design))


def fix_stateful_transforms(design, md: Metadata) -> None:
    """Give ``scale(col)``/``center(col)`` the moments of the real rows; refuse other stateful transforms."""
    for spec in _coding_specs(design):
        for key, state in getattr(spec, "transform_state", {}).items():
            m = _STATE_KEY.match(str(key))
            fn, arg = (m.group(1), m.group(2).strip().strip("`")) if m else (str(key), "")
            if fn not in STATEFUL_OK or arg not in md.numeric:
                raise HierfitError(
                    f"the formula term {key} learns its coding from all rows; data read through a data engine "
                    f"supports only {', '.join(f'{s}(column)' for s in STATEFUL_OK)} of this kind; fit it "
                    "from an in-memory pandas DataFrame, or compute the column beforehand")
            if "center" in state and state["center"] is not None:
                state["center"] = np.float64(md.numeric[arg]["mean"])
            if state.get("scale") is not None:
                state["scale"] = np.float64(md.numeric[arg]["sd"])
