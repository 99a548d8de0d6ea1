"""Helpers shared by the plot modules: figures and axes, group terms, columns, typical values.

Nothing here draws a plot.  The plot modules import matplotlib only when a plot is
made, so ``import hierfit`` stays fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierfit.results.draws import stack
from hierfit.data.counts import aggregation, grid_values, pattern_rows
from hierfit.errors import HierfitError
from hierfit.spec.design import uses_column

__all__ = ["TermInfo", "numeric_response", "resolve_term", "figure_and_axes", "aligned_data", "column_values", "fixed_variables",
           "typical_values", "variable_range", "response_label", "binned_smooth", "group_sizes", "row_weights",
           "per_row_divisor", "cap_note"]


def pyplot():
    """matplotlib.pyplot, imported on first use."""
    import matplotlib.pyplot as plt

    return plt


def figure_and_axes(ax, n: int = 1, ncols: int | None = None, figsize=None, sharex=False, sharey=False,
                    what: str = "this plot"):
    """A figure with ``n`` panels, or the figure of the axes the caller passed.

    ``ax`` may be None (a new figure), one Axes (when ``n == 1``) or a sequence of
    ``n`` Axes.  Returns ``(fig, [axes...])``.
    """
    if ax is not None:
        axes = [ax] if not isinstance(ax, (list, tuple, np.ndarray)) else list(np.ravel(ax))
        if len(axes) != n:
            want = "one Axes" if n == 1 else f"a sequence of {n} Axes"
            raise HierfitError(f"{what} draws {n} panel(s); pass ax as {want} (got {len(axes)})")
        return axes[0].figure, axes
    plt = pyplot()
    ncols = ncols or n
    nrows = int(np.ceil(n / ncols))
    if figsize is None:
        figsize = (min(4.2 * ncols, 16), 3.6 * nrows)
    fig, grid = plt.subplots(nrows, ncols, figsize=figsize, sharex=sharex, sharey=sharey, squeeze=False,
                             layout="constrained")
    axes = list(grid.ravel())
    for extra in axes[n:]:
        extra.set_visible(False)
    return fig, axes[:n]


# -- group terms ----------------------------------------------------------------------------------
@dataclass
class TermInfo:
    """All group-effect coefficients of one grouping factor of the mean's predictor.

    ``(1 | school) + (0 + x | school)`` and ``(x || school)`` give several blocks that
    share one factor; they are joined here, so ``coefs`` lists every coefficient that
    varies by ``factor``.

    Attributes
    ----------
    factor : str            grouping factor (``school``)
    blocks : list of GroupBlock
    coefs : list of str     coefficient names, lme4 spelling
    parts : list of (GroupBlock, int)   where each coefficient's draws live
    levels : list of str
    index : (n,) int        level of each row
    Z : (n, q)              each row's value of each coefficient's column
    label : str             the term(s) as written, for titles
    rows : (n,) float or None
        for a fit to rows aggregated exactly into count patterns, the number of
        original rows each (pattern) row stands for; None for row-level fits
    """

    factor: str
    blocks: list
    coefs: list[str]
    parts: list[tuple[object, int]]
    levels: list[str]
    index: np.ndarray
    Z: np.ndarray
    label: str
    rows: np.ndarray | None = None

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def q(self) -> int:
        return len(self.coefs)

    def coef_index(self, coef: str) -> int:
        if coef not in self.coefs:
            raise HierfitError(f"the group term {self.label} has no coefficient '{coef}' "
                               f"(its coefficients: {', '.join(self.coefs)})")
        return self.coefs.index(coef)

    def ranef_draws(self, posterior) -> np.ndarray:
        """Group effects (deviations) per draw: (S, levels, q)."""
        return np.stack([stack(posterior, f"r_{blk.key}")[:, :, k] for blk, k in self.parts], axis=-1)

    def sd_draws(self, posterior) -> np.ndarray:
        """Group-level sds per draw: (S, q)."""
        return np.stack([stack(posterior, f"sd_{blk.key}")[:, k] for blk, k in self.parts], axis=-1)

    def cov_draws(self, posterior) -> np.ndarray:
        """Group-level covariance matrices per draw: (S, q, q); zero between separate blocks."""
        sd = self.sd_draws(posterior)
        S = sd.shape[0]
        cor = np.broadcast_to(np.eye(self.q), (S, self.q, self.q)).copy()
        for blk in self.blocks:
            if blk.is_correlated:
                c = stack(posterior, f"cor_{blk.key}")
                pos = [i for i, (b, _) in enumerate(self.parts) if b is blk]
                for a, i in enumerate(pos):
                    for e, j in enumerate(pos):
                        cor[:, i, j] = c[:, a, e]
        return cor * sd[:, :, None] * sd[:, None, :]


def numeric_response(fit, what: str) -> None:
    """HierfitError for plots of one expected value per row when the response is an ordered category.

    Example
    -------
    >>> numeric_response(fit, "plot_effects")  # doctest: +SKIP
    """
    if fit.design.response_levels is not None:
        raise HierfitError(f"{what} draws one expected value per row; the {fit.family.name} family predicts a "
                           "probability per category: plot fit.predict(newdata) (one column per category) or use "
                           "fit.pp_check('bars')")


def resolve_term(fit, term: str | None = None) -> TermInfo:
    """The group term a plot is about, by grouping factor (``"school"``), lme4 group name or key.

    With ``term=None`` the model must have exactly one grouping factor in the mean.
    Raises :class:`hierfit.HierfitError` naming the known terms otherwise.
    """
    blocks = list(fit.design.blocks)
    factors = list(dict.fromkeys(b.factor for b in blocks))
    if not blocks:
        raise HierfitError(f"the model {fit.design.formula.text!r} has no group terms in its mean")
    if term is None:
        if len(factors) > 1:
            raise HierfitError(f"the model has several grouping factors ({', '.join(factors)}); "
                               "say which one with term=...")
        factor = factors[0]
    else:
        if not isinstance(term, str):
            raise HierfitError(f"term must be the name of a grouping factor such as {factors[0]!r}, got {term!r}")
        name = term.strip()
        m = re.fullmatch(r"\(?\s*[^|]*\|\|?\s*(.+?)\s*\)?", name)
        if m and "|" in name:
            name = m.group(1).strip()
        match = [b for b in blocks if name in (b.factor, b.name, b.key)]
        if not match:
            raise HierfitError(f"unknown term {term!r}: the model's grouping factors are {', '.join(factors)}")
        factor = match[0].factor
    mine = [b for b in blocks if b.factor == factor]
    parts = [(b, k) for b in mine for k in range(b.n_coefs)]
    coefs = [b.coefs[k] for b, k in parts]
    if len(set(coefs)) != len(coefs):  # the same coefficient in two terms of one factor
        coefs = [f"{c} ({b.name})" if coefs.count(c) > 1 else c for c, (b, _) in zip(coefs, parts)]
    Z = np.column_stack([b.Z[:, k] for b, k in parts])
    label = " + ".join(dict.fromkeys(b.term.text for b in mine))
    return TermInfo(factor=factor, blocks=mine, coefs=coefs, parts=parts, levels=list(mine[0].levels),
                    index=np.asarray(mine[0].index), Z=Z, label=label, rows=row_weights(fit))


def row_weights(fit) -> np.ndarray | None:
    """How many original rows each fitted row stands for: the pattern counts of a fit to rows aggregated
    exactly into counts (:mod:`hierfit.data.counts`), None for a row-level fit (every row counts once).

    Averages over the fitted rows weight each row by these counts, so that they equal the
    averages over the original rows.

    Example
    -------
    >>> row_weights(fit)  # doctest: +SKIP
    array([412., 57., ...])   # None for a fit to a pandas DataFrame
    """
    agg = aggregation(fit.design)
    return None if agg is None else np.asarray(agg["rows"], dtype=float)


def per_row_divisor(fit):
    """What turns the fitted rows' response into a mean per trial or per row: the trials of a binomial model,
    an aggregated Poisson fit's rows per pattern, 1 otherwise.

    Example
    -------
    >>> y_per_row = fit.design.y / per_row_divisor(fit)  # doctest: +SKIP
    """
    d = fit.design
    if d.trials is not None:
        return np.asarray(d.trials, dtype=float)
    rows = row_weights(fit)
    return 1.0 if rows is None else rows


def group_sizes(info: TermInfo) -> np.ndarray:
    """Number of rows per level (of the original rows, for a fit aggregated into count patterns).

    Example
    -------
    >>> group_sizes(resolve_term(fit, "school"))[:3]  # doctest: +SKIP
    array([ 73,  55, 182])
    """
    if info.rows is not None:
        return np.rint(np.bincount(info.index, weights=info.rows, minlength=info.n_levels)).astype(int)
    return np.bincount(info.index, minlength=info.n_levels)


# -- columns --------------------------------------------------------------------------------------
def fixed_variables(fit) -> list[str]:
    """Data columns that enter the fixed part of the mean (``standLRT``, ``sex``), in formula order."""
    pf = fit.design.formula
    lhs_end = pf.text.index("~") if "~" in pf.text else -1
    out = []
    for tok in pf.variables:
        if tok.pos < lhs_end:
            continue
        if uses_column(pf.fixed, tok.text) and tok.text not in out:
            out.append(tok.text)
    return out


def aligned_data(fit, data: pd.DataFrame | None) -> pd.DataFrame | None:
    """``data`` with the rows the fit used (rows with missing values in model columns dropped)."""
    if data is None:
        return None
    if not isinstance(data, pd.DataFrame):
        raise HierfitError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    d = fit.design
    if d.used_rows is not None and len(data) == len(d.used_rows) and not d.used_rows.all():
        # the caller's frame: keep exactly the rows the design kept (by position)
        return data.iloc[np.flatnonzero(d.used_rows)].reset_index(drop=True)
    if len(data) == d.nobs:
        return data.reset_index(drop=True)
    used = [c for c in dict.fromkeys(t.text for t in d.formula.variables) if c in data.columns]
    kept = data.loc[~data[used].isna().any(axis=1)].reset_index(drop=True)
    if len(kept) != d.nobs:
        raise HierfitError(f"data has {len(data)} rows ({len(kept)} without missing values in the model's columns) "
                           f"but the model was fitted to {d.nobs}; pass the data the model was fitted to")
    return kept


def _factor_from_X(design, var: str):
    """Rebuild a factor column from its treatment-coded columns in X, when they are all there."""
    cats = design.categories.get(var)
    if not cats:
        return None
    names = design.fixed_names
    cols = {lev: f"{var}{lev}" for lev in map(str, cats)}
    rest = [lev for lev in list(cols)[1:]]
    if not all(cols[lev] in names for lev in rest):
        return None
    out = np.full(design.nobs, str(cats[0]), dtype=object)
    for lev in rest:
        out[design.X[:, names.index(cols[lev])] == 1.0] = lev
    return pd.Categorical(out, categories=[str(c) for c in cats])


def column_values(fit, name: str, data: pd.DataFrame | None = None, purpose: str = "this plot"):
    """The values of a predictor for every row the fit used.

    Looked up, in order, as: a column of the fixed-effect matrix (``standLRT``), the
    response, a factor rebuilt from its indicator columns (``sex``), a column of
    ``data``.  Returns a float array, or a pandas Categorical for factors.  A fit to
    rows aggregated into count patterns has one value per pattern (raw columns from
    the patterns, without ``data``); weight them by :func:`row_weights`.

    Example
    -------
    >>> column_values(fit, "standLRT")[:3]  # doctest: +SKIP
    array([ 0.26, -0.13, -1.37])
    """
    d = fit.design
    if not isinstance(name, str):
        raise HierfitError(f"{purpose}: x must be a column name, got {name!r}")
    if not d.rows_held:
        raise HierfitError(f"{purpose} needs every row's value of {name!r}, but the model was fitted to data read "
                           f"through a data engine ({d.summary.source}, {d.summary.nobs} rows not held in memory); "
                           "fit the model to a pandas DataFrame (e.g. a sample) for this plot")
    if name in d.fixed_names and name != "(Intercept)":
        return d.X[:, d.fixed_names.index(name)]
    if name == d.response:
        return np.asarray(d.y, dtype=float)
    patterns = _pattern_frame(fit)
    if patterns is not None and name not in patterns.columns and data is not None:
        raise HierfitError(f"{purpose}: {name!r} is not a column of the model, and the model was fitted to rows "
                           "aggregated exactly into count patterns, which data= cannot be aligned with; use a "
                           "column of the model (or fit the model to a pandas DataFrame)")
    rows = aligned_data(fit, data) if patterns is None else patterns
    if rows is not None and name in rows.columns:
        col = rows[name]
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object or pd.api.types.is_string_dtype(col) \
                or col.dtype == bool:
            return pd.Categorical(col.astype(object).map(str))
        return col.to_numpy(dtype=float)
    fac = _factor_from_X(d, name)
    if fac is not None:
        return fac
    known = [n for n in d.fixed_names if n != "(Intercept)"]
    where = "the columns of data" if rows is not None else "the model matrix"
    raise HierfitError(
        f"{purpose}: unknown x {name!r}; it is not in {where} (model columns: {', '.join(known) or 'none'}). "
        + ("Pass data= (the data frame the model was fitted to) to use other columns."
           if rows is None else "Check the spelling.")
    )


def _pattern_frame(fit) -> pd.DataFrame | None:
    """An aggregated fit's patterns as rows (raw columns); None for a row-level fit."""
    if aggregation(fit.design) is None:
        return None
    return pattern_rows(fit.design)[0]


