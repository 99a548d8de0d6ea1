"""Exact aggregation of count models: rows with identical covariates, levels and offset become one count.

When every column on the right of ``~`` (predictors, grouping factors, offset) takes
few distinct values, rows that share all of them share the linear predictor eta,
so their likelihood depends on them only through sums:

* Bernoulli rows -> one binomial count: successes = sum(y), trials = number of rows
  (the product of Bernoulli likelihoods equals the binomial one up to the constant
  binomial coefficient, whatever the link);
* binomial rows ``s | trials(n)`` or ``cbind(s, f)`` -> sum(s) | trials(sum(n));
* Poisson rows (log link) -> sum(y) ~ Poisson(m * exp(eta)) with m rows: the same formula
  with ``offset(log(m))`` added (exact up to a constant: the sum of m independent
  Poisson(mu) counts is Poisson(m * mu)).

The engine does the group-by; only the distinct patterns (usually thousands) come
back, and the model is fitted to them in memory.  The same pass counts the rows that
break the family's response rules (a Bernoulli y of 2, a negative or fractional count,
successes above trials), which are refused with the in-memory messages.  ``scale()``
and ``center()`` take the rows' moments (the metadata pass's), and default priors scale
slopes by the predictors' sds over the original rows (weighted by the counts), as the
row-level fit would.

The fit remembers how it was aggregated (``design.summary.aggregation``: the formula as
written, the family, the user's trials columns, each pattern's row count and the rows'
moments), so that predictions for new rows use the row-level model (one trial per
Bernoulli row, each binomial row's own trials, ``log(1)`` for a Poisson row) and averages
over the fitted rows weight each pattern by its rows (:func:`row_columns`,
:func:`pattern_rows`, :func:`grid_values`).
"""

from __future__ import annotations

import re
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd

from hierfit.errors import DataError, DataWarning, HierfitError
from hierfit import families
from hierfit.spec.design import build_design, uses_column
from hierfit.spec.formula import parse_formula
from hierfit.spec.predictor import check_finite
from hierfit.spec.specify import specify_design
from hierfit.spec.summaries import DataSummary

__all__ = ["MAX_DISTINCT", "MAX_PATTERNS", "INTERNAL_COLUMNS", "specify_counts", "aggregate_counts", "aggregation",
           "user_formula", "row_level_columns", "row_columns", "pattern_rows", "grid_values", "row_mean_offset",
           "restore_row_coding"]
#: A numeric predictor with more distinct values than this is treated as continuous (no exact aggregation).
MAX_DISTINCT = 1000
#: At most this many distinct patterns are brought back to fit in memory.
MAX_PATTERNS = 2_000_000

SUCC, TRIALS, ROWS = "hierfit_successes", "hierfit_trials", "hierfit_rows"
#: The columns the aggregated model adds: summed successes, summed trials, rows per pattern.
INTERNAL_COLUMNS = (SUCC, TRIALS, ROWS)
_BAD = "hierfit_bad_"  # per-pattern counts of rows that break a response rule (summed in the group-by)
_CBIND = re.compile(r"^I\(\((\w+)\) \+ \((\w+)\)\)$")
_NEEDS_ROWS = ("needs in-memory data: fit it from a pandas DataFrame (e.g. a sample, or ddf.compute() when the "
               "rows fit in memory)")


def _plain(expr: str | None, columns) -> str | None:
    if expr is None:
        return None
    e = expr.strip().strip("`")
    return e if e in columns else None


