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

from .errors import DataError, DataWarning, FormulaError
from .formula import GroupTerm, ParsedFormula, parse_formula

__all__ = ["GroupBlock", "DesignSpec", "Design", "build_design", "r_sort", "FORMULA_CONTEXT"]

#: Functions that formulas can call, by their R names.
FORMULA_CONTEXT = {
    "log": np.log,
    "log10": np.log10,
    "log2": np.log2,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
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
    >>> lme4_name("Intercept"), lme4_name("sex[T.M]"), lme4_name("x:sex[T.M]")
    ('(Intercept)', 'sexM', 'x:sexM')
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
class DesignSpec:
    """Everything needed to re-code new data exactly as the training data.

    Holds the formula, formulaic's frozen model specs (with ``scale()``/``center()``
    state), the factor levels of every categorical column and each group block's
    levels.  Used by predictions and kept by :meth:`HierFit.save`.
    """

    formula: ParsedFormula
    categories: dict[str, list]
    fixed_spec: object
    fixed_columns: list[str]
    response_spec: object
    slope_specs: list[object]
    blocks: list[dict] = field(default_factory=list)

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
        return data

    def fixed_matrix(self, data: pd.DataFrame) -> np.ndarray:
        """X for new data, with the training columns."""
        mm = self.fixed_spec.get_model_matrix(data, context=FORMULA_CONTEXT)
        return np.asarray(mm[self.fixed_columns], dtype=float) if self.fixed_columns else np.zeros((len(data), 0))

    def group_block(self, data: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(Z, index, labels) for block k on new data; index is -1 for unseen levels."""
        info = self.blocks[k]
        mm = self.slope_specs[info["spec"]].get_model_matrix(data, context=FORMULA_CONTEXT)
        Z = np.asarray(mm[info["columns"]], dtype=float)
        labels = _group_labels(data, info["factors"])
        lookup = {lev: i for i, lev in enumerate(info["levels"])}
        index = np.array([lookup.get(lab, -1) for lab in labels], dtype=np.int64)
        return Z, index, labels


@dataclass
class Design:
    """The inspectable output of :func:`build_design`.

    Example
    -------
    >>> import hierfit
    >>> d = build_design("normexam ~ standLRT + sex + (standLRT | school)", hierfit.datasets.load("exam"))
    >>> d.X.shape, d.fixed_names, d.blocks[0].coefs, d.blocks[0].n_levels
    ((4059, 3), ['(Intercept)', 'standLRT', 'sexM'], ['(Intercept)', 'standLRT'], 65)
    """

    formula: ParsedFormula
    response: str
    y: np.ndarray
    X: np.ndarray
    fixed_names: list[str]
    blocks: list[GroupBlock]
    spec: DesignSpec
    data_name: str
    n_dropped: int = 0
    dropped_by_column: dict[str, int] = field(default_factory=dict)

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def has_intercept(self) -> bool:
        return "(Intercept)" in self.fixed_names

    @property
    def ngrps(self) -> dict[str, int]:
        """Number of levels per grouping factor, lme4 names, in lme4's order."""
        out: dict[str, int] = {}
        for b in self.blocks:
            out.setdefault(b.factor, b.n_levels)
        return out


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


def _drop_missing(pf: ParsedFormula, data: pd.DataFrame, used: list[str]) -> tuple[pd.DataFrame, int, dict[str, int]]:
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
        warnings.warn(
            f"dropped {n_drop} of {len(data)} rows with missing values ({detail}), like R's na.omit",
            DataWarning,
            stacklevel=3,
        )
        data = data.loc[~mask].reset_index(drop=True)
    return data, n_drop, by_col


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
    if big[0] / small[0] > 1e3 or big[0] > 1e6 or small[0] < 1e-6:
        warnings.warn(
            "some predictors are on very different scales "
            f"('{big[1]}' sd {big[0]:.3g}, '{small[1]}' sd {small[0]:.3g}); consider rescaling with scale(), "
            "e.g. scale(" + big[1] + ")",
            DataWarning,
            stacklevel=3,
        )


def build_design(formula: str | ParsedFormula, data: pd.DataFrame, data_name: str | None = None,
                 family: str = "gaussian") -> Design:
    """Build the design of a mixed model: response, X, and one block per group term.

    Parameters
    ----------
    formula : str or ParsedFormula
        lme4/brms formula, e.g. ``"normexam ~ standLRT + sex + (standLRT | school)"``.
    data : pandas.DataFrame
        The data.  Rows with missing values in a used column are dropped with a warning.
    data_name : str, optional
        Name shown in the summary (defaults to ``data.attrs["name"]`` or ``"data"``).

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
    pf = formula if isinstance(formula, ParsedFormula) else parse_formula(formula)
    data = _validate_frame(data)
    data_name = data_name or str(data.attrs.get("name", "data"))
    _check_columns(pf, data)
    used = list(dict.fromkeys(t.text for t in pf.variables))
    group_cols = set(pf.group_factors)

    # grouping factors: non-integer floats are not labels
    for col in group_cols:
        s = data[col]
        if pd.api.types.is_float_dtype(s.dtype):
            vals = s.dropna().to_numpy()
            if len(vals) and not np.all(np.isfinite(vals) & (vals == np.round(vals))):
                tok = next(t for t in pf.variables if t.text == col)
                raise FormulaError(
                    f"grouping variable '{col}' holds non-integer numbers (e.g. {vals[~(vals == np.round(vals))][:1][0]!r}); "
                    "group ids must be labels or integers",
                    pf.text,
                    tok.pos,
                    tok.end - tok.pos,
                )

    data, n_drop, by_col = _drop_missing(pf, data, used)
    model_texts = [pf.response, pf.fixed] + [g.expr for g in pf.groups]
    predictors = [c for c in used if c not in group_cols or any(_uses(t, c) for t in model_texts)]
    data, cats = _categorize(data, predictors)

    # response
    resp_mm = _model_matrix("0 + " + pf.response, data, pf, "response")
    if resp_mm.shape[1] != 1:
        raise DataError(
            f"response '{pf.response}' is not numeric (it has {resp_mm.shape[1]} categories); "
            "code it as numbers, or use a family for categorical data"
        )
    y = np.asarray(resp_mm.iloc[:, 0], dtype=float)
    _check_finite(y[:, None], [pf.response], "response")
    if family == "gaussian" and np.ptp(y) == 0:
        raise DataError(f"response '{pf.response}' is constant (every value is {y[0]:g}); there is nothing to model")

    # fixed effects
    mm = _model_matrix(pf.fixed, data, pf, "fixed effects")
    fixed_columns = list(mm.columns)
    X = np.asarray(mm, dtype=float) if fixed_columns else np.zeros((len(y), 0))
    fixed_names = [lme4_name(c) for c in fixed_columns]
    _check_finite(X, fixed_names, "predictor(s)")
    aliased = _aliased(X, fixed_names) if X.shape[1] else []
    if aliased:
        desc = "; ".join(f"'{a}' is a linear combination of {', '.join(map(repr, b)) or 'nothing (all zero)'}"
                         for a, b in aliased)
        raise DataError(f"fixed effects are perfectly collinear (lm would report NA for them): {desc}; "
                        "remove the aliased term(s) from the formula")
    non_int = [j for j, n in enumerate(fixed_names) if n != "(Intercept)"]
    if non_int:
        _scale_warning(X[:, non_int], [fixed_names[j] for j in non_int])

    # group terms
    raw_blocks: list[dict] = []
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
        col_sets = [[c] for c in cols] if not term.correlated else [cols]
        for cs in col_sets:
            raw_blocks.append(
                dict(term=term, columns=cs, Z=Zall[:, [cols.index(c) for c in cs]], levels=levels, index=index,
                     spec=len(slope_specs) - 1)
            )

    names = _make_unique([b["term"].name for b in raw_blocks])
    keys = _make_unique([re.sub(r"\W", "_", n) for n in names], sep="_")
    blocks: list[GroupBlock] = []
    for b, name, key in zip(raw_blocks, names, keys):
        term: GroupTerm = b["term"]
        nlev = len(b["levels"])
        coefs = [lme4_name(c) for c in b["columns"]]
        tok = f"{term.text}"
        if nlev < 2:
            raise DataError(
                f"grouping factor '{term.name}' in {tok} has only {nlev} level; a random effect needs at least 2 levels"
            )
        if family == "gaussian" and nlev * len(coefs) >= len(y):
            raise DataError(
                f"number of observations ({len(y)}) <= number of random effects ({nlev} levels x {len(coefs)} "
                f"coefficients) for term {tok}; the term is not identifiable from the residual"
            )
        blocks.append(
            GroupBlock(name=name, key=key, factor=term.name, factors=term.factors, coefs=coefs, levels=b["levels"],
                       index=b["index"], Z=b["Z"], correlated=term.correlated, expr=term.expr,
                       columns=b["columns"], term=term)
        )
        b["name"] = name
    # lme4 orders terms by decreasing number of levels (stable)
    order = sorted(range(len(blocks)), key=lambda i: -blocks[i].n_levels)
    blocks = [blocks[i] for i in order]
    raw_blocks = [raw_blocks[i] for i in order]

    spec = DesignSpec(
        formula=pf,
        categories=cats,
        fixed_spec=mm.model_spec,
        fixed_columns=fixed_columns,
        response_spec=resp_mm.model_spec,
        slope_specs=slope_specs,
        blocks=[dict(columns=b["columns"], levels=b["levels"], factors=b["term"].factors, spec=b["spec"])
                for b in raw_blocks],
    )
    return Design(formula=pf, response=pf.response, y=y, X=X, fixed_names=fixed_names, blocks=blocks, spec=spec,
                  data_name=data_name, n_dropped=n_drop, dropped_by_column=by_col)
