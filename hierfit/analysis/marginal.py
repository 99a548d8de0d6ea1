"""marginaleffects' questions on posterior draws: predictions, comparisons and slopes.

* ``predictions`` / ``avg_predictions``: the expected response of rows (averaged
  over rows, per ``by`` group).
* ``comparisons`` / ``avg_comparisons``: what changes when one variable changes and
  everything else in the row stays (counterfactual rows), as a difference, ratio,
  log ratio or log odds ratio.
* ``slopes`` / ``avg_slopes``: derivatives by a centred finite difference.

Rows default to the fitted rows (rebuilt by :func:`hierfit.analysis.grid.model_frame`).
A fit to rows aggregated exactly into counts (:mod:`hierfit.data.counts`) averages over
its original rows: each pattern weighted by its number of rows, with its rows' mean
trials (exact for expected values and link-scale values, which are linear in the trials
or do not depend on them); one value per original row, or simulated responses of them,
need the rows as ``newdata``.
Every number is computed per posterior draw by
:func:`hierfit.analysis.population.response_draws` (which calls ``prepare_draws``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.analysis.grid import fitted_column, model_frame
from hierfit.analysis.population import response_draws
from hierfit.analysis.tables import summarise
from hierfit.errors import HierfitError

__all__ = ["predictions", "avg_predictions", "comparisons", "avg_comparisons", "slopes", "avg_slopes",
           "COMPARISONS", "SLOPES"]

COMPARISONS = ("difference", "ratio", "lnratio", "lnor",
               "differenceavg", "ratioavg", "lnratioavg", "lnoravg")
SLOPES = ("dydx", "eyex", "eydx", "dyex")


def _by_list(by, frame: pd.DataFrame) -> list[str]:
    if by is None or by is False:
        return []
    by = [by] if isinstance(by, str) else list(by)
    missing = [b for b in by if b not in frame.columns]
    if missing:
        raise HierfitError(f"by names column(s) {', '.join(map(repr, missing))} that the rows do not have "
                           f"(they have: {', '.join(map(str, frame.columns))}); pass newdata= with that column, "
                           f"e.g. the data the model was fitted to")
    return by


def _groups(frame: pd.DataFrame, by: list[str]):
    """(labels DataFrame, list of row-index arrays) of the by groups, sorted (factors in level order)."""
    if not by:
        return pd.DataFrame(index=[0]), [np.arange(len(frame))]
    keys = frame[by].reset_index(drop=True)
    groups = keys.groupby(by, sort=True, observed=True, dropna=False).indices
    members = [np.asarray(idx) for idx in groups.values()]
    first = [m[0] for m in members]
    return keys.iloc[first].reset_index(drop=True), members


def _rows(fit, newdata):
    return model_frame(fit, None) if newdata is None else model_frame(fit, newdata)


def _aggregated(fit) -> bool:
    return fit.design.aggregation is not None


def _rows_weights(fit, newdata, by, averaged: bool, kind: str, what: str):
    """(rows, weights): the rows asked about and, for a fit to aggregated counts without newdata, each row's weight.

    The patterns of an aggregated fit stand for their rows (weights: their numbers of
    rows); only averages over them, of expected or link-scale values, are the rows' own.
    """
    if newdata is not None or not _aggregated(fit):
        return _rows(fit, newdata), None
    from hierfit.data.counts import pattern_rows

    n = fit.design.summary.nobs
    if not averaged:
        raise HierfitError(f"{what} per row of a fit whose {n} rows were aggregated into {fit.design.nobs} count "
                           f"patterns: average them (avg_{what}(), or by=), or pass the rows as newdata=")
    own = fit.design.aggregation["trials"]  # each row's trials: summed into the patterns
    trials = [b for b in ([by] if isinstance(by, str) else list(by or [])) if b in own]
    if trials:
        raise HierfitError(f"by={trials[0]!r}: the fit aggregated its {n} rows into count patterns, which keep their "
                           f"total trials, not each row's {trials[0]!r}; pass the rows as newdata=")
    if kind == "response":
        raise HierfitError(f"kind='response' averages simulated responses of each of the {n} rows, which this fit "
                           f"aggregated into {fit.design.nobs} count patterns; use kind='mean' (exact from the "
                           "patterns), or pass the rows as newdata=")
    return pattern_rows(fit.design)


def _average(x: np.ndarray, members, w) -> list[np.ndarray]:
    """Per group of rows (``members``), the (weighted) mean of each draw's values ``x`` (S, n)."""
    if w is None:
        return [x[:, m].mean(axis=1) for m in members]
    return [x[:, m] @ w[m] / w[m].sum() for m in members]


