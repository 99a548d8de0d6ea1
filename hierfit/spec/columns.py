"""Data columns made unambiguous before a design is built.

* Column names are read as Python reads identifiers (Unicode NFKC): two columns whose
  names normalise to the same name are an error naming both (:func:`normalize_columns`).
* A column of numbers stored with ``object`` dtype is numeric, not a factor
  (:func:`numeric_objects`); integer columns become exact float64 (:func:`exact_numbers`).
* Two different values that print as the same level (``1`` and ``"1"``) or grouping
  labels joined by ``:`` that collide are errors naming the column(s) (:func:`check_labels`).
* Two design columns that get the same lme4 name (level ``b`` of ``s`` next to a column
  ``sb``) are an error naming both (:func:`check_unique_names`).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from hierfit.errors import DataError, DataWarning, warn
from hierfit.spec.formula import tokenize
from hierfit.spec.grammar import normalize_name

__all__ = ["normalize_columns", "warn_normalized_matches", "numeric_objects", "exact_numbers", "check_labels",
           "check_joined_labels", "check_unique_names", "check_values", "columns_inside", "level_label", "RESERVED_COLUMNS"]

#: Data column names that would clash with names the design gives its own columns.
RESERVED_COLUMNS = ("Intercept", "(Intercept)")


def normalize_columns(data: pd.DataFrame, what: str = "data") -> tuple[pd.DataFrame, dict[str, str]]:
    """Columns renamed to their NFKC form; returns the frame and {normalised name: name as given}.

    Example
    -------
    >>> df, names = normalize_columns(pd.DataFrame({"ｘ": [1.0], "y": [2.0]}))
    >>> list(df.columns), names["x"]
    (['x', 'y'], 'ｘ')
    """
    originals: dict[str, str] = {}
    for col in data.columns:
        norm = normalize_name(col) if isinstance(col, str) else col
        if norm in originals and originals[norm] != col:
            raise DataError(f"{what} columns {originals[norm]!r} and {col!r} both read as {norm!r} once Unicode "
                            "names are normalised (NFKC, as Python reads names); rename one of them")
        originals[norm] = col
    if any(k != v for k, v in originals.items()):
        data = data.rename(columns={v: k for k, v in originals.items() if k != v})
    return data, originals


def warn_normalized_matches(pf, originals: dict[str, str]) -> None:
    """Say when a formula name matched a column only after Unicode normalisation (``ｘ`` for ``x``).

    Example
    -------
    >>> import warnings
    >>> from hierfit.spec.formula import parse_formula
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_normalized_matches(parse_formula("y ~ ｘ"), {"x": "x", "y": "y"})
    >>> "only after Unicode normalisation" in str(caught[0].message)
    True
    """
    for tok in pf.variables:
        written = pf.text[tok.pos:tok.end].strip("`")
        column = originals.get(tok.text, tok.text)
        if written != column:
            warn(f"formula name {written!r} matched data column {column!r} only after Unicode normalisation "
                 f"(NFKC, as Python reads names: both read as {tok.text!r})", DataWarning)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_, complex, np.complexfloating))


def numeric_objects(data: pd.DataFrame, columns) -> pd.DataFrame:
    """Object columns holding only real numbers (and missing values) as float64.

    Example
    -------
    >>> numeric_objects(pd.DataFrame({"x": pd.Series([1, 2.5, None], dtype=object)}), ["x"])["x"].dtype
    dtype('float64')
    """
    for col in columns:
        s = data[col]
        if s.dtype == object:
            values = s.dropna()
            if len(values) and all(_is_real(v) for v in values):
                big = [v for v in values if isinstance(v, (int, np.integer)) and abs(int(v)) > 2**53]
                if big:
                    shown = str(big[0]) if len(str(big[0])) < 25 else f"{str(big[0])[:12]}...({len(str(big[0]))} digits)"
                    raise DataError(f"column '{col}' holds integers such as {shown} that overflow exact "
                                    "floating-point arithmetic (|value| > 2^53); rescale it")
                data[col] = s.astype(float)
            elif any(_is_real(v) for v in values) and any(isinstance(v, str) for v in values):
                num = next(v for v in values if _is_real(v))
                text = next(v for v in values if isinstance(v, str))
                raise DataError(f"column '{col}' mixes numbers (e.g. {num!r}) and text (e.g. {text!r}); convert it "
                                f"with pd.to_numeric(data['{col}']) for a numeric predictor or "
                                f".astype(str) for a factor")
    return data


def exact_numbers(data: pd.DataFrame, columns, factors=()) -> pd.DataFrame:
    """Integer columns (numpy or nullable) as float64, exactly; larger than 2^53 is a DataError.

    Arithmetic in a formula then cannot wrap around (``I(x^3)`` of an int32 column).  Columns in
    ``factors`` (used inside ``C()``) become int64 instead, so that their levels keep R's names (``2``).

    Example
    -------
    >>> df = pd.DataFrame({"s": np.array([200], dtype=np.uint8), "k": np.array([2], dtype=np.int8)})
    >>> exact_numbers(df, ["s", "k"], factors={"k"}).dtypes.tolist()
    [dtype('float64'), dtype('int64')]
    """
    for col in columns:
        s = data[col]
        if pd.api.types.is_integer_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            values = s.dropna()
            big = values[(values > 2**53) | (values < -(2**53))] if len(values) else values
            if len(big):
                raise DataError(f"column '{col}' holds integers such as {big.iloc[0]} that overflow exact "
                                "floating-point arithmetic (|value| > 2^53); rescale it")
            data[col] = s.astype("int64" if col in factors else "float64")
    return data


def columns_inside(formulas, function: str) -> set[str]:
    """Names of the columns used inside calls of ``function`` in any of the parsed formulas.

    Example
    -------
    >>> from hierfit.spec.formula import parse_formula
    >>> sorted(columns_inside([parse_formula("y ~ C(k) + x:C(m)")], "C"))
    ['k', 'm']
    """
    out: set[str] = set()
    for pf in formulas:
        tokens = tokenize(pf.text)
        stack: list[str | None] = []
        for k, t in enumerate(tokens):
            if t.kind == "op" and t.text == "(":
                prev = tokens[k - 1] if k else None
                stack.append(prev.text if prev is not None and prev.kind == "ident" else None)
            elif t.kind == "op" and t.text == ")":
                if stack:
                    stack.pop()
            elif t.kind == "ident" and function in stack:
                out.add(t.text)
    return out


def level_label(v) -> str:
    """A factor level as R prints it: ``TRUE``/``FALSE`` for booleans, ``2`` for the float 2.0.

    Example
    -------
    >>> level_label(True), level_label(2.0), level_label("a")
    ('TRUE', '2', 'a')
    """
    if isinstance(v, (bool, np.bool_)):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _labels(values) -> dict[str, list]:
    out: dict[str, list] = {}
    for v in values:
        out.setdefault(level_label(v), []).append(v)
    return out


def check_values(data: pd.DataFrame, col: str) -> None:
    """DataError for a column whose values are not numbers, text, booleans or dates (lists, dicts, intervals).

    Example
    -------
    >>> try:
    ...     check_values(pd.DataFrame({"z": [[1], [2]]}), "z")
    ... except DataError as err:
    ...     print(str(err).split(";")[0])
    column 'z' holds list values (e.g. [1])
    """
    s = data[col]
    if isinstance(s.dtype, (pd.IntervalDtype, pd.PeriodDtype)):
        raise DataError(f"column '{col}' holds {s.dtype} values; convert it to numbers or text first")
    if s.dtype != object:
        return
    for v in s:
        if isinstance(v, (list, tuple, dict, set, frozenset, np.ndarray, pd.Series, pd.DataFrame)) \
                or getattr(type(v), "__hash__", None) is None:
            raise DataError(f"column '{col}' holds {type(v).__name__} values (e.g. {str(v)[:40]}); a column must "
                            "hold numbers, text or booleans")


def check_labels(data: pd.DataFrame, col: str) -> None:
    """DataError when two different values of a column print as the same level (``1`` and ``"1"``).

    Example
    -------
    >>> try:
    ...     check_labels(pd.DataFrame({"g": [1, "1"]}), "g")
    ... except DataError as err:
    ...     print(str(err).split(";")[0])
    column 'g' mixes values 1 (int), '1' (str) that are all the level '1'
    """
    s = data[col]
    if isinstance(s.dtype, pd.CategoricalDtype):
        values = [c for c in s.cat.categories if c in set(s.dropna())]
    elif s.dtype == object:
        values = s.dropna().unique()
    else:
        return
    for label, vals in _labels(values).items():
        if len(vals) > 1:
            shown = ", ".join(f"{v!r} ({type(v).__name__})" for v in vals[:3])
            raise DataError(f"column '{col}' mixes values {shown} that are all the level {label!r}; "
                            f"make the column one type, e.g. data['{col}'] = data['{col}'].astype(str)")


def check_joined_labels(data: pd.DataFrame, factors: tuple[str, ...], name: str) -> None:
    """DataError when labels of ``g:h`` are ambiguous because the labels themselves contain ':'.

    Example
    -------
    >>> df = pd.DataFrame({"g": ["a:b", "a"], "h": ["c", "b:c"]})
    >>> try:
    ...     check_joined_labels(df, ("g", "h"), "g:h")
    ... except DataError as err:
    ...     print(str(err).split(":")[0])
    grouping factor 'g
    """
    if len(factors) < 2:
        return
    seen: dict[str, tuple] = {}
    frame = data[list(factors)].dropna().drop_duplicates()
    for row in frame.itertuples(index=False):
        parts = tuple(level_label(v) for v in row)
        joined = ":".join(parts)
        if seen.setdefault(joined, parts) != parts:
            raise DataError(f"grouping factor '{name}' is ambiguous: {seen[joined]} and {parts} of columns "
                            f"{', '.join(map(repr, factors))} both read {joined!r} because the labels contain ':'; "
                            "replace ':' in those columns' values")


def check_unique_names(columns: list[str], names: list[str], what: str) -> None:
    """DataError when two design columns get the same lme4 name (``s[T.b]`` and ``sb`` both ``sb``).

    Example
    -------
    >>> try:
    ...     check_unique_names(["s[T.b]", "sb"], ["sb", "sb"], "fixed effects")
    ... except DataError as err:
    ...     print(str(err).split(";")[0])
    fixed effects: design columns 's[T.b]' and 'sb' would both be named 'sb'
    """
    seen: dict[str, str] = {}
    for col, name in zip(columns, names):
        if name in seen:
            raise DataError(f"{what}: design columns {seen[name]!r} and {col!r} would both be named {name!r}; "
                            "rename a column or a factor level so that the names differ")
        seen[name] = col