def _check_model(pf, fam) -> None:
    """HierfitError for what exact aggregation cannot honour: addition terms, Poisson links other than log."""
    if pf.addition:
        terms = ", ".join(f"{t.name}()" for t in pf.addition)
        raise HierfitError(f"the response's addition term(s) {terms} in '{pf.text}' give every row its own weight, "
                           f"censoring or error, which exact aggregation of the {fam.name} rows into counts cannot "
                           f"keep; the model {_NEEDS_ROWS}")
    if fam.needs_trials and pf.trials is None:  # as in memory: a binomial response says how many trials
        raise DataError(f"binomial response '{pf.response}' needs trials: write cbind(successes, failures) ~ ... "
                        "or successes | trials(n) ~ ...")
    if not fam.needs_trials and pf.trials is not None:
        raise HierfitError(f"the {fam.name} family has one trial per row, but '{pf.text}' gives trials "
                           f"({pf.trials}); use family='binomial' for successes out of trials")
    if fam.aggregation == "exposure" and fam.link_name != "log":
        raise HierfitError(f"exact aggregation of {fam.name} rows adds log(number of rows) to the linear predictor, "
                           f"which is exact only with the log link (got link '{fam.link_name}'); the model "
                           + _NEEDS_ROWS)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _check_numeric(col: str, expr: str, what: str, md, meta) -> None:
    """DataError, as in memory, for a response or trials column that holds labels (the frame's meta says so)."""
    if col in md.levels:
        levels = md.levels[col]
        if isinstance(meta[col].dtype, pd.CategoricalDtype) or not all(_is_number(v) for v in levels):
            raise DataError(f"{what} '{expr}' is not numeric (it has {len(levels)} categories)")


def _row_checks(fam, y, t) -> dict:
    """Per-row indicators (Dask series) of the family's response rules, as its ``validate`` applies them."""
    inf = float("inf")
    checks = {"y_inf": y.abs() == inf}
    if t is not None:
        checks["t_inf"] = t.abs() == inf
    if fam.aggregation == "trials" and not fam.needs_trials:  # Bernoulli: 0/1
        checks["y_bad"] = (y != 0) & (y != 1)
    else:  # counts: non-negative whole numbers
        checks["y_bad"] = (y < 0) | (y != y.round())
    if t is not None:
        checks["t_bad"] = (t < y) | (t != t.round()) | (t < 1)
    return checks


def _raise_bad_rows(bad: dict, pf, fam) -> None:
    """The in-memory DataError for the first broken rule, with the number of rows that break it."""
    k = bad.get("y_inf", 0)
    if k:
        check_finite(np.full((k, 1), np.inf), [pf.response], "response")
    k = bad.get("t_inf", 0)
    if k:
        check_finite(np.full((k, 1), np.inf), [pf.trials], "trials")
    k = bad.get("y_bad", 0)
    if k:  # k values that break the rule: the family words the message and counts them
        fam.validate(np.full(k, -1.0), np.ones(k) if fam.needs_trials else None, pf.response)
    k = bad.get("t_bad", 0)
    if k:
        fam.validate(np.zeros(k), np.zeros(k), pf.response)
    if any(bad.values()):  # a family whose validate accepts what the checks above refuse
        raise DataError(f"response '{pf.response}': {sum(bad.values())} row(s) are not valid {fam.name} responses")


def _predictor_columns(pf, offset, columns) -> set[str]:
    """Columns that enter the linear predictor as values (not only as grouping factors)."""
    texts = [pf.fixed, *(g.expr for g in pf.groups), *pf.offsets] + ([offset] if offset else [])
    return {c for c in columns if any(uses_column(t, c) for t in texts)}