def _draws(fit, frame, re_form, kind, allow_new_levels, seed, ndraws, nsim):
    return response_draws(fit, frame.reset_index(drop=True), re_form=re_form, kind=kind,
                          allow_new_levels=allow_new_levels, seed=seed, ndraws=ndraws, nsim=nsim)


def predictions(fit, newdata=None, by=None, re_form=None, kind="mean", allow_new_levels=False, ci=0.95,
                summary=True, seed=None, ndraws=None, nsim=200, average=False):
    """Expected response per row of ``newdata`` (see :meth:`HierFit.predictions`)."""
    frame, w = _rows_weights(fit, newdata, by, average or by is not None, kind, "predictions")
    draws = _draws(fit, frame, re_form, kind, allow_new_levels, seed, ndraws, nsim)
    if not average and by is None:
        out = summarise(draws, frame.reset_index(drop=True), ci, summary)
        if summary:
            out.index = frame.index
        return out
    labels, members = _groups(frame, _by_list(by, frame))
    avg = np.column_stack(_average(draws, members, w))
    return summarise(avg, labels, ci, summary)


def _quantile(ref: np.ndarray, w, q) -> np.ndarray:
    """np.quantile of ``ref`` with each value repeated ``w`` (whole numbers) times, without repeating them."""
    if w is None:
        return np.quantile(ref, q)
    order = np.argsort(ref, kind="stable")
    vals, cum = ref[order], np.cumsum(w[order])
    h = (cum[-1] - 1) * np.asarray(q, dtype=float)
    lo = np.floor(h)

    def at(i):  # the value at position i of the repeated values
        return vals[np.searchsorted(cum, i, side="right")]

    return at(lo) + (h - lo) * (at(np.minimum(lo + 1, cum[-1] - 1)) - at(lo))


def _numeric_steps(var, spec, x: np.ndarray, ref: np.ndarray, w=None):
    """(label, lo, hi) for a numeric variable; ``w`` weights the reference values (rows aggregated into counts)."""
    if spec is None:
        spec = 1
    if isinstance(spec, str):
        if spec == "sd":
            if w is None:
                h = float(np.std(ref, ddof=1))
            else:
                mean = np.average(ref, weights=w)
                h = float(np.sqrt((w * (ref - mean) ** 2).sum() / (w.sum() - 1)))
            return [("sd", x - h / 2, x + h / 2)]
        if spec == "iqr":
            q1, q3 = _quantile(ref, w, [0.25, 0.75])
            return [("Q3 - Q1", np.full_like(x, q1), np.full_like(x, q3))]
        if spec == "minmax":
            return [("Max - Min", np.full_like(x, ref.min()), np.full_like(x, ref.max()))]
        raise HierfitError(f"variables[{var!r}] must be a number, 'sd', 'iqr', 'minmax' or a pair (lo, hi), "
                           f"got {spec!r}")
    if isinstance(spec, (list, tuple)) and len(spec) == 2:
        lo, hi = (float(v) for v in spec)
        return [(f"{hi:g} - {lo:g}", np.full_like(x, lo), np.full_like(x, hi))]
    try:
        h = float(spec)
    except (TypeError, ValueError):
        raise HierfitError(f"variables[{var!r}] must be a number, 'sd', 'iqr', 'minmax' or a pair (lo, hi), "
                           f"got {spec!r}") from None
    return [(f"+{h:g}", x, x + h)]


