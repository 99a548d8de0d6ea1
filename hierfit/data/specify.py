"""The specify stage for data held by a data engine: metadata pass -> design -> grouped pass -> Specification.

Gaussian models that the collapsed sampler handles (one grouping factor, or one
nested in another) need only per-level sufficient statistics: the design is built
from the metadata (:mod:`hierfit.data.metadata`) and the statistics come from one
grouped pass (:mod:`hierfit.data.stats`).  Binomial, Bernoulli and Poisson models
whose predictors take few distinct values are aggregated exactly into counts
(:mod:`hierfit.data.counts`) and fitted from those.  Anything else raises a
:class:`~hierfit.errors.HierfitError` that says why it needs in-memory data.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from hierfit.data.metadata import fix_stateful_transforms, formula_columns, scan_metadata, skeleton_frame
from hierfit.data.resident import EngineData, footer_rows, resident_columns
from hierfit.data.sources import check_source_columns, describe_source, open_frame
from hierfit.data.passes import run_pass
from hierfit.data.stats import grouped_stats, response_values, worker_design
from hierfit.errors import DataError, DataWarning, HierfitError
from hierfit import families
from hierfit.spec.design import build_design
from hierfit.spec.formula import ParsedFormula, parse_formula, split_formula
from hierfit.spec.layout import collapsed_layout
from hierfit.spec.predictor import deferred_finite_checks
from hierfit.spec.specify import choose_method, specify_design
from hierfit.spec.summaries import DataSummary

__all__ = ["specify_engine", "IN_MEMORY_ONLY"]

IN_MEMORY_ONLY = ("it needs in-memory data: fit it from a pandas DataFrame (e.g. a sample, or "
                  "ddf.compute() when the rows fit in memory)")


def _response_part(part, design, used) -> tuple[float, float]:
    with np.errstate(all="ignore"):  # non-finite values: the grouped pass counts and refuses them
        y = response_values(part, design, used)
    y = y[np.isfinite(y)]
    return (float(y.min()), float(y.max())) if len(y) else (np.inf, -np.inf)


def _widest(*parts: tuple[float, float]) -> tuple[float, float]:
    return min(p[0] for p in parts), max(p[1] for p in parts)


def _response_range(frames, design, used: list[str]) -> tuple[float, float]:
    """Min and max of a transformed response (``log(y)``) over the rows, from a pass over its columns.

    They place the grouped pass's histogram, which gives the default priors' median
    and MAD as for a plain response column.
    """
    return run_pass(_response_part, frames, used, (worker_design(design), used), _widest, exact=True)


def _offset_part(part, design, used) -> tuple[float, int]:
    from hierfit.spec.evaluation import FORMULA_CONTEXT

    data = design.prepare(part[used].dropna(), finite=False)
    total = 0.0
    with np.errstate(all="ignore"):
        for spec in design.mu.offset_specs:
            total += float(np.asarray(spec.get_model_matrix(data, context=FORMULA_CONTEXT), dtype=float).sum())
    return total, len(data)


def _add_pairs(*parts: tuple[float, int]) -> tuple[float, int]:
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _offset_mean(frames, design, used: list[str]) -> float:
    """The mean of the mean predictor's offset over the fitted rows (``offset="mean"`` of predictions)."""
    total, n = run_pass(_offset_part, frames, used, (worker_design(design), used), _add_pairs)
    return total / max(n, 1)


def _passes(ddf, frames, pf, formulas, response_cols, fam, offset, data_name, method, parametrization):
    """The metadata pass, the frozen design, then the grouped pass (on ``frames``, which may become resident)."""
    md = scan_metadata(frames.passes, formulas, response_cols)
    t1 = time.perf_counter()
    skeleton = skeleton_frame(md, ddf._meta)
    with warnings.catch_warnings(), deferred_finite_checks():  # the grouped pass counts the real rows' values
        warnings.simplefilter("ignore", DataWarning)
        design = build_design(pf, skeleton, data_name=data_name, family=fam, offset=offset)
    fix_stateful_transforms(design, md)
    chosen = choose_method(design, method, parametrization)
    if chosen.name != "collapsed":  # anything else would sample the skeleton's placeholder rows
        why = chosen.reason.split("not collapsible: ")[-1]
        raise HierfitError(f"the collapsed sampler does not apply ({why}); {IN_MEMORY_ONLY}")
    lay = collapsed_layout(design)
    col = pf.response.strip().strip("`")
    if frames.resident is None:  # the grouped pass reads the columns into the workers' memory when they fit
        frames.resident = resident_columns(ddf, md.used, md.nrows)
    y_range = (md.numeric[col]["min"], md.numeric[col]["max"]) if col in md.numeric else \
        _response_range(frames.passes, design, md.used)
    return t1, design, md, grouped_stats(frames.passes, design, lay, md.used, y_range)