def _raw_column(data: pd.DataFrame | None, var: str, purpose: str, d) -> np.ndarray:
    """``var`` over the original rows in ``data`` (an aggregated fit's patterns cannot be aligned with them)."""
    if isinstance(data, pd.DataFrame) and var in data.columns:
        col = pd.to_numeric(data[var]).to_numpy(dtype=float)
        return col[np.isfinite(col)]
    raise HierfitError(f"{purpose} needs the raw column {var!r} (it enters the model only through a transformation "
                       f"in {d.formula.fixed!r}); pass data= (the data frame the model was fitted to)")


def typical_values(fit, data: pd.DataFrame | None = None, purpose: str = "this plot") -> dict:
    """Each fixed-part variable at its mean (numbers) or reference level (factors).

    Means are over the rows the model was fitted to: for a fit to rows aggregated
    exactly into count patterns, the patterns weighted by their rows (as
    :func:`hierfit.datagrid`), from the raw columns, so ``scale(k)`` needs no ``data``.

    Example
    -------
    >>> typical_values(fit)  # doctest: +SKIP
    {'standLRT': 0.0018, 'sex': 'F'}
    """
    d = fit.design
    if aggregation(d) is not None:  # one row per pattern: the means over the original rows
        means = grid_values(d)
        out: dict = {}
        for var in fixed_variables(fit):
            if var in d.categories:
                out[var] = d.categories[var][0]
            else:
                out[var] = means[var] if var in means else float(_raw_column(data, var, purpose, d).mean())
        return out
    rows = aligned_data(fit, data)
    out = {}
    for var in fixed_variables(fit):
        if var in d.categories:
            out[var] = d.categories[var][0]
        elif d.engine_moments(var) is not None:  # the engine's mean over the fitted rows
            out[var] = float(d.engine_moments(var)["mean"])
        elif var in d.fixed_names and d.rows_held:
            out[var] = float(d.X[:, d.fixed_names.index(var)].mean())
        elif rows is not None and var in rows.columns:
            out[var] = float(pd.to_numeric(rows[var]).mean())
        else:
            raise HierfitError(
                f"{purpose} needs the raw column {var!r} (it enters the model only through a transformation "
                f"in {d.formula.fixed!r}); pass data= (the data frame the model was fitted to)")
    return out


