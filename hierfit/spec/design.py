"""Stage 2 of the pipeline: data + parsed formula -> design.

:func:`build_design` is a pure function of (formula, data).  It returns a
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
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hierfit.errors import DataError, DataWarning, FormulaError, warn
from hierfit.spec.formula import GroupTerm, ParsedFormula, parse_formula

__all__ = ["GroupBlock", "Predictor", "Design", "build_design", "r_sort", "FORMULA_CONTEXT"]


def _log(x, base=None):
    """R's ``log(x, base)``: natural logarithm, or to the given base."""
    return np.log(x) if base is None else np.log(x) / np.log(base)


def _unary(ufunc):
    """Wrap a numpy ufunc so that a formula cannot pass a second argument (numpy's ``out=``)."""

    def fun(x):
        return ufunc(x)

    fun.__name__ = ufunc.__name__
    return fun


#: Functions that formulas can call, by their R names.
FORMULA_CONTEXT = {
    "log": _log,
    "log10": _unary(np.log10),
    "log2": _unary(np.log2),
    "log1p": _unary(np.log1p),
    "exp": _unary(np.exp),
    "sqrt": _unary(np.sqrt),
    "abs": _unary(np.abs),
}

_FACTOR_TERM = re.compile(r"^(.*)\[(?:T\.)?(.*)\]$")


def r_sort(values) -> list:
    """Sort factor levels the way R does: numbers numerically, strings case-insensitively.

    Example
    -------
    >>> r_sort(["Chevroux", "ChEsard", "Champmartin"])
    ['Champmartin', 'ChEsard', 'Chevroux']
    >>> r_sort([10, 9, 1])
    [1, 9, 10]
    """
    vals = list(values)
    if all(isinstance(v, (bool, np.bool_)) for v in vals):
        return sorted(vals)
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in vals):
        return sorted(vals)
    return sorted(vals, key=lambda s: (str(s).casefold(), str(s).swapcase()))


