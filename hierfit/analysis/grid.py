"""Rows to ask questions about: the fitted rows rebuilt from the design, and reference grids.

* :func:`model_frame`: the columns prediction needs, for every row the fit used,
  rebuilt from the design (model-matrix columns, factors from their indicator
  columns, grouping columns from the group levels, plain offset and trials columns).
  A column that enters the model only through a transformation (``log(x)``) cannot
  be rebuilt: pass the data the model was fitted to instead.
* :func:`datagrid`: marginaleffects' ``datagrid``: numeric predictors at their mean,
  factors at their reference (first) level, unless given; lists give every combination.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from hierfit.analysis.prepare import NA, required_columns
from hierfit.errors import DataError, HierfitError

__all__ = ["model_frame", "fitted_column", "datagrid", "group_columns", "numeric_columns", "factor_columns",
           "check_predictors"]


def group_columns(design) -> list[str]:
    """Grouping columns of the group terms (``school``), in formula order."""
    return list(dict.fromkeys(f for b in design.all_blocks for f in b.factors))


def factor_columns(design) -> list[str]:
    """Predictors that are factors (with their levels in ``design.categories``)."""
    return [c for c in required_columns(design, NA) if c in design.categories]


def numeric_columns(design) -> list[str]:
    """Numeric predictors of the fixed part, offsets and trials."""
    return [c for c in required_columns(design, NA) if c not in design.categories]


def check_predictors(design, names, noun: str = "variable", where: str = "") -> None:
    """HierfitError naming every one of ``names`` that is not a predictor of the model (factor or numeric).

    Example
    -------
    >>> check_predictors(fit.design, ["standLRT", "height"])  # doctest: +SKIP
    HierfitError: unknown variable(s) 'height'; the model's predictors are sex, standLRT
    """
    known = factor_columns(design) + numeric_columns(design)
    unknown = [v for v in names if v not in known]
    if unknown:
        raise HierfitError(f"unknown {noun}(s) {', '.join(map(repr, unknown))}{where}; the model's predictors are "
                           f"{', '.join(known) or 'none'}")


def _factor_from_indicators(design, var: str):
    cats = [str(c) for c in design.categories[var]]
    for pred in design.predictors.values():
        names = pred.fixed_names
        cols = [f"{var}{lev}" for lev in cats[1:]]
        if all(c in names for c in cols):
            out = np.full(len(design.y), cats[0], dtype=object)
            for lev, c in zip(cats[1:], cols):
                out[pred.X[:, names.index(c)] == 1.0] = lev
            return pd.Categorical(out, categories=cats)
    return None


def _offset_is(design, var: str) -> bool:
    """True when an offset is the column ``var`` itself (``offset(z)``, ``offset="z"``): held at the column's mean."""
    return design.offset_arg == var or any(p.formula.offsets == (var,) for p in design.predictors.values())


def _numeric_column(design, var: str):
    for pred in design.predictors.values():
        if var in pred.fixed_names:
            return pred.X[:, pred.fixed_names.index(var)]
        for blk in pred.blocks:
            if var in blk.columns:
                return blk.Z[:, blk.columns.index(var)]
        if pred.offset is not None and len(pred.offset_specs) == 1 and pred.formula.offsets == (var,):
            return pred.offset
        if pred.offset is not None and len(pred.offset_specs) == 1 and design.offset_arg == var:
            return pred.offset
    if design.trials is not None and design.formula.trials == var:
        return design.trials
    return None


def _offset_only_columns(design) -> set[str]:
    """Columns used only by offsets (not by the fixed part, group terms or trials)."""
    offset_cols = {c for p in design.predictors.values() for spec in p.offset_specs for c in spec.required_variables}
    other = set()
    for p in design.predictors.values():
        if p.fixed_columns:
            other |= set(p.fixed_spec.required_variables)
        for blk in p.blocks:
            other |= set(p.slope_specs[blk.spec_index].required_variables)
    if design.trials_spec is not None:
        other |= set(design.trials_spec.required_variables)
    return offset_cols - other


def _aggregated(design):
    """For a fit to rows aggregated into counts: (numeric columns at their mean over the original rows, each
    pattern's number of rows); for other fits ({}, None)."""
    if design.aggregation is None:
        return {}, None
    from hierfit.data.counts import grid_values

    return grid_values(design), np.asarray(design.aggregation["rows"], dtype=float)


def fitted_column(fit, var: str) -> np.ndarray | None:
    """The values of a numeric predictor ``var`` over the fitted rows, rebuilt from the design; None when it
    enters only through a transformation (or the rows stayed in a data engine).

    Example
    -------
    >>> fitted_column(fit, "standLRT")[:3]  # doctest: +SKIP
    array([ 0.619, 0.206, -1.364])
    """
    d = fit.design
    return _numeric_column(d, var) if d.rows_held and var not in d.categories else None


