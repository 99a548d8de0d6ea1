"""Estimated marginal means (emmeans) and their contrasts, per posterior draw.

The reference grid has every combination of the levels of the model's factors,
with numeric predictors at their mean over the fitted rows and an offset at the
mean of the offset term over the fitted rows (``offset(log(BroodSize))`` at the
mean of log(BroodSize)), emmeans' defaults; ``at={"BroodSize": 4.4}`` sets the
offset's column instead.  The marginal mean of a level of ``specs`` is the
equally-weighted average of the grid predictions over the levels of the other
factors (emmeans' ``weights = "equal"``).  With ``kind="link"`` the averaging is on
the link scale (emmeans' default ``type = "link"``); with ``kind="mean"`` it is on
the response scale (emmeans' ``regrid = "response"``), so contrasts are
differences of expected responses.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from hierfit.analysis.grid import datagrid, factor_columns
from hierfit.analysis.population import response_draws
from hierfit.analysis.prepare import NA
from hierfit.analysis.tables import summarise
from hierfit.errors import HierfitError

__all__ = ["emmeans", "reference_grid", "CONTRASTS"]

CONTRASTS = ("pairwise", "revpairwise", "trt.vs.ctrl", "consec")


def reference_grid(fit, newdata=None, at: dict | None = None) -> pd.DataFrame:
    """emmeans' ``ref_grid``: all factor-level combinations, numeric predictors at their mean.

    Example
    -------
    >>> reference_grid(fit)  # doctest: +SKIP
    """
    values = {f: list(fit.design.categories[f]) for f in factor_columns(fit.design)}
    values.update(at or {})
    return datagrid(fit, newdata=newdata, **values)


def _pairs(levels: list, how: str) -> list[tuple[str, int, int, float]]:
    """(label, i, j) meaning level i minus level j."""
    lab = [str(v) for v in levels]
    k = len(levels)
    if how == "pairwise":
        return [(f"{lab[i]} - {lab[j]}", i, j) for i in range(k) for j in range(i + 1, k)]
    if how == "revpairwise":
        return [(f"{lab[j]} - {lab[i]}", j, i) for i in range(k) for j in range(i + 1, k)]
    if how == "trt.vs.ctrl":
        return [(f"{lab[i]} - {lab[0]}", i, 0) for i in range(1, k)]
    if how == "consec":
        return [(f"{lab[i + 1]} - {lab[i]}", i + 1, i) for i in range(k - 1)]
    raise HierfitError(f"contrasts must be one of {', '.join(CONTRASTS)}, got {how!r}")


def emmeans(fit, specs, by=None, re_form=NA, kind="mean", contrasts=None, at=None, newdata=None, ci=0.95,
            summary=True, seed=None, ndraws=None, nsim=200, rope=None):
    """Estimated marginal means of ``specs`` (per ``by``), or their contrasts (see :meth:`HierFit.emmeans`)."""
    specs = [specs] if isinstance(specs, str) else list(specs)
    by = [] if by is None else ([by] if isinstance(by, str) else list(by))
    factors = factor_columns(fit.design)
    numeric_at = {k for k in (at or {}) if k not in factors}
    bad = [s for s in specs + by if s not in factors and s not in numeric_at]
    if bad:
        raise HierfitError(f"emmeans: {', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} not a factor "
                           f"of the model (factors: {', '.join(factors) or 'none'}); give numeric predictors "
                           f"values with at={{'x': [..]}}")
    if kind not in ("mean", "link"):
        raise HierfitError(f"emmeans: kind must be 'mean' or 'link', got {kind!r}")
    grid = reference_grid(fit, newdata, at)
    # an offset whose columns the grid leaves out is held at its mean over the fitted rows (emmeans' default)
    offset_cols = {c for spec in fit.design.mu.offset_specs for c in spec.required_variables}
    offset = "mean" if any(c not in grid.columns for c in offset_cols) else None
    draws = response_draws(fit, grid, re_form=re_form, kind=kind, seed=seed, ndraws=ndraws, nsim=nsim,
                           offset=offset)
    keys = specs + by
    levels = {k: list(dict.fromkeys(grid[k].tolist())) for k in keys}
    cells = list(itertools.product(*(levels[k] for k in keys)))
    means = []
    for cell in cells:
        mask = np.ones(len(grid), dtype=bool)
        for k, v in zip(keys, cell):
            mask &= (grid[k] == v).to_numpy()
        means.append(draws[:, mask].mean(axis=1))
    means = np.column_stack(means)
    table = pd.DataFrame(cells, columns=keys)
    if contrasts is None:
        return summarise(means, table, ci, summary, rope=rope)
    by_cells = list(itertools.product(*(levels[k] for k in by))) if by else [()]
    spec_cells = list(itertools.product(*(levels[k] for k in specs)))
    spec_labels = [" ".join(map(str, c)) for c in spec_cells]
    out, labels = [], []
    for bc in by_cells:
        cols = [cells.index(sc + bc) for sc in spec_cells]
        for label, i, j in _pairs(spec_labels, contrasts):
            out.append(means[:, cols[i]] - means[:, cols[j]])
            labels.append({"contrast": label, **dict(zip(by, bc))})
    return summarise(np.column_stack(out), pd.DataFrame(labels), ci, summary, pd_column=True, rope=rope)