def _factor_steps(var, spec, levels: list):
    """(label, lo level, hi level) for a factor."""
    labels = [str(v) for v in levels]
    if spec is None or spec == "reference":
        return [(f"{b} - {labels[0]}", levels[0], levels[i + 1]) for i, b in enumerate(labels[1:])]
    if spec == "pairwise":
        return [(f"{labels[j]} - {labels[i]}", levels[i], levels[j])
                for i in range(len(levels)) for j in range(i + 1, len(levels))]
    if spec == "revpairwise":
        return [(f"{labels[i]} - {labels[j]}", levels[j], levels[i])
                for i in range(len(levels)) for j in range(i + 1, len(levels))]
    if spec == "sequential":
        return [(f"{labels[i + 1]} - {labels[i]}", levels[i], levels[i + 1]) for i in range(len(levels) - 1)]
    if isinstance(spec, (list, tuple)) and len(spec) == 2:
        lookup = {str(v): v for v in levels}
        bad = [v for v in spec if str(v) not in lookup]
        if bad:
            raise HierfitError(f"variables[{var!r}]: unknown level(s) {', '.join(map(repr, bad))} "
                               f"(levels: {', '.join(labels)})")
        lo, hi = lookup[str(spec[0])], lookup[str(spec[1])]
        return [(f"{hi} - {lo}", lo, hi)]
    raise HierfitError(f"variables[{var!r}] for a factor must be 'reference', 'pairwise', 'revpairwise', "
                       f"'sequential' or a pair of levels, got {spec!r}")


def _variables(fit, variables) -> dict:
    if isinstance(variables, str):
        variables = {variables: None}
    elif isinstance(variables, (list, tuple)):
        variables = {v: None for v in variables}
    elif not isinstance(variables, dict):
        raise HierfitError(f"variables must be a name, a list of names or a dict, got {variables!r}")
    from hierfit.analysis.grid import check_predictors

    check_predictors(fit.design, variables)
    return variables


def _moment_steps(var, spec: str, x: np.ndarray, moments: dict):
    """(label, lo, hi) of 'sd' or 'minmax' from the moments a data engine measured over the fitted rows."""
    if spec == "sd":
        h = float(moments["sd"])
        return [("sd", x - h / 2, x + h / 2)]
    if spec == "minmax":
        return [("Max - Min", np.full_like(x, moments["min"]), np.full_like(x, moments["max"]))]
    if spec == "iqr":
        raise HierfitError(f"variables[{var!r}] = 'iqr' needs the quartiles of every fitted row, which stayed in the "
                           "data engine; use 'sd', 'minmax' (from the engine's moments) or a pair (lo, hi)")
    return _numeric_steps(var, spec, x, np.zeros(0))  # the error that names the valid choices


def _reference_values(fit, var: str):
    """The fitted rows' values of ``var`` and their weights (None, or the patterns' rows of an aggregated fit)."""
    if _aggregated(fit):
        from hierfit.data.counts import pattern_rows

        rows, w = pattern_rows(fit.design)
        return pd.to_numeric(rows[var]).to_numpy(dtype=float), w
    values = fitted_column(fit, var)
    if values is not None:
        return np.asarray(values, dtype=float), None
    try:
        return pd.to_numeric(model_frame(fit)[var]).to_numpy(dtype=float), None
    except HierfitError as err:
        raise HierfitError(f"variables[{var!r}]: 'sd', 'iqr' and 'minmax' are measured over the fitted rows, whose "
                           f"values of {var!r} cannot be rebuilt from the model ({err}); give the step as a number "
                           "or a pair (lo, hi)") from None


