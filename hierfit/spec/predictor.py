"""One linear predictor of a design: the fixed-effect matrix X with lme4's names and one block per group term.

:func:`build_predictor` builds a :class:`Predictor` (the mean's, or a distributional
parameter's) from a parsed formula and prepared data.  Group effects are never expanded
into a dense n x (levels * coefficients) matrix: a :class:`GroupBlock` stores the n x q
slope values and the n group indices.  Column names follow lme4 (:func:`lme4_name`),
factor levels R's order (:func:`r_sort`).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierfit.errors import DataError, DataWarning, FormulaError, warn
from hierfit.spec.collinearity import aliased_columns
from hierfit.spec.columns import check_unique_names, level_label
from hierfit.spec.evaluation import FORMULA_CONTEXT, evaluate_terms
from hierfit.spec.contrasts import r_contrast_names
from hierfit.spec.formula import GroupTerm, ParsedFormula
from hierfit.spec.smooths import SMOOTH_COEF, smooth_groups, smooth_names

__all__ = ["FACTOR_TERM", "r_sort", "lme4_name", "GroupBlock", "Predictor", "group_index", "group_labels", "group_levels",
           "check_finite", "deferred_finite_checks", "build_predictor"]


FACTOR_TERM = re.compile(r"^(.*)\[(?:T\.)?(.*)\]$")


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
        m = FACTOR_TERM.match(part)
        if m:
            level = m.group(2)
            level = {"True": "TRUE", "False": "FALSE"}.get(level, level)
            parts.append(m.group(1).strip("`") + level)
        elif "(" in part and "**" in part:
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
    #: ordered thresholds that replace the intercept (ordinal families): their count, 0 otherwise
    n_thresholds: int = 0

    @property
    def has_intercept(self) -> bool:
        return "(Intercept)" in self.fixed_names

    @property
    def centred(self) -> bool:
        """Whether the slopes are centred while sampling (an intercept or thresholds absorb the shift)."""
        return self.has_intercept or self.n_thresholds > 0

    @property
    def threshold_names(self) -> list[str]:
        """brms's names of the thresholds, ``Intercept[1]`` ... (empty without thresholds)."""
        return [f"Intercept[{k}]" for k in range(1, self.n_thresholds + 1)]

    def use_thresholds(self, n: int) -> None:
        """Replace the intercept column by ``n`` ordered thresholds (the columns keep the intercept's contrasts)."""
        keep = [j for j, name in enumerate(self.fixed_names) if name != "(Intercept)"]
        self.X = self.X[:, keep]
        self.fixed_names = [self.fixed_names[j] for j in keep]
        self.fixed_columns = [self.fixed_columns[j] for j in keep]
        self.n_thresholds = n

    @property
    def smooths(self) -> dict[str, list[int]]:
        """Penalised smooth terms ``s(x)``: label (``sx_1``) -> positions of their penalised coefficients."""
        return smooth_groups(self.fixed_names)

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
                index, labels = group_index(data, blk.factors, blk.levels, labels=False)
                if (index < 0).any():  # the rows' labels name unseen levels
                    index, labels = group_index(data, blk.factors, blk.levels)
                blocks.append((Z, index, labels))
            offset = None
            for spec in self.offset_specs:
                col = np.asarray(spec.get_model_matrix(data, context=FORMULA_CONTEXT), dtype=float)[:, 0]
                offset = col if offset is None else offset + col
        except (FormulaicError, KeyError, ValueError, TypeError) as err:
            raise DataError(f"cannot re-code the new data for the {self.dpar} predictor: {err}") from err
        return {"X": X, "blocks": blocks, "offset": offset}


def group_index(data: pd.DataFrame, factors: tuple[str, ...], levels: list[str],
                labels: bool = True) -> tuple[np.ndarray, list[str] | None]:
    """Level index (-1 for unseen levels) and label of every row, labelling each distinct value once.

    ``labels=False`` returns None instead of the rows' labels (the index alone is cheap).

    Example
    -------
    >>> idx, labels = group_index(pd.DataFrame({"g": ["b", "a", "b", "c"]}), ("g",), ["a", "b"])
    >>> idx.tolist(), labels
    ([1, 0, 1, -1], ['b', 'a', 'b', 'c'])
    """
    codes, uniques = [], []
    for f in factors:
        c, u = pd.factorize(data[f], use_na_sentinel=False)
        codes.append(c)
        if getattr(u, "dtype", None) is not None and u.dtype.kind in "iu":
            uniques.append(np.asarray(u).astype(str))  # level_label of an integer is its decimal digits
        else:
            uniques.append(np.array([level_label(v) for v in u], dtype=object).astype(str))
    if len(factors) == 1:
        row_code, u_labels = codes[0], uniques[0]
    else:
        combos, row_code = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
        row_code = row_code.ravel()
        u_labels = np.array([":".join(uniques[j][k] for j, k in enumerate(combo)) for combo in combos], dtype=object)
    u_index = pd.Index(list(levels), dtype=object).get_indexer(pd.Index(list(u_labels), dtype=object))
    u_index = u_index.astype(np.int64, copy=False)
    if not labels:
        return u_index[row_code], None
    return u_index[row_code], np.asarray(u_labels, dtype=object)[row_code].tolist()