def specify_engine(formula, data, family="gaussian", *, priors=None, dpars=None, dispformula=None, offset=None,
                   method: str = "auto", parametrization="auto", data_name: str | None = None):
    """Specification of a model on engine data: ``(spec, EngineData)`` for the collapsed Gaussian path.

    The :class:`~hierfit.data.resident.EngineData` holds the lazy frame and, when the
    formula's columns fit in a quarter of the Dask workers' memory, those columns kept
    there for the residual pass after sampling.  Count families with discrete predictors
    return ``(spec, EngineData)`` whose design holds the aggregated patterns (see
    :mod:`hierfit.data.counts`).

    Example
    -------
    >>> import dask.dataframe as dd, hierfit
    >>> ddf = dd.from_pandas(hierfit.datasets.load("exam"), npartitions=3)
    >>> spec, frames = specify_engine("normexam ~ standLRT + (1 | school)", ddf)
    >>> frames.resident is None   # no distributed cluster: nothing is kept in memory
    True
    >>> spec.method.name, spec.design.nobs, int(spec.design.summary.stats.n.sum())
    ('collapsed', 4059, 4059)
    """
    t0 = time.perf_counter()
    fam = families.get(family)
    formula, dpar_formulas = split_formula(formula, dpars, dispformula, fam)
    if fam.thresholds:
        raise HierfitError(f"the {fam.name} family (ordered categories) has no closed-form marginal likelihood "
                           "for the collapsed sampler; " + IN_MEMORY_ONLY)
    if dpar_formulas:
        raise HierfitError("distributional formulas (e.g. sigma ~ x) make the likelihood depend on every row; "
                           + IN_MEMORY_ONLY)
    if offset is not None and not isinstance(offset, str):
        raise DataError("with data read through a data engine, offset must be an expression of columns "
                        "(e.g. offset='log(exposure)'), not an array of values")
    ddf = open_frame(data)
    data_name = data_name or describe_source(data)
    pf = formula if isinstance(formula, ParsedFormula) else parse_formula(formula)
    formulas = [pf] + ([parse_formula("~ " + offset, response=False)] if offset else [])
    # files that disagree about a column (even the first file lacking it): refused from their footers, before
    # the columns may be copied into the workers' memory, where the files are no longer seen
    check_source_columns(ddf, formula_columns(formulas))
    from hierfit.data.counts import specify_counts

    if fam.aggregation is not None:
        spec, ddf = specify_counts(pf, ddf, fam, priors=priors, offset=offset, method=method,
                                   parametrization=parametrization, data_name=data_name)
        return spec, EngineData(ddf)
    if method == "full":
        raise HierfitError("method='full' samples every group effect from the rows; " + IN_MEMORY_ONLY)
    if not (isinstance(parametrization, str) and parametrization == "auto"):
        raise HierfitError(f"parametrization={parametrization!r} samples the group effects with NUTS from the rows "
                           "(the collapsed sampler integrates them out); " + IN_MEMORY_ONLY)
    if any(fn in pf.response for fn in ("scale(", "center(")):
        raise HierfitError(f"the response {pf.response} is standardised with the mean/sd of all rows; "
                           "standardise the column beforehand, or " + IN_MEMORY_ONLY)
    response_cols = {t.text for t in pf.variables if t.pos < pf.text.index("~")}
    used = formula_columns(formulas)
    rows = footer_rows(ddf) if all(c in ddf.columns for c in used) else None
    # Parquet's footers give the row count: columns that fit are read into the workers once, by the first pass
    frames = EngineData(ddf, resident_columns(ddf, used, rows) if rows is not None else None)
    try:
        t1, design, md, (stats, response, x_sd, facts) = _passes(ddf, frames, pf, formulas, response_cols, fam,
                                                                 offset, data_name, method, parametrization)
    except BaseException:
        frames.release()  # the workers may drop the columns at once
        raise
    nobs = int(stats.n.sum())
    t2 = time.perf_counter()
    for blk in design.blocks:
        if blk.n_levels * blk.n_coefs >= nobs:
            raise DataError(f"number of observations ({nobs}) <= number of random effects ({blk.n_levels} levels x "
                            f"{blk.n_coefs} coefficients) for term {blk.term.text}; the term is not identifiable "
                            "from the residual")
    if response.sd == 0:
        raise DataError(f"response '{pf.response}' is constant; there is nothing to model")
    design.n_dropped, design.dropped_by_column = md.n_dropped, dict(md.na_by_column)
    offset_mean = _offset_mean(frames.passes, design, md.used) if design.mu.offset_specs else None
    design.summary = DataSummary(nobs=nobs, offset_mean=offset_mean, response=response, x_sd={"mu": x_sd},
                                 stats=stats, source=data_name,
                                 npartitions=int(facts["npartitions"]),
                                 timing={"metadata_pass": t1 - t0, "stats_pass": t2 - t1},
                                 workers=list(facts["workers"]),
                                 column_moments={c: dict(v) for c, v in md.numeric.items() if c not in response_cols})
    spec = specify_design(design, priors=priors, method=method, parametrization=parametrization)
    return spec, frames