def variable_range(fit, var: str, data: pd.DataFrame | None = None, purpose: str = "this plot") -> tuple[float, float]:
    """Range of a numeric fixed-part variable in the fitted rows.

    For a fit to rows aggregated into count patterns, the range of the raw column over
    the patterns (the same as over the original rows).

    Example
    -------
    >>> variable_range(fit, "standLRT")  # doctest: +SKIP
    (-2.93, 3.02)
    """
    d = fit.design
    patterns = _pattern_frame(fit)
    if patterns is not None:
        if var in patterns.columns:
            col = pd.to_numeric(patterns[var]).to_numpy(dtype=float)
        else:
            col = _raw_column(data, var, purpose, d)
        return float(np.min(col)), float(np.max(col))
    moments = d.engine_moments(var)
    if moments is not None:  # the engine's range over the fitted rows
        return float(moments["min"]), float(moments["max"])
    if var in d.fixed_names and d.rows_held:
        col = d.X[:, d.fixed_names.index(var)]
    else:
        rows = aligned_data(fit, data)
        if rows is None or var not in rows.columns:
            raise HierfitError(
                f"{purpose} needs the raw column {var!r} (it enters the model only through a transformation "
                f"in {d.formula.fixed!r}); pass data= (the data frame the model was fitted to)")
        col = pd.to_numeric(rows[var]).to_numpy(dtype=float)
    return float(np.min(col)), float(np.max(col))