def aggregate_counts(ddf, pf, fam, offset: str | None = None):
    """The distinct (predictor, level, offset) patterns with summed counts, as a pandas DataFrame.

    Returns ``(frame, pattern_columns, metadata)``; the frame has the pattern columns and
    ``hierfit_successes``, ``hierfit_rows`` and (binomial) ``hierfit_trials``.  Rows that
    break the family's response rules raise the in-memory DataError (the count is of rows).

    Example
    -------
    >>> import dask.dataframe as dd, hierfit, pandas as pd
    >>> from hierfit.spec.formula import parse_formula
    >>> df = pd.DataFrame({"y": [0, 1, 1, 0, 1, 1], "a": list("uuvvvv"), "g": [1, 1, 1, 2, 2, 2]})
    >>> frame, cols, _ = aggregate_counts(dd.from_pandas(df, npartitions=2), parse_formula("y ~ a + (1 | g)"),
    ...                                   hierfit.families.get("bernoulli"))
    >>> frame[cols + ["hierfit_successes", "hierfit_rows"]].to_numpy().tolist()
    [['u', 1, 1.0, 2.0], ['v', 1, 1.0, 1.0], ['v', 2, 2.0, 3.0]]
    """
    import dask

    from hierfit.data.metadata import scan_metadata

    _check_model(pf, fam)
    columns = list(ddf.columns)
    succ = _plain(pf.response, columns)
    fail = trials = None
    if pf.trials is not None:
        m = _CBIND.match(pf.trials.strip())
        if m and _plain(m.group(1), columns) == succ:
            fail = _plain(m.group(2), columns)
        else:
            trials = _plain(pf.trials, columns)
    if succ is None or (pf.trials is not None and fail is None and trials is None):
        raise HierfitError(f"exact aggregation needs the response and trials as plain columns (got '{pf.response}'"
                           + (f" and trials '{pf.trials}'" if pf.trials else "") + "); compute them as columns first")
    formulas = [pf] + ([parse_formula("~ " + offset, response=False)] if offset else [])
    lhs_end = pf.text.index("~")
    response_cols = {t.text for t in pf.variables if t.pos < lhs_end}
    md = scan_metadata(ddf, formulas, response_cols)
    patterns = [c for c in md.used if c not in response_cols]
    meta = ddf._meta
    _check_numeric(succ, pf.response, "response", md, meta)
    for c in (trials, fail):
        if c is not None:
            _check_numeric(c, pf.trials, "trials", md, meta)
    values = _predictor_columns(pf, offset, patterns)  # grouping-only columns are labels, however many
    numeric = [c for c in patterns if c not in md.levels and c not in md.bools and c in values]
    labels = [c for c in patterns if c not in md.levels and c not in md.bools and c not in values]
    counts = dask.compute(*[ddf[c].dropna().nunique_approx() for c in numeric + labels]) if numeric or labels else ()
    many = {c: int(k) for c, k in zip(numeric + labels, counts) if c in labels and int(k) > MAX_PATTERNS}
    many.update({c: len(md.levels[c]) for c in patterns if c in md.levels and len(md.levels[c]) > MAX_PATTERNS})
    if many:  # before the group-by brings them back
        desc = ", ".join(f"'{c}' (about {k:,} levels)" for c, k in many.items())
        raise HierfitError(f"{desc} alone make more than {MAX_PATTERNS:,} count patterns; exact aggregation does "
                           f"not shrink the rows enough: the {fam.name} model {_NEEDS_ROWS}")
    if numeric:
        wide = {c: int(k) for c, k in zip(numeric, counts) if int(k) > MAX_DISTINCT}
        if wide:
            desc = ", ".join(f"'{c}' (about {k} distinct values)" for c, k in wide.items())
            raise HierfitError(f"the {fam.name} family has no closed-form marginal likelihood, and exact aggregation "
                               f"into counts needs discrete predictors, but {desc} is continuous; fit it from an "
                               "in-memory pandas DataFrame, or bin the predictor")
    clean = ddf[md.used].dropna()
    y = clean[succ].astype(float)
    t = clean[trials].astype(float) if trials is not None else \
        y + clean[fail].astype(float) if fail is not None else None
    sums = {SUCC: y, **({TRIALS: t} if t is not None else {})}
    checks = _row_checks(fam, y, t)  # summed per pattern in the same group-by: counts of rows, not of patterns
    work = clean[patterns].assign(**sums, **{ROWS: 1.0}, **{_BAD + k: v.astype(float) for k, v in checks.items()})
    agg = work.groupby(patterns, observed=True, dropna=False).sum(split_out=1)
    frame = agg.compute().reset_index()
    _raise_bad_rows({k: int(frame.pop(_BAD + k).sum()) for k in checks}, pf, fam)
    if len(frame) > MAX_PATTERNS:
        raise HierfitError(f"the data have {len(frame)} distinct patterns of {', '.join(patterns)} (more than "
                           f"{MAX_PATTERNS}); exact aggregation does not shrink them enough: fit in memory")
    for c in patterns:  # restore the columns' kinds (the group-by may return categories or objects)
        if c in md.levels and isinstance(meta[c].dtype, pd.CategoricalDtype):
            frame[c] = pd.Categorical(frame[c], categories=md.levels[c])
        elif c in md.bools:
            frame[c] = frame[c].astype(bool)
    frame = frame.sort_values(patterns, kind="stable").reset_index(drop=True)
    return frame, patterns, md