def group_labels(data: pd.DataFrame, factors: tuple[str, ...]) -> list[str]:
    cols = [data[f].map(level_label).astype(str).to_numpy() for f in factors]
    if len(cols) == 1:
        return list(cols[0])
    return [":".join(parts) for parts in zip(*cols)]


def group_levels(data: pd.DataFrame, factors: tuple[str, ...], labels: list[str]) -> list[str]:
    per_factor = []
    for f in factors:
        s = data[f]
        if isinstance(s.dtype, pd.CategoricalDtype):
            order = [c for c in s.cat.categories if c in set(s.dropna())]
        else:
            order = r_sort(s.dropna().unique())
        per_factor.append({level_label(v): i for i, v in enumerate(order)})
    uniq = set(labels)
    if len(factors) == 1:
        return sorted(uniq, key=lambda lab: per_factor[0][lab])
    cols = [data[f].map(level_label).astype(str).to_numpy() for f in factors]
    parts = {":".join(tup): tup for tup in set(zip(*cols))}  # labels may contain ':' themselves
    return sorted(uniq, key=lambda lab: tuple(per_factor[i][p] for i, p in enumerate(parts[lab])))


#: Set by :func:`deferred_finite_checks`: non-finite values are placeholders' (see there), not refused.
_DEFERRED_FINITE = contextvars.ContextVar("hierfit_deferred_finite", default=False)


@contextlib.contextmanager
def deferred_finite_checks():
    """Within this block, designs are built from placeholder rows whose real values a later pass checks.

    A data engine builds the design from a small frame of placeholder rows; a
    transformation that is not finite on them (``log(x)`` at the smallest ``x``) says
    nothing about how many real rows are affected, so such values are set to 0 here,
    and the engine's grouped pass counts the real rows and refuses them.

    Example
    -------
    >>> with deferred_finite_checks():
    ...     check_finite(np.array([[1.0], [np.inf]]), ["x"], "predictor(s)").ravel().tolist()
    [1.0, 0.0]
    """
    token = _DEFERRED_FINITE.set(True)
    try:
        yield
    finally:
        _DEFERRED_FINITE.reset(token)


def check_finite(values: np.ndarray, names: list[str], what: str) -> np.ndarray:
    """``values`` (rows x columns) when all are finite; otherwise a DataError with the rows per column.

    Example
    -------
    >>> check_finite(np.array([[1.0], [np.nan]]), ["log(x)"], "predictor(s)")
    Traceback (most recent call last):
    ...
    hierfit.errors.DataError: predictor(s) 'log(x)' (1 rows) contain NaN or infinite values after transformation (check log() of zero/negative values, or inf in the data)
    """
    bad = ~np.isfinite(values)
    if bad.any() and _DEFERRED_FINITE.get():
        return np.where(bad, 0.0, values)
    if bad.any():
        cols = [f"'{names[j]}' ({int(bad[:, j].sum())} rows)" for j in range(values.shape[1]) if bad[:, j].any()]
        raise DataError(
            f"{what} {', '.join(cols)} contain NaN or infinite values after transformation "
            "(check log() of zero/negative values, or inf in the data)"
        )
    return values


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


def build_predictor(dpar: str, pf: ParsedFormula, data: pd.DataFrame, nobs_check: bool) -> Predictor:
    """X, group blocks and offset of one linear predictor."""
    what = "fixed effects" if dpar == "mu" else f"{dpar} formula"
    mm = evaluate_terms(pf.fixed, data, pf, what)
    fixed_columns = list(mm.columns)
    n = len(data)
    try:
        X = np.asarray(mm, dtype=float) if fixed_columns else np.zeros((n, 0))
    except (TypeError, ValueError) as err:
        raise DataError(f"{what} are not numeric ({err})") from err
    fixed_names = [c if SMOOTH_COEF.match(c) else lme4_name(c) for c in smooth_names(r_contrast_names(fixed_columns))]
    X = check_finite(X, fixed_names, "predictor(s)")
    check_unique_names(fixed_columns, fixed_names, what)
    aliased = aliased_columns(X, fixed_names) if X.shape[1] else []
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
        omm = evaluate_terms("0 + " + expr, data, pf, f"offset({expr})")
        col = np.asarray(omm, dtype=float)[:, 0]
        col = check_finite(col[:, None], [f"offset({expr})"], "")[:, 0]
        offset = col if offset is None else offset + col
        offset_specs.append(omm.model_spec)

    raw: list[dict] = []
    slope_specs: list[object] = []
    for term in pf.groups:
        smm = evaluate_terms(term.expr, data, pf, f"random-effect term {term.text}")
        cols = list(smm.columns)
        check_unique_names(cols, [lme4_name(c) for c in cols], f"random-effect term {term.text}")
        if not cols:
            raise FormulaError(f"random-effect term {term.text} has no coefficients", pf.text, term.pos, len(term.text))
        Zall = np.asarray(smm, dtype=float)
        Zall = check_finite(Zall, [lme4_name(c) for c in cols], f"random-effect term {term.text}:")
        slope_specs.append(smm.model_spec)
        labels = group_labels(data, term.factors)
        levels = group_levels(data, term.factors, labels)
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
        coefs = [lme4_name(c) for c in r_contrast_names(b["columns"])]
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