def _level_label(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def lme4_name(column: str) -> str:
    """Translate a formulaic column name to lme4's (``sex[T.M]`` -> ``sexM``).

    Example
    -------
    >>> lme4_name("Intercept"), lme4_name("sex[T.M]"), lme4_name("x:sex[T.M]"), lme4_name("I(x ** 2)")
    ('(Intercept)', 'sexM', 'x:sexM', 'I(x^2)')
    """
    if column == "Intercept":
        return "(Intercept)"
    parts = []
    for part in column.split(":"):
        m = _FACTOR_TERM.match(part)
        if m:
            level = m.group(2)
            level = {"True": "TRUE", "False": "FALSE"}.get(level, level)
            parts.append(m.group(1).strip("`") + level)
        elif part.startswith("I("):
            parts.append(part.replace(" ** ", "^").replace("**", "^"))  # R writes powers as I(x^2)
        else:
            parts.append(part)
    return ":".join(parts)


def _make_unique(names: list[str], sep: str = ".") -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}{sep}{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out


@dataclass
class GroupBlock:
    """One random-effect term after expansion (``||`` gives one block per coefficient).

    Attributes
    ----------
    name : str
        lme4's group name in VarCorr (``school``, ``school.1``, ``student:school``).
    key : str
        An identifier used in posterior variable names (``r_school``, ``sd_school_1``).
    factor : str
        The grouping factor's name shared by all blocks of that factor (``school``).
    factors : tuple of str
        Data columns that define the groups.
    coefs : list of str
        Coefficient names in lme4 spelling (``(Intercept)``, ``standLRT``).
    levels : list of str
        Level labels, in R's order.
    index : ndarray of int, shape (n,)
        Level of each row.
    Z : ndarray, shape (n, len(coefs))
        The row's value for each coefficient (1 for intercepts).
    correlated : bool
        Whether the coefficients get an LKJ correlation.
    expr : str
        Formula text of the term's left side (for re-coding new data).
    columns : list of str
        formulaic column names selected from ``expr`` (a subset after ``||``).
    """

    name: str
    key: str
    factor: str
    factors: tuple[str, ...]
    coefs: list[str]
    levels: list[str]
    index: np.ndarray
    Z: np.ndarray
    correlated: bool
    expr: str
    columns: list[str]
    term: GroupTerm
    spec_index: int = 0
    dpar: str = "mu"

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_coefs(self) -> int:
        return len(self.coefs)

    @property
    def is_correlated(self) -> bool:
        """True when the block has an LKJ correlation (correlated and >= 2 coefficients)."""
        return self.correlated and self.n_coefs >= 2


@dataclass
class Predictor:
    """One linear predictor: the mean's (``dpar="mu"``) or a distributional parameter's (``"sigma"``).

    Holds X with lme4 column names, the group blocks, the offset, and formulaic's
    frozen specs that re-code new data.
    """

    dpar: str
    formula: ParsedFormula
    X: np.ndarray
    fixed_names: list[str]
    blocks: list[GroupBlock]
    offset: np.ndarray | None
    fixed_spec: object
    fixed_columns: list[str]
    slope_specs: list[object]
    offset_specs: list[object]

    @property
    def has_intercept(self) -> bool:
        return "(Intercept)" in self.fixed_names

    def var(self, base: str) -> str:
        """Posterior variable name: ``b`` for the mean, ``b_sigma`` for sigma's predictor."""
        return base if self.dpar == "mu" else f"{base}_{self.dpar}"

    def dim(self, base: str) -> str:
        """Dimension name: ``coef`` for the mean, ``sigma__coef`` for sigma's predictor."""
        return base if self.dpar == "mu" else f"{self.dpar}__{base}"

    def label(self, coef: str) -> str:
        """Coefficient label in tables: ``standLRT``, or ``sigma_sOccasion`` for sigma's predictor."""
        return coef if self.dpar == "mu" else f"{self.dpar}_{coef}"

    def recode(self, data: pd.DataFrame, keep: set[str] | None = None) -> dict:
        """X, group blocks and offset of new (already prepared) data, with the training coding.

        Blocks whose key is not in ``keep`` (when given) are returned as None.
        """
        from formulaic.errors import FormulaicError

        try:
            mm = self.fixed_spec.get_model_matrix(data, context=FORMULA_CONTEXT) if self.fixed_columns else None
            X = np.asarray(mm[self.fixed_columns], dtype=float) if mm is not None else np.zeros((len(data), 0))
            blocks = []
            for blk in self.blocks:
                if keep is not None and blk.key not in keep:
                    blocks.append(None)
                    continue
                smm = self.slope_specs[blk.spec_index].get_model_matrix(data, context=FORMULA_CONTEXT)
                Z = np.asarray(smm[blk.columns], dtype=float)
                labels = _group_labels(data, blk.factors)
                lookup = {lev: i for i, lev in enumerate(blk.levels)}
                index = np.array([lookup.get(lab, -1) for lab in labels], dtype=np.int64)
                blocks.append((Z, index, labels))
            offset = None
            for spec in self.offset_specs:
                col = np.asarray(spec.get_model_matrix(data, context=FORMULA_CONTEXT), dtype=float)[:, 0]
                offset = col if offset is None else offset + col
        except (FormulaicError, KeyError, ValueError, TypeError) as err:
            raise DataError(f"cannot re-code the new data for the {self.dpar} predictor: {err}") from err
        return {"X": X, "blocks": blocks, "offset": offset}


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
    def nobs(self) -> int:
        return len(self.y)

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

    def prepare(self, data: pd.DataFrame) -> pd.DataFrame:
        """Convert categorical columns of new data to the training levels; unseen levels raise."""
        data = data.copy()
        for col, cats in self.categories.items():
            if col not in data.columns:
                continue
            values = data[col]
            if isinstance(values.dtype, pd.CategoricalDtype):
                values = values.astype(object)
            unseen = sorted({_level_label(v) for v in values.dropna().unique()} - {_level_label(c) for c in cats})
            if unseen:
                raise DataError(
                    f"column '{col}' has level(s) {', '.join(map(repr, unseen))} not seen when fitting "
                    f"(known levels: {', '.join(map(repr, map(_level_label, cats)))})"
                )
            data[col] = pd.Categorical(values, categories=cats)
        dup = data.columns[data.columns.duplicated()].unique().tolist()
        if dup:
            raise DataError(f"newdata has duplicated column name(s): {', '.join(map(repr, dup))}")
        texts = [t for p in self.predictors.values()
                 for t in [p.formula.fixed, *(g.expr for g in p.formula.groups), *p.formula.offsets]]
        if isinstance(self.offset_arg, str) and self.offset_arg != "<array>":
            texts.append(self.offset_arg)
        for col in data.columns:
            if isinstance(col, str) and col not in self.categories and any(_uses(t, col) for t in texts):
                data[col] = _numeric_newdata(data[col], col)
        return data


def _numeric_newdata(s: pd.Series, col: str) -> pd.Series:
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
    bad = ~np.isfinite(np.asarray(s, dtype=float))
    if bad.any():
        raise DataError(f"newdata column '{col}' has {int(bad.sum())} infinite value(s)")
    return s


def _group_labels(data: pd.DataFrame, factors: tuple[str, ...]) -> list[str]:
    cols = [data[f].map(_level_label).astype(str).to_numpy() for f in factors]
    if len(cols) == 1:
        return list(cols[0])
    return [":".join(parts) for parts in zip(*cols)]


def _group_levels(data: pd.DataFrame, factors: tuple[str, ...], labels: list[str]) -> list[str]:
    per_factor = []
    for f in factors:
        s = data[f]
        if isinstance(s.dtype, pd.CategoricalDtype):
            order = [c for c in s.cat.categories if c in set(s.dropna())]
        else:
            order = r_sort(s.dropna().unique())
        per_factor.append({_level_label(v): i for i, v in enumerate(order)})
    uniq = set(labels)
    if len(factors) == 1:
        return sorted(uniq, key=lambda lab: per_factor[0][lab])
    return sorted(uniq, key=lambda lab: tuple(per_factor[i][p] for i, p in enumerate(lab.split(":"))))


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


def _uses(text: str, column: str) -> bool:
    return re.search(r"(?<![\w.`])`?" + re.escape(column) + r"`?(?![\w.`])", text) is not None


def _model_matrix(text: str, data: pd.DataFrame, pf: ParsedFormula, what: str):
    from formulaic import model_matrix
    from formulaic.errors import FormulaicError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model_matrix(text, data, context=FORMULA_CONTEXT, na_action="ignore")
    except FormulaicError as err:
        raise FormulaError(f"cannot build the {what} from '{text}': {err}", pf.text) from err
    except (TypeError, ValueError, ArithmeticError) as err:
        raise DataError(f"cannot evaluate the {what} '{text}': {err}") from err


def _check_finite(values: np.ndarray, names: list[str], what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        cols = [f"'{names[j]}' ({int(bad[:, j].sum())} rows)" for j in range(values.shape[1]) if bad[:, j].any()]
        raise DataError(
            f"{what} {', '.join(cols)} contain NaN or infinite values after transformation "
            "(check log() of zero/negative values, or inf in the data)"
        )


def _aliased(X: np.ndarray, names: list[str]) -> list[tuple[str, list[str]]]:
    """Columns that are linear combinations of earlier ones (lm's NA coefficients)."""
    out: list[tuple[str, list[str]]] = []
    kept: list[int] = []
    scale = np.sqrt((X**2).mean(axis=0)) + 1e-300
    Xs = X / scale
    for j in range(X.shape[1]):
        cand = kept + [j]
        if np.linalg.matrix_rank(Xs[:, cand], tol=1e-9 * np.sqrt(X.shape[0])) == len(cand):
            kept.append(j)
        else:
            out.append((names[j], [names[k] for k in kept]))
    return out


def _scale_warning(X: np.ndarray, names: list[str]) -> None:
    sds = X.std(axis=0)
    ok = [(sd, n) for sd, n in zip(sds, names) if sd > 0]
    if len(ok) < 1:
        return
    big = max(ok)
    small = min(ok)
    extreme = [(sd, n) for sd, n in ok if sd > 1e6 or sd < 1e-6]
    if big[0] / small[0] > 1e3 and big[1] != small[1]:
        warn("some predictors are on very different scales "
            f"('{big[1]}' sd {big[0]:.3g}, '{small[1]}' sd {small[0]:.3g}); consider rescaling with scale(), "
            "e.g. scale(" + big[1] + ")", DataWarning)
    elif extreme:
        warn("predictor(s) on a very large or tiny scale ("
             + ", ".join(f"'{n}' sd {sd:.3g}" for sd, n in extreme)
             + f"); consider rescaling with scale(), e.g. scale({extreme[0][1]})", DataWarning)


def _build_predictor(dpar: str, pf: ParsedFormula, data: pd.DataFrame, nobs_check: bool) -> Predictor:
    """X, group blocks and offset of one linear predictor."""
    what = "fixed effects" if dpar == "mu" else f"{dpar} formula"
    mm = _model_matrix(pf.fixed, data, pf, what)
    fixed_columns = list(mm.columns)
    n = len(data)
    X = np.asarray(mm, dtype=float) if fixed_columns else np.zeros((n, 0))
    fixed_names = [lme4_name(c) for c in fixed_columns]
    _check_finite(X, fixed_names, "predictor(s)")
    aliased = _aliased(X, fixed_names) if X.shape[1] else []
    if aliased:
        desc = "; ".join(f"'{a}' is a linear combination of {', '.join(map(repr, b)) or 'nothing (all zero)'}"
                         for a, b in aliased)
        raise DataError(f"{what} are perfectly collinear (lm would report NA for them): {desc}; "
                        "remove the aliased term(s) from the formula")
    non_int = [j for j, name in enumerate(fixed_names) if name != "(Intercept)"]
    if non_int and dpar == "mu":
        _scale_warning(X[:, non_int], [fixed_names[j] for j in non_int])

    offset, offset_specs = None, []
    for expr in pf.offsets:
        omm = _model_matrix("0 + " + expr, data, pf, f"offset({expr})")
        col = np.asarray(omm, dtype=float)[:, 0]
        _check_finite(col[:, None], [f"offset({expr})"], "")
        offset = col if offset is None else offset + col
        offset_specs.append(omm.model_spec)

    raw: list[dict] = []
    slope_specs: list[object] = []
    for term in pf.groups:
        smm = _model_matrix(term.expr, data, pf, f"random-effect term {term.text}")
        cols = list(smm.columns)
        if not cols:
            raise FormulaError(f"random-effect term {term.text} has no coefficients", pf.text, term.pos, len(term.text))
        Zall = np.asarray(smm, dtype=float)
        _check_finite(Zall, [lme4_name(c) for c in cols], f"random-effect term {term.text}:")
        slope_specs.append(smm.model_spec)
        labels = _group_labels(data, term.factors)
        levels = _group_levels(data, term.factors, labels)
        lookup = {lev: i for i, lev in enumerate(levels)}
        index = np.fromiter((lookup[lab] for lab in labels), dtype=np.int64, count=len(labels))
        for cs in ([[c] for c in cols] if not term.correlated else [cols]):
            raw.append(dict(term=term, columns=cs, Z=Zall[:, [cols.index(c) for c in cs]], levels=levels,
                            index=index, spec=len(slope_specs) - 1))

    _check_group_coefficients(raw, pf)
    names = _make_unique([b["term"].name for b in raw])
    prefix = "" if dpar == "mu" else f"{dpar}_"
    keys = _make_unique([prefix + re.sub(r"\W", "_", name) for name in names], sep="_")
    blocks: list[GroupBlock] = []
    for b, name, key in zip(raw, names, keys):
        term: GroupTerm = b["term"]
        nlev = len(b["levels"])
        coefs = [lme4_name(c) for c in b["columns"]]
        if nlev < 2:
            raise DataError(f"grouping factor '{term.name}' in {term.text} has only {nlev} level; "
                            "a random effect needs at least 2 levels")
        if nobs_check and nlev * len(coefs) >= n:
            raise DataError(
                f"number of observations ({n}) <= number of random effects ({nlev} levels x {len(coefs)} "
                f"coefficients) for term {term.text}; the term is not identifiable from the residual"
            )
        blocks.append(GroupBlock(name=name, key=key, factor=term.name, factors=term.factors, coefs=coefs,
                                 levels=b["levels"], index=b["index"], Z=b["Z"], correlated=term.correlated,
                                 expr=term.expr, columns=b["columns"], term=term, spec_index=b["spec"], dpar=dpar))
    blocks.sort(key=lambda blk: -blk.n_levels)  # lme4 orders terms by decreasing number of levels (stable)
    return Predictor(dpar=dpar, formula=pf, X=X, fixed_names=fixed_names, blocks=blocks, offset=offset,
                     fixed_spec=mm.model_spec, fixed_columns=fixed_columns, slope_specs=slope_specs,
                     offset_specs=offset_specs)


def _check_group_coefficients(raw: list[dict], pf: ParsedFormula) -> None:
    """Each group-level coefficient once per grouping factor (as brms), and slopes that can vary.

    A slope that is constant within every level of its factor is confounded with the
    group's intercept: an error when every level has a single row, a warning otherwise.
    """
    seen: dict[tuple, GroupTerm] = {}
    by_factor: dict[frozenset, list[dict]] = {}
    for b in raw:
        term = b["term"]
        key = frozenset(term.factors)
        by_factor.setdefault(key, []).append(b)
        for c in b["columns"]:
            if (key, c) in seen:
                raise FormulaError(
                    f"group-level coefficient '{lme4_name(c)}' of '{term.name}' appears in two terms "
                    f"({seen[(key, c)].text} and {term.text}); each group-level effect may appear once",
                    pf.text, term.pos, len(term.text))
            seen[(key, c)] = term
    for blist in by_factor.values():
        if not any("Intercept" in b["columns"] for b in blist):
            continue
        index = blist[0]["index"]
        single = np.bincount(index).max() == 1
        for b in blist:
            for j, c in enumerate(b["columns"]):
                if c == "Intercept":
                    continue
                grouped = pd.Series(b["Z"][:, j]).groupby(index)
                if not np.allclose(grouped.max().to_numpy(), grouped.min().to_numpy()):
                    continue
                term = b["term"]
                if single:
                    raise DataError(
                        f"every level of '{term.name}' has a single row, so the random slope of '{lme4_name(c)}' "
                        f"in {term.text} cannot be separated from the random intercept; drop it from the term")
                warn(f"'{lme4_name(c)}' does not vary within any level of '{term.name}', so its random slope in "
                     f"{term.text} is confounded with the random intercept; consider dropping it from the term",
                     DataWarning)


def _evaluate_vector(expr: str, data: pd.DataFrame, pf: ParsedFormula, what: str) -> tuple[np.ndarray, object]:
    if re.fullmatch(r"\s*\d+(\.\d*)?\s*", expr):
        return np.full(len(data), float(expr)), None
    mm = _model_matrix("0 + " + expr, data, pf, what)
    if mm.shape[1] != 1:
        raise DataError(f"{what} '{expr}' is not numeric (it has {mm.shape[1]} categories)")
    values = np.asarray(mm.iloc[:, 0], dtype=float)
    _check_finite(values[:, None], [expr], what)
    return values, mm.model_spec


def build_design(formula: str | ParsedFormula, data: pd.DataFrame, data_name: str | None = None,
                 family="gaussian", dpars: dict[str, str] | None = None, offset=None) -> Design:
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

    fam = families.get(family)
    pf = formula if isinstance(formula, ParsedFormula) else parse_formula(formula)
    dpar_pfs: dict[str, ParsedFormula] = {}
    for name, text in (dpars or {}).items():
        fam.dpar(name)  # raises for parameters the family does not have
        dpar_pfs[name] = text if isinstance(text, ParsedFormula) else parse_formula(text, response=False)
    data = _validate_frame(data)
    data_name = data_name or str(data.attrs.get("name", "data"))
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
    formulas = [pf] + list(dpar_pfs.values()) + ([offset_pf] if offset_pf else [])
    for f in formulas:
        _check_columns(f, data)
    used = list(dict.fromkeys(t.text for f in formulas for t in f.variables))
    group_cols = {c for f in formulas for c in f.group_factors}

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

    data, n_drop, by_col, keep = _drop_missing(pf, data, used)
    if offset_array is not None:
        offset_array = offset_array[keep]
    model_texts = [f.fixed for f in formulas] + \
        [g.expr for f in formulas for g in f.groups] + [o for f in formulas for o in f.offsets] + \
        [f.trials or "" for f in formulas]
    predictors_cols = [c for c in used if any(_uses(t, c) for t in model_texts)]
    data, cats = _categorize(data, predictors_cols)
    _check_dtypes(data, [c for c in used if c not in cats and (c in predictors_cols or c not in group_cols)])

    lhs_end = pf.text.index("~")
    for tok in pf.variables:  # a boolean response is 0/1 (bernoulli), not a factor
        if tok.pos < lhs_end and tok.text not in cats and data[tok.text].dtype == bool:
            data[tok.text] = data[tok.text].astype(float)
    y, _ = _evaluate_vector(pf.response, data, pf, "response")
    trials, trials_spec = (None, None)
    if pf.trials is not None:
        trials, trials_spec = _evaluate_vector(pf.trials, data, pf, "trials")
    fam.validate(y, trials, pf.response)
    if fam.location_scale and np.ptp(y) == 0:
        raise DataError(f"response '{pf.response}' is constant (every value is {y[0]:g}); there is nothing to model")
    sd_y = float(np.std(y))
    if fam.link_name == "identity" and (sd_y > 1e6 or 0 < sd_y < 1e-6):
        warn(f"response '{pf.response}' has sd {sd_y:.3g}, a very large or tiny scale for the default priors and "
             f"the sampler; consider rescaling it, e.g. scale({pf.response}) or a change of units", DataWarning)

    predictors = {"mu": _build_predictor("mu", pf, data, nobs_check=fam.confounds_observation_effects and "sigma" not in dpar_pfs)}
    for name, dpf in dpar_pfs.items():
        predictors[name] = _build_predictor(name, dpf, data, nobs_check=False)
    mu = predictors["mu"]
    if offset_pf is not None:
        extra = _build_predictor("mu", parse_formula(f"~ 0 + offset({offset})", response=False), data, False)
        mu.offset = extra.offset if mu.offset is None else mu.offset + extra.offset
        mu.offset_specs = mu.offset_specs + extra.offset_specs
    elif offset_array is not None:
        mu.offset = offset_array if mu.offset is None else mu.offset + offset_array
    return Design(formula=pf, family=fam, response=pf.response, y=y, trials=trials, predictors=predictors,
                  categories=cats, trials_spec=trials_spec, data_name=data_name, n_dropped=n_drop,
                  dropped_by_column=by_col,
                  offset_arg=offset if isinstance(offset, str) else (None if offset is None else "<array>"))