def model_frame(fit, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """The columns prediction needs, for every row the fit used (rebuilt from the design).

    With ``data`` (the data frame the model was fitted to) its rows without missing
    model values are used instead, which also works for transformed predictors.  A fit
    to rows aggregated into counts gives one row per pattern (with its rows' mean
    trials); a Gaussian fit to data that stayed in a data engine has no rows to give.

    Example
    -------
    >>> mf = model_frame(fit)  # doctest: +SKIP
    >>> list(mf.columns)  # doctest: +SKIP
    ['sex', 'standLRT', 'school']
    """
    d = fit.design
    needed = required_columns(d, None)
    if data is not None:
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"newdata must be a pandas DataFrame, got {type(data).__name__}")
        return data
    if d.aggregation is not None:  # rows aggregated into counts: one row per pattern
        from hierfit.data.counts import pattern_rows

        return pattern_rows(d)[0]
    if not d.rows_held:
        raise DataError(f"the model was fitted to data read through a data engine ({d.summary.source}), whose "
                        f"{d.summary.nobs} rows are not held in memory; pass newdata= (a pandas DataFrame: e.g. "
                        "a sample of the data, or a grid from hierfit.datagrid(fit, ...))")
    out = {}
    groups = {}
    for blk in d.all_blocks:
        labels = np.asarray(blk.levels, dtype=object)[blk.index]
        if len(blk.factors) == 1:
            groups.setdefault(blk.factors[0], pd.Categorical(labels, categories=list(blk.levels)))
        else:
            parts = [str(lab).split(":") for lab in labels]
            for i, f in enumerate(blk.factors):
                groups.setdefault(f, np.array([p[i] for p in parts], dtype=object))
    for col in needed:
        if col in groups:
            out[col] = groups[col]
            continue
        values = _factor_from_indicators(d, col) if col in d.categories else _numeric_column(d, col)
        if values is None:
            raise DataError(f"cannot rebuild column {col!r} from the fitted model (it enters the model through a "
                            f"transformation or an interaction only); pass newdata= (the data the model was "
                            f"fitted to)")
        out[col] = values
    return pd.DataFrame(out)


def datagrid(fit, newdata: pd.DataFrame | None = None, **values) -> pd.DataFrame:
    """A reference grid (marginaleffects' ``datagrid``): one row per combination of the given values.

    Predictors not named are held at typical values: numeric ones at their mean over
    the fitted rows, factors at their reference (first) level, offsets at their mean.
    Grouping columns (``school``) appear only when named: give an existing level for
    that group's line, or any new label together with ``allow_new_levels=True``.

    Parameters
    ----------
    fit : HierFit
    newdata : DataFrame, optional
        The data the model was fitted to; needed only for predictors that enter
        the model through a transformation.
    **values
        Column -> value or list of values; ``"all"`` for every level of a factor.

    Example
    -------
    >>> import hierfit
    >>> grid = hierfit.datagrid(fit, sex=["F", "M"], standLRT=[-1, 0, 1])  # doctest: +SKIP
    >>> fit.predictions(grid, re_form=hierfit.NA)  # doctest: +SKIP
    """
    d = fit.design
    # rows aggregated into counts: means over the original rows; a grid row is one row (one trial, or its own)
    per_row, weights = _aggregated(d) if newdata is None else ({}, None)
    known = set(required_columns(d, None))
    unknown = [k for k in values if k not in known]
    if unknown:
        raise DataError(f"datagrid: unknown column(s) {', '.join(map(repr, unknown))}; the model uses "
                        f"{', '.join(sorted(known))}")
    cols = [c for c in required_columns(d, NA) if c not in values]
    offset_only = _offset_only_columns(d)
    typical = {}
    for col in cols:
        if col in d.categories:
            typical[col] = d.categories[col][0]
            continue
        if newdata is not None:
            if col not in newdata.columns:
                raise DataError(f"datagrid: newdata lacks column {col!r} that the model needs")
            typical[col] = float(pd.to_numeric(newdata[col]).mean())
            continue
        if col in per_row and col not in offset_only:
            typical[col] = per_row[col]
            continue
        moments = d.engine_moments(col)
        if moments is not None and (col not in offset_only or _offset_is(d, col)):
            typical[col] = float(moments["mean"])
            continue
        values_of = None if not d.rows_held else _numeric_column(d, col)
        if values_of is not None:
            typical[col] = float(np.average(values_of, weights=weights))
        elif col not in offset_only:  # offsets held at their mean need no column (offset="mean")
            raise DataError(f"datagrid: cannot rebuild column {col!r} from the fitted model (it enters the model "
                            f"through a transformation); pass newdata= (the data the model was fitted to) or a "
                            f"value, e.g. datagrid(fit, {col}=...)")
    grid_values = {}
    for k, v in values.items():
        if isinstance(v, str) and v == "all" and k in d.categories:
            v = list(d.categories[k])
        grid_values[k] = list(v) if isinstance(v, (list, tuple, np.ndarray, pd.Series, pd.Index)) else [v]
    combos = list(itertools.product(*grid_values.values())) if grid_values else [()]
    out = pd.DataFrame(combos, columns=list(grid_values))
    for col, v in typical.items():
        out[col] = [v] * len(out)
    return out