def _counterfactuals(fit, variables: dict, frame: pd.DataFrame):
    """Stacked lo/hi frames and, per contrast, (term, label)."""
    d = fit.design
    lows, highs, keys = [], [], []
    for var, spec in variables.items():
        if var in d.categories:
            for label, lo, hi in _factor_steps(var, spec, list(d.categories[var])):
                a, b = frame.copy(), frame.copy()
                a[var] = [lo] * len(frame)
                b[var] = [hi] * len(frame)
                lows.append(a)
                highs.append(b)
                keys.append((var, label))
        else:
            x = pd.to_numeric(frame[var]).to_numpy(dtype=float)
            moments = d.engine_moments(var)
            if not isinstance(spec, str):  # a number or a pair: no reference values needed
                steps = _numeric_steps(var, spec, x, np.zeros(0))
            elif moments is not None:
                steps = _moment_steps(var, spec, x, moments)
            else:
                steps = _numeric_steps(var, spec, x, *_reference_values(fit, var))
            for label, lo, hi in steps:
                a, b = frame.copy(), frame.copy()
                a[var] = lo
                b[var] = hi
                lows.append(a)
                highs.append(b)
                keys.append((var, label))
    return lows, highs, keys


def _compare(lo: np.ndarray, hi: np.ndarray, how: str) -> np.ndarray:
    if how == "difference":
        return hi - lo
    if how == "ratio":
        return hi / lo
    if how == "lnratio":
        return np.log(hi / lo)
    if how == "lnor":
        return np.log(hi / (1 - hi)) - np.log(lo / (1 - lo))
    raise HierfitError(f"comparison must be one of {', '.join(COMPARISONS)}, got {how!r}")


def _counterfactual_draws(fit, lows, highs, re_form, kind, allow_new_levels, seed, ndraws, nsim):
    n = len(lows[0])
    stacked = pd.concat(lows + highs, ignore_index=True)
    draws = _draws(fit, stacked, re_form, kind, allow_new_levels, seed, ndraws, nsim)
    k = len(lows)
    return draws[:, : k * n].reshape(-1, k, n), draws[:, k * n:].reshape(-1, k, n)


def comparisons(fit, variables, newdata=None, comparison="difference", by=None, re_form=None, kind="mean",
                allow_new_levels=False, ci=0.95, summary=True, seed=None, ndraws=None, nsim=200, rope=None,
                average=False):
    """Counterfactual comparisons per row (see :meth:`HierFit.comparisons`)."""
    if comparison not in COMPARISONS:
        raise HierfitError(f"comparison must be one of {', '.join(COMPARISONS)}, got {comparison!r}")
    frame, w = _rows_weights(fit, newdata, by, average or by is not None, kind, "comparisons")
    frame = frame.reset_index(drop=True)
    variables = _variables(fit, variables)
    lows, highs, keys = _counterfactuals(fit, variables, frame)
    lo, hi = _counterfactual_draws(fit, lows, highs, re_form, kind, allow_new_levels, seed, ndraws, nsim)
    how = comparison[:-3] if comparison.endswith("avg") else comparison
    blocks, labels = [], []
    if not average and by is None:
        if comparison.endswith("avg"):
            raise HierfitError(f"comparison={comparison!r} compares averages; use avg_comparisons")
        for c, (term, label) in enumerate(keys):
            blocks.append(_compare(lo[:, c], hi[:, c], how))
            lab = frame.copy()
            lab.insert(0, "contrast", label)
            lab.insert(0, "term", term)
            labels.append(lab)
    else:
        glabels, members = _groups(frame, _by_list(by, frame))
        for c, (term, label) in enumerate(keys):
            if comparison.endswith("avg"):
                vals = [_compare(a, b, how) for a, b in zip(_average(lo[:, c], members, w),
                                                              _average(hi[:, c], members, w))]
            else:
                vals = _average(_compare(lo[:, c], hi[:, c], how), members, w)
            blocks.append(np.column_stack(vals))
            lab = glabels.copy()
            lab.insert(0, "contrast", label)
            lab.insert(0, "term", term)
            labels.append(lab)
    return summarise(np.column_stack(blocks), pd.concat(labels, ignore_index=True), ci, summary,
                     pd_column=True, rope=rope)