def _weighted_sd(design, w: np.ndarray) -> dict[str, float]:
    out = {}
    N = w.sum()
    for j, name in enumerate(design.fixed_names):
        x = design.X[:, j]
        mean = (w * x).sum() / N
        out[name] = float(np.sqrt(max(((w * (x - mean) ** 2).sum()) / max(N - 1, 1), 0.0)))
    return out


def restore_row_coding(design, moments: dict | None = None) -> None:
    """Give ``scale(col)``/``center(col)`` the original rows' moments and re-code the patterns with them.

    formulaic freezes a stateful transform with the moments of the data it sees: the
    patterns, not the rows they stand for.  ``moments`` (column -> mean, sd; by default
    those the fit stored) replaces them, as for the Gaussian engine path
    (:func:`hierfit.data.metadata.fix_stateful_transforms`: other stateful transforms are
    refused), and X, the group terms' columns and the offset are re-coded.  A fit file's
    design is rebuilt from its patterns, so loading calls this again.

    Example
    -------
    >>> # restore_row_coding(design, {"k": {"mean": 1.34, "sd": 2.84}})  (design of an aggregated fit)
    """
    from hierfit.data.metadata import fix_stateful_transforms, has_stateful_transforms

    if moments is None:
        agg = aggregation(design)
        moments = None if agg is None else agg.get("moments")
    if moments is None or not has_stateful_transforms(design):
        return
    fix_stateful_transforms(design, SimpleNamespace(numeric=moments))
    data = design.prepare(design.frame.reset_index(drop=True))
    for pred in design.predictors.values():
        rec = pred.recode(data)
        pred.X = rec["X"]
        for blk, (Z, _, _) in zip(pred.blocks, rec["blocks"]):
            blk.Z = Z
        pred.offset = rec["offset"]
        check_finite(pred.X, pred.fixed_names, "predictor(s)")