def response_label(fit) -> str:
    """Axis label for the response on its own scale (a probability for binomial families)."""
    d = fit.design
    return d.family.response_label(d.response)


def binned_smooth(x: np.ndarray, y: np.ndarray, bins: int = 20, stat=np.mean) -> tuple[np.ndarray, np.ndarray]:
    """A simple smoother: ``stat`` of y within quantile bins of x, at the bins' mean x."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    bins = int(max(2, min(bins, len(x) // 10 or 2)))
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return np.array([x.mean()]), np.array([stat(y)])
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    xs, ys = [], []
    for k in range(len(edges) - 1):
        sel = which == k
        if sel.sum() >= 3:
            xs.append(x[sel].mean())
            ys.append(stat(y[sel]))
    return np.array(xs), np.array(ys)


def cap_note(shown: int, total: int, what: str, how: str) -> str:
    """The note a figure shows when not every group got a panel."""
    return f"showing {shown} of {total} {what} ({how})"


def kde_density(values: np.ndarray, grid: np.ndarray, lower: float | None = None) -> np.ndarray:
    """Gaussian KDE on ``grid``, reflected at ``lower`` (for positive parameters)."""
    from scipy.stats import gaussian_kde

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2 or np.ptp(values) == 0:
        return np.zeros_like(grid)
    kde = gaussian_kde(values)
    dens = kde(grid)
    if lower is not None:
        dens = dens + kde(2 * lower - grid)
        dens[grid < lower] = 0.0
    return dens