def _step(fit, var: str, frame: pd.DataFrame, eps) -> float:
    if eps is not None:
        return float(eps)
    moments = fit.design.engine_moments(var)
    if moments is not None:  # the range the engine measured over the rows
        ref = np.array([moments["min"], moments["max"]])
    else:
        try:
            ref, _ = _reference_values(fit, var)
        except HierfitError:  # not rebuildable from the model: the rows asked about
            ref = pd.to_numeric(frame[var]).to_numpy(dtype=float)
    span = float(np.ptp(ref)) if ref.size else 0.0
    return 1e-4 * span if span > 0 else 1e-4


def slopes(fit, variables, newdata=None, slope="dydx", by=None, re_form=None, kind="mean", allow_new_levels=False,
           ci=0.95, summary=True, seed=None, ndraws=None, nsim=200, eps=None, rope=None, average=False):
    """Partial derivatives per row (see :meth:`HierFit.slopes`)."""
    if slope not in SLOPES:
        raise HierfitError(f"slope must be one of {', '.join(SLOPES)}, got {slope!r}")
    frame, w = _rows_weights(fit, newdata, by, average or by is not None, kind, "slopes")
    frame = frame.reset_index(drop=True)
    variables = _variables(fit, variables)
    factors = [v for v in variables if v in fit.design.categories]
    if factors:
        raise HierfitError(f"slopes are for numeric predictors; {', '.join(map(repr, factors))} "
                           f"{'is a factor' if len(factors) == 1 else 'are factors'}: use comparisons()")
    lows, highs, keys, xs = [], [], [], []
    for var in variables:
        h = _step(fit, var, frame, eps)
        x = pd.to_numeric(frame[var]).to_numpy(dtype=float)
        a, b = frame.copy(), frame.copy()
        a[var] = x - h / 2
        b[var] = x + h / 2
        lows.append(a)
        highs.append(b)
        keys.append((var, h))
        xs.append(x)
    stacked = pd.concat(lows + highs + [frame], ignore_index=True)
    draws = _draws(fit, stacked, re_form, kind, allow_new_levels, seed, ndraws, nsim)
    k, n = len(lows), len(frame)
    lo = draws[:, : k * n].reshape(-1, k, n)
    hi = draws[:, k * n: 2 * k * n].reshape(-1, k, n)
    y = draws[:, 2 * k * n:]
    units = []
    for c, ((var, h), x) in enumerate(zip(keys, xs)):
        dydx = (hi[:, c] - lo[:, c]) / h
        units.append({"dydx": dydx, "eyex": dydx * x / y, "eydx": dydx / y, "dyex": dydx * x}[slope])
    blocks, labels = [], []
    glabels, members = (None, None) if (not average and by is None) else _groups(frame, _by_list(by, frame))
    for (var, _), unit in zip(keys, units):
        if members is None:
            blocks.append(unit)
            lab = frame.copy()
        else:
            blocks.append(np.column_stack(_average(unit, members, w)))
            lab = glabels.copy()
        lab.insert(0, "contrast", slope)
        lab.insert(0, "term", var)
        labels.append(lab)
    return summarise(np.column_stack(blocks), pd.concat(labels, ignore_index=True), ci, summary,
                     pd_column=True, rope=rope)


def avg_predictions(fit, newdata=None, by=None, **kwargs):
    """Predictions averaged over rows, per ``by`` group (see :meth:`HierFit.avg_predictions`)."""
    return predictions(fit, newdata, by=by, average=True, **kwargs)


def avg_comparisons(fit, variables, newdata=None, by=None, **kwargs):
    """Comparisons averaged over rows, per ``by`` group (see :meth:`HierFit.avg_comparisons`)."""
    return comparisons(fit, variables, newdata, by=by, average=True, **kwargs)


def avg_slopes(fit, variables, newdata=None, by=None, **kwargs):
    """Slopes averaged over rows, per ``by`` group (see :meth:`HierFit.avg_slopes`)."""
    return slopes(fit, variables, newdata, by=by, average=True, **kwargs)