def specify_counts(pf, ddf, fam, *, priors=None, offset=None, method="auto", parametrization="auto",
                   data_name: str = "data"):
    """Aggregate a binomial/Bernoulli/Poisson model's rows into counts and specify it on the patterns.

    Example
    -------
    >>> import dask.dataframe as dd, hierfit, numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"y": rng.integers(0, 2, 600), "a": rng.choice(["u", "v"], 600),
    ...                    "g": rng.integers(0, 12, 600)})
    >>> spec, _ = specify_counts(hierfit.spec.formula.parse_formula("y ~ a + (1 | g)"),
    ...                          dd.from_pandas(df, npartitions=3), hierfit.families.get("bernoulli"))
    >>> spec.family.name, spec.design.nobs, int(spec.design.trials.sum())
    ('binomial', 24, 600)
    >>> user_formula(spec.design), spec.design.aggregation["family"]
    ('y ~ a + (1 | g)', 'bernoulli')
    """
    if method not in ("auto", "full", "collapsed"):
        raise HierfitError(f"method must be one of auto, full, collapsed, got {method!r}")
    if method == "collapsed":
        raise HierfitError(f"method='collapsed' applies to Gaussian models; the {fam.name} family is fitted "
                           "from exactly aggregated counts")
    frame, patterns, md = aggregate_counts(ddf, pf, fam, offset)
    rhs = pf.text[pf.text.index("~") + 1:].strip()
    if fam.aggregation == "exposure":
        text, new_fam = f"{SUCC} ~ {rhs} + offset(log({ROWS}))", fam
    else:
        if TRIALS not in frame.columns:  # one trial per row (Bernoulli)
            frame[TRIALS] = frame[ROWS]
        text = f"{SUCC} | trials({TRIALS}) ~ {rhs}"
        new_fam = families.get(families.binomial(link=fam.link_name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        design = build_design(text, frame, data_name=data_name, family=new_fam, offset=offset)
    n_rows = int(frame[ROWS].sum())
    if n_rows < 1:
        raise DataError("no complete rows to aggregate")
    moments = {c: {"mean": v["mean"], "sd": v["sd"]} for c, v in md.numeric.items() if c in patterns}
    restore_row_coding(design, moments)  # scale()/center() with the rows' moments, not the patterns'
    m = _CBIND.match((pf.trials or "").strip())
    trials_cols = [] if pf.trials is None else [m.group(1), m.group(2)] if m else [pf.trials.strip().strip("`")]
    design.n_dropped, design.dropped_by_column = md.n_dropped, dict(md.na_by_column)
    design.summary = DataSummary(nobs=n_rows, x_sd={"mu": _weighted_sd(design, frame[ROWS].to_numpy())},
                                 source=data_name, npartitions=int(ddf.npartitions), aggregated_from=n_rows,
                                 aggregation={"formula": pf.text, "family": fam.name, "trials": trials_cols,
                                              "rows": frame[ROWS].to_numpy(dtype=float), "moments": moments})
    design.data_name = f"{data_name}; {n_rows} rows aggregated exactly into {len(frame)} patterns"
    return specify_design(design, priors=priors, method="full" if method == "full" else "auto",
                          parametrization=parametrization), ddf


# -- what the later stages ask of an aggregated fit ----------------------------------------------------------------

def aggregation(design) -> dict | None:
    """How a design's rows were aggregated (``design.summary.aggregation``), or None for a row-level design.

    Example
    -------
    >>> import hierfit, pandas as pd
    >>> aggregation(hierfit.build_design("y ~ x", pd.DataFrame({"y": [1.0, 2.0, 4.0], "x": [0, 1, 2]}))) is None
    True
    """
    return getattr(design, "aggregation", None)


def user_formula(design) -> str:
    """The formula as the user wrote it (an aggregated design's own formula names the internal count columns).

    Example
    -------
    >>> # user_formula(fit.design) -> 'y ~ a + (1 | g)'   (fit.design.formula.text: 'hierfit_successes | ...')
    """
    agg = aggregation(design)
    return design.formula.text if agg is None else agg["formula"]


def _is_exposure(agg: dict) -> bool:
    return families.get(agg["family"]).aggregation == "exposure"


def row_level_columns(design, columns: list[str]) -> list[str]:
    """The columns new rows need, in the user's terms: the user's trials columns instead of the internal counts.

    Example
    -------
    >>> # row_level_columns(fit.design, ["a", "g", "hierfit_trials"]) -> ['a', 'g', 'n']   (s | trials(n) ~ a + ...)
    """
    agg = aggregation(design)
    if agg is None:
        return list(columns)
    out = []
    for c in columns:
        out.extend(agg["trials"] if c == TRIALS else [] if c in INTERNAL_COLUMNS else [c])
    return list(dict.fromkeys(out))


def row_columns(design, data: pd.DataFrame) -> pd.DataFrame:
    """New rows with the internal columns of an aggregated model, so that each row is predicted as one row.

    A Bernoulli row is one trial, a binomial row has its own trials (the columns of
    ``trials(n)`` or ``cbind(s, f)``, which ``data`` must then have), a Poisson row is one
    row (``offset(log(1))`` = 0).  Row-level designs get ``data`` back unchanged.

    Example
    -------
    >>> # row_columns(fit.design, pd.DataFrame({"a": ["u"], "g": [1]}))["hierfit_trials"].tolist() -> [1.0]
    """
    agg = aggregation(design)
    if agg is None:
        return data
    out = data.copy()
    if _is_exposure(agg):
        out[ROWS] = 1.0
        return out
    cols = list(agg["trials"])
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise DataError(f"newdata lacks column(s) {', '.join(map(repr, missing))} that the model needs")
    if not cols:
        out[TRIALS] = 1.0
        return out
    values = [pd.to_numeric(data[c], errors="coerce") for c in cols]
    na = np.zeros(len(data), dtype=bool)
    for v in values:
        na |= v.isna().to_numpy()
    if na.any():
        raise DataError(f"newdata has missing values in {int(na.sum())} row(s) (columns "
                        f"{', '.join(c for c, v in zip(cols, values) if v.isna().any())})")
    out[TRIALS] = sum(v.to_numpy(dtype=float) for v in values)
    return out


def pattern_rows(design) -> tuple[pd.DataFrame, np.ndarray]:
    """The fitted patterns as rows of the original data, and how many rows each stands for.

    Each pattern row holds its predictor and grouping columns and, for a binomial model,
    its rows' mean trials (``n``, or ``s`` and ``f`` of ``cbind(s, f)``): an average over
    the original rows of anything linear in the trials, or not depending on them, equals
    the average over these rows weighted by the counts.

    Example
    -------
    >>> # frame, w = pattern_rows(fit.design); len(frame) == fit.nobs, w.sum() == fit.design.summary.nobs
    """
    agg = aggregation(design)
    rows = np.asarray(agg["rows"], dtype=float)
    frame = design.frame.drop(columns=[c for c in INTERNAL_COLUMNS if c in design.frame.columns])
    frame = frame.reset_index(drop=True)
    cols = list(agg["trials"])
    if len(cols) == 1:
        frame[cols[0]] = design.trials / rows
    elif len(cols) == 2:  # cbind(s, f): the mean successes and failures per row
        frame[cols[0]] = design.y / rows
        frame[cols[1]] = (design.trials - design.y) / rows
    return frame, rows


def grid_values(design) -> dict[str, float]:
    """Typical values of an aggregated fit's numeric columns: their means over the original rows.

    What ``datagrid`` holds numeric predictors at (the patterns weighted by their rows,
    from the raw columns, so ``scale(k)`` needs no data); the user's trials columns at
    their mean per row; nothing is needed for one trial a row (Bernoulli) or for Poisson
    rows.  An empty dict for row-level fits.

    Example
    -------
    >>> # grid_values(fit.design) -> {'k': 1.34, 'n': 3.0}   for 's | trials(n) ~ a + k + (1 | g)'
    """
    if aggregation(design) is None:
        return {}
    frame, rows = pattern_rows(design)
    return {c: float(np.average(frame[c].to_numpy(dtype=float), weights=rows)) for c in frame.columns
            if pd.api.types.is_numeric_dtype(frame[c].dtype) and not pd.api.types.is_bool_dtype(frame[c].dtype)}


def row_mean_offset(design) -> float:
    """The mean offset over the original rows of an aggregated fit (without the internal ``log(rows)``).

    Example
    -------
    >>> # row_mean_offset(fit.design) -> 0.0   for a Poisson model without an offset of its own
    """
    agg = aggregation(design)
    rows = np.asarray(agg["rows"], dtype=float)
    off = design.mu.offset
    if off is None:
        return 0.0
    own = off - np.log(rows) if _is_exposure(agg) else off
    return float(np.average(own, weights=rows))
