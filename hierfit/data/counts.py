"""Exact aggregation of count models: rows with identical covariates, levels and offset become one count.

When every column on the right of ``~`` (predictors, grouping factors, offset) takes
few distinct values, rows that share all of them share the linear predictor eta,
so their likelihood depends on them only through sums:

* Bernoulli rows -> one binomial count: successes = sum(y), trials = number of rows
  (the product of Bernoulli likelihoods equals the binomial one up to the constant
  binomial coefficient);
* binomial rows ``s | trials(n)`` or ``cbind(s, f)`` -> sum(s) | trials(sum(n));
* Poisson rows -> sum(y) ~ Poisson(m * exp(eta)) with m rows: the same formula with
  ``offset(log(m))`` added (exact up to a constant: the sum of m independent
  Poisson(mu) counts is Poisson(m * mu)).

The engine does the group-by; only the distinct patterns (usually thousands) come
back, and the model is fitted to them in memory.  Default priors scale slopes by the
predictors' sds over the original rows (weighted by the counts), as the row-level
fit would.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from hierfit.errors import DataError, DataWarning, HierfitError
from hierfit import families
from hierfit.spec.design import build_design
from hierfit.spec.formula import parse_formula
from hierfit.spec.specify import specify_design
from hierfit.spec.summaries import DataSummary

__all__ = ["MAX_DISTINCT", "MAX_PATTERNS", "specify_counts", "aggregate_counts"]
#: A numeric predictor with more distinct values than this is treated as continuous (no exact aggregation).
MAX_DISTINCT = 1000
#: At most this many distinct patterns are brought back to fit in memory.
MAX_PATTERNS = 2_000_000

SUCC, TRIALS, ROWS = "hierfit_successes", "hierfit_trials", "hierfit_rows"
_CBIND = re.compile(r"^I\(\((\w+)\) \+ \((\w+)\)\)$")


def _plain(expr: str | None, columns) -> str | None:
    if expr is None:
        return None
    e = expr.strip().strip("`")
    return e if e in columns else None


def aggregate_counts(ddf, pf, fam, offset: str | None = None):
    """The distinct (predictor, level, offset) patterns with summed counts, as a pandas DataFrame.

    Returns ``(frame, pattern_columns, metadata)``; the frame has the pattern columns and
    ``hierfit_successes``, ``hierfit_rows`` and (binomial) ``hierfit_trials``.
    """
    import dask

    from hierfit.data.metadata import scan_metadata

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
    numeric = [c for c in patterns if c not in md.levels and c not in md.bools]
    if numeric:
        counts = dask.compute(*[ddf[c].dropna().nunique_approx() for c in numeric])
        wide = {c: int(k) for c, k in zip(numeric, counts) if int(k) > MAX_DISTINCT}
        if wide:
            desc = ", ".join(f"'{c}' (about {k} distinct values)" for c, k in wide.items())
            raise HierfitError(f"the {fam.name} family has no closed-form marginal likelihood, and exact aggregation "
                               f"into counts needs discrete predictors, but {desc} is continuous; fit it from an "
                               "in-memory pandas DataFrame, or bin the predictor")
    clean = ddf[md.used].dropna()
    sums = {SUCC: clean[succ].astype(float)}
    if trials is not None:
        sums[TRIALS] = clean[trials].astype(float)
    if fail is not None:
        sums[TRIALS] = clean[succ].astype(float) + clean[fail].astype(float)
    work = clean[patterns].assign(**sums, **{ROWS: 1.0})
    agg = work.groupby(patterns, observed=True, dropna=False).sum(split_out=1)
    frame = agg.compute().reset_index()
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
    """
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
    design.n_dropped, design.dropped_by_column = md.n_dropped, dict(md.na_by_column)
    design.summary = DataSummary(nobs=n_rows, x_sd={"mu": _weighted_sd(design, frame[ROWS].to_numpy())},
                                 source=data_name, npartitions=int(ddf.npartitions), aggregated_from=n_rows)
    design.data_name = f"{data_name}; {n_rows} rows aggregated exactly into {len(frame)} patterns"
    if n_rows < 1:
        raise DataError("no complete rows to aggregate")
    return specify_design(design, priors=priors, method="full" if method == "full" else "auto",
                          parametrization=parametrization), ddf
