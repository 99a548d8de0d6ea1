"""Stage 2 of the pipeline: data + parsed formula -> design.

:func:`build_design` is a pure function of (formula, data): it checks and prepares
the data (:mod:`hierfit.spec.columns`) and builds one linear predictor per formula
(:mod:`hierfit.spec.predictor`).  It returns a
:class:`Design`: the response, the fixed-effect matrix X with lme4's column
names, one :class:`GroupBlock` per random-effect term (its Z columns, the group
index of every row, level and coefficient names) and a frozen
:class:`DesignSpec` that re-codes new data exactly as the training data
(``scale()`` keeps the training mean and sd, factors keep their levels).

Group effects are never expanded into a dense n x (levels * coefficients)
matrix: a block stores the n x q slope values and the n group indices.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hierfit.errors import DataError, DataWarning, FormulaError, warn
from hierfit.spec.columns import (RESERVED_COLUMNS, check_joined_labels, check_labels, check_values, columns_inside,
                                  exact_numbers, level_label, normalize_columns, numeric_objects,
                                  warn_normalized_matches)
from hierfit.spec.evaluation import FORMULA_CONTEXT, FUNCTION_NAMES, evaluate_terms
from hierfit.spec.formula import ParsedFormula, parse_formula
from hierfit.spec.predictor import (FACTOR_TERM, GroupBlock, Predictor, build_predictor, check_finite, lme4_name,
                                    r_sort)

__all__ = ["GroupBlock", "Predictor", "Design", "build_design", "r_sort", "lme4_name", "FACTOR_TERM", "FORMULA_CONTEXT",
           "uses_column", "check_columns", "check_dtypes", "level_label"]


@dataclass
class Design:
    """The inspectable output of :func:`build_design`.

    ``predictors["mu"]`` is the mean's linear predictor; distributional formulas
    (``sigma ~ x``) add ``predictors["sigma"]``.  ``X``, ``fixed_names`` and ``blocks``
    are shortcuts to the mean's.

    Example
    -------
    >>> import hierfit
    >>> d = build_design("normexam ~ standLRT + sex + (standLRT | school)", hierfit.datasets.load("exam"))
    >>> d.X.shape, d.fixed_names, d.blocks[0].coefs, d.blocks[0].n_levels
    ((4059, 3), ['(Intercept)', 'standLRT', 'sexM'], ['(Intercept)', 'standLRT'], 65)
    """

    formula: ParsedFormula
    family: object
    response: str
    y: np.ndarray
    trials: np.ndarray | None
    predictors: dict[str, Predictor]
    categories: dict[str, list]
    trials_spec: object
    data_name: str
    n_dropped: int = 0
    dropped_by_column: dict[str, int] = field(default_factory=dict)
    offset_arg: str | None = None
    #: The used data columns of the rows used (categoricals with their levels), on the caller's index.
    frame: pd.DataFrame | None = None
    #: The caller's full row index (rows dropped for missing values included).
    data_index: pd.Index | None = None
    #: Which of the caller's rows were used (False: dropped for missing values).
    used_rows: np.ndarray | None = None
    #: Offset values given as an array (``offset=[...]``), for the rows used.
    offset_values: np.ndarray | None = None
    addition: object = None  # hierfit.spec.addition.Addition: weights, cens, se (brms's addition terms)
    weights_arg: str | None = None
    #: Set for data held by a data engine (:mod:`hierfit.data`): statistics that stand in for the rows.
    summary: object | None = None
    #: The response's ordered categories (ordinal families; ``y`` holds their codes 0..K-1), else None.
    response_levels: list | None = None

    @property
    def row_index(self) -> pd.Index:
        """Index labels (the caller's) of the rows the model used."""
        return self.frame.index if self.frame is not None else pd.RangeIndex(self.nobs)

    @property
    def mu(self) -> Predictor:
        return self.predictors["mu"]

    @property
    def X(self) -> np.ndarray:  # noqa: N802
        return self.mu.X

    @property
    def fixed_names(self) -> list[str]:
        return self.mu.fixed_names

    @property
    def blocks(self) -> list[GroupBlock]:
        return self.mu.blocks

    @property
    def all_blocks(self) -> list[GroupBlock]:
        return [b for p in self.predictors.values() for b in p.blocks]

    @property
    def rows_held(self) -> bool:
        """False when the rows are placeholders: the data stayed in a data engine, which summarised them
        (``summary``: the count, the collapsed model's statistics, column moments)."""
        return self.summary is None or self.summary.stats is None

    def engine_moments(self, column: str) -> dict[str, float] | None:
        """Mean, sd, min and max of a numeric ``column`` over the fitted rows as a data engine measured them, when
        the rows stayed there (None when the design holds its rows, or the engine did not measure it)."""
        return None if self.rows_held else self.summary.column_moments.get(column)

    @property
    def aggregation(self) -> dict | None:
        """How the rows were aggregated exactly into count patterns by a data engine (``hierfit.data.counts``),
        or None when the design's rows are rows."""
        return getattr(self.summary, "aggregation", None) if self.summary is not None else None

    @property
    def nobs(self) -> int:
        # a design built for engine data holds placeholder rows: its statistics know the count
        return len(self.y) if self.rows_held else self.summary.nobs

    @property
    def has_intercept(self) -> bool:
        return self.mu.has_intercept

    @property
    def ngrps(self) -> dict[str, int]:
        """Number of levels per grouping factor, lme4 names, in lme4's order."""
        out: dict[str, int] = {}
        for b in sorted(self.all_blocks, key=lambda b: -b.n_levels):
            out.setdefault(b.factor, b.n_levels)
        return out

    def prepare(self, data: pd.DataFrame, finite: bool = True) -> pd.DataFrame:
        """Convert categorical columns of new data to the training levels; unseen levels raise.

        Numeric columns must hold finite numbers; with ``finite=False`` infinite values
        pass through (a data engine's pass counts them in the coded columns instead).
        """
        data, _ = normalize_columns(data.copy(), "newdata")
        variables = {t.text for p in self.predictors.values() for t in p.formula.variables}
        if isinstance(self.offset_arg, str) and self.offset_arg != "<array>":
            variables |= {t.text for t in parse_formula("~ " + self.offset_arg, response=False).variables}
        shadowing = [c for c in data.columns if isinstance(c, str) and c not in variables
                     and (c in FUNCTION_NAMES or c.startswith("__FORMULAIC"))]
        data = data.drop(columns=shadowing)  # unused columns that would hide a function from the formula
        for col, cats in self.categories.items():
            if col not in data.columns:
                continue
            values = data[col]
            if isinstance(values.dtype, pd.CategoricalDtype):
                # the conversion below applied to the categories once, then to the codes: the same result as
                # converting every value (as objects), at the cost of an index lookup
                codes = values.cat.codes.to_numpy()
                used_codes = np.unique(codes[codes >= 0])
                present = values.cat.categories[used_codes].astype(object)
                _check_levels(col, present, cats)
                remap = np.full(len(values.cat.categories) + 1, -1, dtype=np.int64)  # code -1 (NA) stays -1
                remap[used_codes] = pd.Categorical(present, categories=cats).codes
                data[col] = pd.Categorical.from_codes(remap[codes], dtype=pd.CategoricalDtype(cats))
                continue
            _check_levels(col, values.dropna().unique(), cats)
            data[col] = pd.Categorical(values, categories=cats)
        dup = data.columns[data.columns.duplicated()].unique().tolist()
        if dup:
            raise DataError(f"newdata has duplicated column name(s): {', '.join(map(repr, dup))}")
        texts = [t for p in self.predictors.values()
                 for t in [p.formula.fixed, *(g.expr for g in p.formula.groups), *p.formula.offsets]]
        if isinstance(self.offset_arg, str) and self.offset_arg != "<array>":
            texts.append(self.offset_arg)
        for col in data.columns:
            if isinstance(col, str) and col not in self.categories and any(uses_column(t, col) for t in texts):
                data[col] = _numeric_newdata(data[col], col, finite)
        return data


def _check_levels(col: str, present, cats) -> None:
    unseen = sorted({level_label(v) for v in present} - {level_label(c) for c in cats})
    if unseen:
        raise DataError(
            f"column '{col}' has level(s) {', '.join(map(repr, unseen))} not seen when fitting "
            f"(known levels: {', '.join(map(repr, map(level_label, cats)))})"
        )


def _numeric_newdata(s: pd.Series, col: str, finite: bool = True) -> pd.Series:
    """A numeric predictor column of new data as real numbers, or a DataError naming the problem."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s
    if s.dtype == object and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                                 for v in s):
        s = s.astype(float)
    if pd.api.types.is_complex_dtype(s.dtype):
        raise DataError(f"newdata column '{col}' holds complex numbers; it was real-valued when fitting")
    if not pd.api.types.is_numeric_dtype(s.dtype):
        example = next((v for v in s.dropna() if not isinstance(v, (int, float, np.integer, np.floating))), None)
        raise DataError(f"newdata column '{col}' must be numeric, as it was when fitting; got {s.dtype} values "
                        f"such as {example!r}")
    bad = ~np.isfinite(np.asarray(s, dtype=float)) if finite else np.zeros(0, dtype=bool)
    if bad.any():
        raise DataError(f"newdata column '{col}' has {int(bad.sum())} infinite value(s)")
    return s


def _check_columns(pf: ParsedFormula, data: pd.DataFrame) -> None:
    names = set(map(str, data.columns))
    for tok in pf.variables:
        if tok.text in names:
            continue
        close = difflib.get_close_matches(tok.text, list(names), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        spaced = [n for n in sorted(names) if n != tok.text and tok.text in re.split(r"[^\w.]+", n)]
        if spaced:
            hint = f"; names with spaces or symbols go in backticks, like R: `{spaced[0]}`"
        raise FormulaError(
            f"unknown column '{tok.text}'{hint} (the data has: {', '.join(sorted(names)[:12])}"
            f"{', ...' if len(names) > 12 else ''})",
            pf.text,
            tok.pos,
            tok.end - tok.pos,
        )


def _validate_frame(data) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        try:
            data = pd.DataFrame(data)
        except Exception as err:  # noqa: BLE001
            raise DataError(f"data must be a pandas DataFrame (or convertible to one), got {type(data).__name__}") from err
    if data.shape[0] == 0:
        raise DataError("data is empty (0 rows)")
    bad = [c for c in data.columns if not isinstance(c, str)]
    if bad:
        raise DataError(
            f"column names must be strings; got {', '.join(repr(c) for c in bad[:5])} "
            "(rename them, e.g. data.columns = data.columns.astype(str))"
        )
    dup = data.columns[data.columns.duplicated()].unique().tolist()
    if dup:
        raise DataError(f"duplicated column name(s): {', '.join(map(repr, dup))}")
    return data


def _check_dtypes(data: pd.DataFrame, columns: list[str]) -> None:
    """Raise for columns that a formula cannot use as numbers (dates, durations, complex numbers)."""
    for col in columns:
        kind = getattr(data[col].dtype, "kind", "O")
        if kind == "c":
            raise DataError(f"column '{col}' holds complex numbers; hierfit models real numbers")
        if kind in "mM":
            what = "dates/times" if kind == "M" else "time differences"
            raise DataError(f"column '{col}' holds {what} ({data[col].dtype}); convert it to numbers first "
                            "(e.g. days since the first date)")


def _drop_missing(pf: ParsedFormula, data: pd.DataFrame, used: list[str]):
    na = data[used].isna()
    by_col = {c: int(na[c].sum()) for c in used if na[c].any()}
    mask = na.any(axis=1).to_numpy()
    n_drop = int(mask.sum())
    if n_drop == len(data):
        raise DataError(
            f"all {len(data)} rows have a missing value in a column the formula uses "
            f"({', '.join(f'{c}: {n} NA' for c, n in by_col.items())})"
        )
    if n_drop:
        detail = ", ".join(f"{c}: {n}" for c, n in by_col.items())
        warn(f"dropped {n_drop} of {len(data)} row(s) with missing values ({detail}), like R's na.omit", DataWarning)
        data = data.loc[~mask].reset_index(drop=True)
    return data, n_drop, by_col, ~mask


def _categorize(data: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, dict[str, list]]:
    """Turn string/bool/category columns into pandas Categoricals with R's level order.

    Unused levels of a pandas Categorical are dropped (like ``droplevels``).
    """
    cats: dict[str, list] = {}
    data = data.copy()
    for col in columns:
        s = data[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            present = set(s.dropna().unique())
            levels = [c for c in s.cat.categories if c in present]
        elif s.dtype == bool or s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            levels = r_sort(s.dropna().unique())
        else:
            continue
        cats[col] = levels
        data[col] = pd.Categorical(s.astype(object), categories=levels)
    return data, cats


def uses_column(text: str, column: str) -> bool:
    """Whether formula text ``text`` mentions data column ``column`` (as a whole name).

    Example
    -------
    >>> uses_column("log(BroodSize) + x", "BroodSize"), uses_column("x2", "x")
    (True, False)
    """
    return re.search(r"(?<![\w.`])`?" + re.escape(column) + r"`?(?![\w.`])", text) is not None


def _check_overflow(pf: ParsedFormula, raw: pd.DataFrame, y: np.ndarray, trials: np.ndarray | None) -> None:
    """DataError when the response's arithmetic would wrap around in its columns' own integer types."""
    lhs = pf.text[: pf.text.index("~")]
    narrow = [t.text for t in pf.variables if t.pos < len(lhs) and t.text in raw.columns
              and pd.api.types.is_integer_dtype(raw[t.text].dtype) and raw[t.text].dtype.itemsize < 8]
    if not narrow:
        return
    with np.errstate(all="ignore"):
        checks = [(pf.response, y)] + ([(pf.trials, trials)] if trials is not None else [])
        for expr, exact in checks:
            native, _ = _evaluate_vector(expr, raw, pf, "response")
            if not np.array_equal(native, exact):
                cols = ", ".join(f"'{c}' ({raw[c].dtype})" for c in narrow)
                raise DataError(f"integer overflow: '{expr}' does not fit the integer type of column(s) {cols}; "
                                "convert them to int64 or float, e.g. data[col].astype('int64')")


def _evaluate_vector(expr: str, data: pd.DataFrame, pf: ParsedFormula, what: str) -> tuple[np.ndarray, object]:
    if re.fullmatch(r"\s*\d+(\.\d*)?\s*", expr):
        return np.full(len(data), float(expr)), None
    mm = evaluate_terms("0 + " + expr, data, pf, what)
    if mm.shape[1] != 1:
        raise DataError(f"{what} '{expr}' is not numeric (it has {mm.shape[1]} categories)")
    try:
        values = np.asarray(mm.iloc[:, 0], dtype=float)
    except (TypeError, ValueError) as err:
        raise DataError(f"{what} '{expr}' is not numeric ({err})") from err
    values = check_finite(values[:, None], [expr], what)[:, 0]
    return values, mm.model_spec


def build_design(formula: str | ParsedFormula, data: pd.DataFrame, data_name: str | None = None,
                 family="gaussian", dpars: dict[str, str] | None = None, offset=None, weights=None) -> Design:
    """Build the design of a mixed model: response, X, and one block per group term.

    Parameters
    ----------
    formula : str or ParsedFormula
        lme4/brms formula, e.g. ``"normexam ~ standLRT + sex + (standLRT | school)"``.
    data : pandas.DataFrame
        The data.  Rows with missing values in a used column are dropped with a warning.
    data_name : str, optional
        Name shown in the summary (defaults to ``data.attrs["name"]`` or ``"data"``).
    family : str or Family
        Decides the response checks (counts, 0/1, positive) and the group-size checks.
    dpars : dict, optional
        Formulas for distributional parameters, e.g. ``{"sigma": "~ sOccasion"}``.
    offset : str or array, optional
        An expression of columns (``"log(BroodSize)"``) or values added to the linear predictor.
    weights : str or array, optional
        Log-likelihood weights (brms's ``y | weights(w)``): a column expression or one value per row.
    weights : str or array, optional
        Log-likelihood weights (brms's ``y | weights(w)``): a column expression or one value per row.

    Returns
    -------
    Design

    Example
    -------
    >>> import hierfit
    >>> d = build_design("normexam ~ standLRT + sex + (1 | school/student)", hierfit.datasets.load("exam"))
    >>> d.ngrps
    {'student:school': 4055, 'school': 65}
    """
    from hierfit import families
    from hierfit.spec.addition import addition_family, check_weights_array, evaluate_addition

    pf = formula if isinstance(formula, ParsedFormula) else parse_formula(formula)
    fam = addition_family(families.get(family), pf)
    dpar_pfs: dict[str, ParsedFormula] = {}
    for name, text in (dpars or {}).items():
        fam.dpar(name)  # raises for parameters the family does not have
        dpar_pfs[name] = text if isinstance(text, ParsedFormula) else parse_formula(text, response=False)
    data = _validate_frame(data)
    data_name = data_name or str(data.attrs.get("name", "data"))
    data, originals = normalize_columns(data)
    offset_pf = None
    offset_array = None
    if isinstance(offset, str):
        offset_pf = parse_formula("~ " + offset, response=False)
    elif offset is not None:
        try:
            offset_array = np.asarray(offset, dtype=float).ravel()
        except (TypeError, ValueError) as err:
            raise DataError(f"offset must be numbers (or a string naming columns, e.g. 'log(n)'): {err}") from err
        if offset_array.shape[0] != len(data):
            raise DataError(f"offset has {offset_array.shape[0]} values but the data has {len(data)} rows")
        if not np.isfinite(offset_array).all():
            raise DataError(f"offset has {int((~np.isfinite(offset_array)).sum())} missing or infinite value(s)")
    weights_pf = parse_formula("~ " + weights, response=False) if isinstance(weights, str) else None
    weights_array = None if weights is None or weights_pf is not None else check_weights_array(weights, len(data))
    formulas = [pf] + list(dpar_pfs.values()) + ([offset_pf] if offset_pf else []) + \
        ([weights_pf] if weights_pf else [])
    for f in formulas:
        _check_columns(f, data)
        warn_normalized_matches(f, originals)
    used = list(dict.fromkeys(t.text for f in formulas for t in f.variables))
    group_cols = {c for f in formulas for c in f.group_factors}
    reserved = [c for c in used if c in RESERVED_COLUMNS]
    if reserved:
        raise DataError(f"data column {reserved[0]!r} has the name of the model's intercept column; rename it "
                        f"(e.g. data.rename(columns={{{reserved[0]!r}: 'intercept_'}}))")
    data = data[used]  # formulaic sees only the columns the formula names
    for col in used:
        check_values(data, col)
        check_labels(data, col)
    for f in formulas:
        for g in f.groups:
            check_joined_labels(data, g.factors, g.name)

    for col in group_cols:  # grouping factors: non-integer floats are not labels
        s = data[col]
        if pd.api.types.is_float_dtype(s.dtype):
            vals = s.dropna().to_numpy()
            bad = vals[~(np.isfinite(vals) & (vals == np.round(vals)))]
            if len(bad):
                f = next(f for f in formulas if col in f.group_factors)
                tok = next(t for t in f.variables if t.text == col)
                raise FormulaError(
                    f"grouping variable '{col}' holds non-integer numbers (e.g. {bad[0]!r}); "
                    "group ids must be labels or integers", f.text, tok.pos, tok.end - tok.pos)

    data_index = data.index
    data, n_drop, by_col, keep = _drop_missing(pf, data, used)
    if offset_array is not None:
        offset_array = offset_array[keep]
    if weights_array is not None:
        weights_array = weights_array[keep]
    model_texts = [f.fixed for f in formulas] + \
        [g.expr for f in formulas for g in f.groups] + [o for f in formulas for o in f.offsets] + \
        [f.trials or "" for f in formulas]
    predictors_cols = [c for c in used if any(uses_column(t, c) for t in model_texts)]
    numbers = [c for c in used if c in predictors_cols or c not in group_cols]
    data = numeric_objects(data.copy(), numbers)
    raw = data
    data = exact_numbers(data.copy(), numbers, factors=columns_inside(formulas, "C"))
    data, cats = _categorize(data, predictors_cols)
    _check_dtypes(data, [c for c in used if c not in cats and (c in predictors_cols or c not in group_cols)])

    lhs_end = pf.text.index("~")
    for tok in pf.variables:  # a boolean response is 0/1 (bernoulli), not a factor
        if tok.pos < lhs_end and tok.text not in cats and data[tok.text].dtype == bool:
            data[tok.text] = data[tok.text].astype(float)
    frame = data[used].set_axis(data_index[keep])
    response_levels = None
    if fam.thresholds:  # an ordered categorical response: codes 0..K-1, labels kept
        if pf.response not in data.columns:
            raise DataError(f"the {fam.name} family's response must be a data column (an ordered Categorical or "
                            f"integers), not the expression '{pf.response}'")
        y, response_levels = fam.response_codes(data[pf.response], pf.response)
    else:
        y, _ = _evaluate_vector(pf.response, data, pf, "response")
    trials, trials_spec = (None, None)
    if pf.trials is not None:
        trials, trials_spec = _evaluate_vector(pf.trials, data, pf, "trials")
    if response_levels is None:
        _check_overflow(pf, raw, y, trials)
    fam.validate(y, trials, pf.response)
    addition = evaluate_addition(pf, data, fam, lambda e, what: _evaluate_vector(e, data, pf, what),
                                 weights=weights if weights_pf is not None else weights_array, y=y)
    if fam.location_scale and np.ptp(y) == 0:
        raise DataError(f"response '{pf.response}' is constant (every value is {y[0]:g}); there is nothing to model")
    sd_y = float(np.std(y))
    if fam.link_name == "identity" and (sd_y > 1e6 or 0 < sd_y < 1e-6):
        warn(f"response '{pf.response}' has sd {sd_y:.3g}, a very large or tiny scale for the default priors and "
             f"the sampler; consider rescaling it, e.g. scale({pf.response}) or a change of units", DataWarning)

    predictors = {"mu": build_predictor("mu", pf, data, nobs_check=fam.confounds_observation_effects
                                        and "sigma" not in dpar_pfs and pf.addition_term("se") is None)}
    for name, dpf in dpar_pfs.items():
        predictors[name] = build_predictor(name, dpf, data, nobs_check=False)
    mu = predictors["mu"]
    if response_levels is not None:
        if not mu.has_intercept:
            raise FormulaError(f"the {fam.name} family needs the formula's intercept: it becomes the "
                               f"{len(response_levels) - 1} ordered thresholds (remove '0 +' / '- 1')", pf.text)
        mu.use_thresholds(len(response_levels) - 1)
    if offset_pf is not None:
        extra = build_predictor("mu", parse_formula(f"~ 0 + offset({offset})", response=False), data, False)
        mu.offset = extra.offset if mu.offset is None else mu.offset + extra.offset
        mu.offset_specs = mu.offset_specs + extra.offset_specs
    elif offset_array is not None:
        mu.offset = offset_array if mu.offset is None else mu.offset + offset_array
    return Design(formula=pf, family=fam, response=pf.response, y=y, trials=trials, predictors=predictors,
                  categories=cats, trials_spec=trials_spec, data_name=data_name, n_dropped=n_drop,
                  dropped_by_column=by_col, frame=frame, data_index=data_index, used_rows=keep,
                  offset_values=offset_array,
                  offset_arg=offset if isinstance(offset, str) else (None if offset is None else "<array>"),
                  addition=addition, weights_arg=weights if isinstance(weights, str) else None,
                  response_levels=response_levels)


#: Public names of the checks that data engines (hierfit.data) run on their metadata.
check_columns = _check_columns
check_dtypes = _check_dtypes
