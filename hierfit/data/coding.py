"""Re-coding a partition with numpy when the frozen design is simple, instead of through formulaic.

The grouped pass re-codes every partition with the training coding.  formulaic does
that for any formula, at a cost of several times reading the partition; for the
terms most models use the coding is simple arithmetic that numpy does at the speed
of a read:

* a numeric column (``x``), or ``scale(x)``/``center(x)`` with the frozen moments;
* a factor (a column with training levels) in treatment coding, reduced rank
  (``sex[T.M]``: one indicator per level but the first) or full rank (``sex[F]``);
* products of these (interactions ``x:sex``), and the intercept.

:func:`fast_coder` reads the recipe of every design column from formulaic's frozen
model specs (their encoded term structure) and returns None when a column is
anything else (a function call, other contrasts, a polynomial, an offset): the
caller then uses formulaic.  :meth:`FastCoder.code` checks its columns once per
combination of column dtypes against formulaic on the first rows of a partition, and
partitions with missing, unseen or mistyped values are coded by formulaic too, so
its errors are formulaic's.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from formulaic.utils.sentinels import UNSET

from hierfit.spec.predictor import group_index

__all__ = ["FastCoder", "RawRows", "fast_coder", "complete_rows", "CHECK_ROWS"]

#: Rows of a partition coded both ways when a combination of column dtypes is first seen.
CHECK_ROWS = 256

_STATEFUL = re.compile(r"^(scale|center)\((\w+)\)$")


def _factor_recipe(sf, spec, categories: dict, columns: set[str]):
    """(name parts, recipe parts) of one scoped factor of a term, or None when numpy cannot code it."""
    expr = sf.factor.expr
    kind, state = spec.encoder_state.get(expr, (None, None))
    kind = getattr(kind, "value", kind)
    if kind == "numerical":
        if expr in columns and expr not in categories:
            return [(expr, ("num", expr, None))]
        m = _STATEFUL.match(expr)
        tstate = getattr(spec, "transform_state", {}).get(expr)
        if m and m.group(2) in columns and m.group(2) not in categories and tstate is not None:
            if set(tstate) <= {"ddof", "center", "scale"} and (m.group(1) == "scale" or tstate.get("scale") is None):
                return [(expr, ("scale", m.group(2), (tstate.get("center"), tstate.get("scale"))))]
        return None
    if kind != "categorical" or expr not in categories or expr not in columns:
        return None
    contrasts = state.get("contrasts")
    levels = list(categories[expr])
    if contrasts is None or type(contrasts.contrasts).__name__ != "TreatmentContrasts" or \
            list(contrasts.levels) != levels or getattr(contrasts.contrasts, "base", None) is not UNSET or \
            list(state.get("categories", [])) != levels:
        return None
    if sf.reduced:
        return [(f"{expr}[T.{lev}]", ("ind", expr, i)) for i, lev in enumerate(levels) if i > 0]
    return [(f"{expr}[{lev}]", ("ind", expr, i)) for i, lev in enumerate(levels)]


def _recipes(spec, categories: dict, columns: set[str]) -> dict | None:
    """Column name -> tuple of recipe parts (a product; () is the intercept), for every column of ``spec``."""
    out = {}
    for st in spec.structure:
        for term in st.scoped_terms:
            per_factor = []
            for sf in term.factors:
                r = _factor_recipe(sf, spec, categories, columns)
                if r is None:
                    return None
                per_factor.append(r)
            combos = [("", ())]
            for options in per_factor:
                combos = [(f"{name}:{part}" if name else part, recipe + (rp,))
                          for name, recipe in combos for part, rp in options]
            for name, recipe in combos:
                if sum(kind != "ind" for kind, _, _ in recipe) > 2:
                    return None  # a product of three numbers depends on the order of multiplication
                out[name or "Intercept"] = recipe
    return out


class FastCoder:
    """Numpy coding of X, the group blocks' Z and level index, and the response (see the module's text)."""

    def __init__(self, design, x_recipes: list, z_recipes: list[list], used: list[str]):
        self.design = design
        self.x_recipes = x_recipes
        self.z_recipes = z_recipes
        self.used = used
        self.response = design.response.strip().strip("`")
        self.checked: set = set()
        self.broken = False  # set when numpy's columns ever differ from formulaic's: formulaic from then on
        self.luts = [_integer_lut(blk) for blk in design.mu.blocks]

    def _codes(self, part: pd.DataFrame) -> dict | None:
        codes = {}
        for col, cats in self.design.categories.items():
            if col not in self.used:
                continue
            s = part[col]
            if isinstance(s.dtype, pd.CategoricalDtype):
                now = s.cat.categories
                if _same_levels(list(now), list(cats)):
                    c = s.array.codes  # the training categories in their order: the codes as they are (a view)
                else:
                    where = pd.Index(now).get_indexer(pd.Index(cats))  # training level -> this category
                    remap = np.full(len(now) + 1, -1, dtype=np.int64)
                    remap[where[where >= 0]] = np.flatnonzero(where >= 0)
                    c = remap[s.array.codes]
            elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
                with warnings.catch_warnings():  # an unseen value gives code -1 (formulaic's path names it)
                    warnings.simplefilter("ignore")
                    c = pd.Categorical(s, categories=cats).codes
            else:
                return None
            if len(c) and c.min() < 0:  # unseen level (or NA): formulaic's path raises the error that names it
                return None
            codes[col] = c
        return codes

    def _column(self, part, recipe, codes, cache) -> np.ndarray:
        if recipe in cache:
            return cache[recipe]
        out = None
        for kind, col, arg in recipe:
            if kind == "num":
                v = np.asarray(part[col], dtype=float)
            elif kind == "scale":
                v = np.array(part[col])  # formulaic's scale(): data - center, then / scale, in numpy's types
                if arg[0] is not None:
                    v = v - arg[0]
                if arg[1] is not None:
                    v = v / arg[1]
                v = np.asarray(v, dtype=float)
            else:
                v = (codes[col] == arg).astype(float)
            out = v if out is None else out * v  # read only: the caller copies it into X or Z
        if out is None:
            out = np.ones(len(part))  # the intercept
        cache[recipe] = out
        return out

    @staticmethod
    def _index(part: pd.DataFrame, blk, lut) -> np.ndarray:
        """Level index of every row: a table lookup for integer group ids, else by the level labels."""
        if lut is not None:
            v = part[blk.factors[0]].to_numpy()
            lo, table = lut
            if v.dtype.kind == "i" or (v.dtype.kind == "u" and v.dtype.itemsize < 8):  # exact as int64
                from hierfit.data.accumulate import lookup_levels

                idx = np.empty(len(v), dtype=np.int64)
                if lookup_levels(v, lo, table, idx):
                    return idx
            elif v.dtype.kind == "u" and len(v) and v.min() >= lo and v.max() < lo + len(table):
                idx = table[v.astype(np.int64) - lo]
                if idx.min() >= 0:
                    return idx
        return group_index(part, blk.factors, blk.levels, labels=False)[0]

    def _fast_codes(self, part: pd.DataFrame) -> dict | None:
        """The factors' codes when numpy can code this partition, else None (formulaic codes it)."""
        if self.broken:
            return None
        numeric_ok = all(pd.api.types.is_numeric_dtype(part[col].dtype) and not pd.api.types.is_bool_dtype(
            part[col].dtype) for recipe in self.x_recipes + [r for z in self.z_recipes for r in z]
            for kind, col, _ in recipe if kind != "ind")
        codes = self._codes(part) if numeric_ok else None
        if codes is None or not pd.api.types.is_numeric_dtype(part[self.response].dtype) or \
                pd.api.types.is_bool_dtype(part[self.response].dtype):
            return None
        return codes

    def code(self, part: pd.DataFrame, fallback) -> tuple:
        """``(y, X, [Z per block], [level index per block])`` of a partition of complete rows.

        ``fallback(part)`` returns the same from formulaic; it is used for partitions numpy
        does not code, and on the first rows when a combination of dtypes is first seen.
        """
        codes = self._fast_codes(part)
        if codes is None:
            return fallback(part)
        sig = tuple(str(part[c].dtype) for c in self.used)
        cache: dict = {}
        y = np.asarray(part[self.response], dtype=float)
        X = np.empty((len(self.x_recipes), len(part))).T  # column-major: each column written contiguously
        for j, recipe in enumerate(self.x_recipes):
            X[:, j] = self._column(part, recipe, codes, cache)
        Z = []
        for recipes in self.z_recipes:
            z = np.empty((len(recipes), len(part))).T
            for j, recipe in enumerate(recipes):
                z[:, j] = self._column(part, recipe, codes, cache)
            Z.append(z)
        index = [self._index(part, blk, lut) for blk, lut in zip(self.design.mu.blocks, self.luts)]
        out = (y, X, Z, index)
        if sig not in self.checked:
            head = part.iloc[:CHECK_ROWS]
            ref = fallback(head)
            m = len(head)
            same = np.array_equal(ref[0], y[:m]) and np.array_equal(ref[1], X[:m]) and \
                all(np.array_equal(a, b[:m]) for a, b in zip(ref[2], Z)) and \
                all(np.array_equal(a, b[:m]) for a, b in zip(ref[3], index))
            if not same:
                self.broken = True
                return fallback(part)
            self.checked.add(sig)
        return out

    @property
    def numeric_parts(self) -> list[tuple]:
        """The distinct numeric factors of the recipes (``("num"|"scale", column, state)``), in order of use."""
        parts = (p for r in self.x_recipes + [r for z in self.z_recipes for r in z] for p in r if p[0] != "ind")
        return list(dict.fromkeys(parts))

    @property
    def factor_columns(self) -> list[str]:
        """The factor columns the recipes use, in the order of the rows of :meth:`raw_columns`'s codes."""
        return [c for c in self.design.categories if c in self.used]

    def encode(self, recipes: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
        """``(num_ref, ind_ref)`` of :func:`hierfit.data.accumulate.add_coded_cross` for these recipes.

        A recipe ``(("y", response, None),)`` is the response (row 0 of the numeric rows).
        """
        parts = self.numeric_parts
        factors = self.factor_columns
        width_n = max([1] + [sum(p[0] != "ind" for p in r) for r in recipes])
        width_i = max([1] + [sum(p[0] == "ind" for p in r) for r in recipes])
        num_ref = np.full((len(recipes), width_n), -1, dtype=np.int64)
        ind_ref = np.full((len(recipes), width_i, 2), -1, dtype=np.int64)
        for u, recipe in enumerate(recipes):
            nums = [0 if p[0] == "y" else 1 + parts.index(p) for p in recipe if p[0] != "ind"]
            inds = [(factors.index(p[1]), p[2]) for p in recipe if p[0] == "ind"]
            num_ref[u, :len(nums)] = nums
            if inds:
                ind_ref[u, :len(inds)] = inds
        return num_ref, ind_ref

    def raw_columns(self, part: pd.DataFrame, fallback) -> tuple | None:
        """``(V, C, [level index per block])`` for :func:`~hierfit.data.accumulate.add_coded_cross`, or None.

        ``V`` holds the response and the :attr:`numeric_parts` (one row each, as :meth:`code`
        computes them), ``C`` the codes of the :attr:`factor_columns`.  None where :meth:`code`
        would use formulaic; a new combination of dtypes is first checked as :meth:`code` checks it.
        """
        codes = self._fast_codes(part)
        if codes is None:
            return None
        if tuple(str(part[c].dtype) for c in self.used) not in self.checked:
            self.code(part.iloc[:CHECK_ROWS], fallback)  # numpy against formulaic on the first rows
            if self.broken:
                return None
        parts = self.numeric_parts
        V = np.empty((1 + len(parts), len(part)))
        cache: dict = {}
        for r, p in enumerate([("num", self.response, None), *parts]):
            s = part[p[1]]
            if p[0] == "num" and isinstance(s.dtype, np.dtype):
                V[r] = s.to_numpy()  # numpy's cast to float64 in place: the values of np.asarray(s, dtype=float)
            else:
                V[r] = self._column(part, (p,), codes, cache)
        factors = self.factor_columns
        if len(factors) == 1:  # one factor: its codes as the one row, without a copy
            C = codes[factors[0]].reshape(1, -1)
        else:
            C = np.empty((len(factors), len(part)), dtype=np.int64)
            for f, col in enumerate(factors):
                C[f] = codes[col]
        index = [self._index(part, blk, lut) for blk, lut in zip(self.design.mu.blocks, self.luts)]
        return V, C, index


class RawRows:
    """A partition's rows as raw columns plus the coder's recipes: X and every block's Z, never materialised.

    Handed to :func:`hierfit.analysis.prepare.prepare_draws` as ``coded`` rows (``X`` is
    this object, each block's ``Z`` its position), whose linear predictor then comes from
    :meth:`linear_predictor`: one compiled sweep per draw and term over the raw columns
    (a row without a level, index -1, gets no group term, as with matrices).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> exam = hierfit.datasets.load("exam")
    >>> d = build_design("normexam ~ standLRT + sex + (standLRT | school)", exam)
    >>> from hierfit.data.stats import formulaic_code
    >>> cols = ["normexam", "standLRT", "sex", "school"]
    >>> coder = fast_coder(d, cols)
    >>> V, C, index = coder.raw_columns(exam.head(5)[cols], lambda p: formulaic_code(p, d, cols))
    >>> rows = RawRows(V, C, coder)
    >>> len(rows), rows.linear_predictor(np.ones((1, 3)), []).shape
    (5, (1, 5))
    """

    def __init__(self, V: np.ndarray, C: np.ndarray, coder: FastCoder):
        self.V, self.C = V, C
        self.x_refs = coder.encode(coder.x_recipes)
        self.z_refs = [coder.encode(z) for z in coder.z_recipes]

    def __len__(self) -> int:
        return self.V.shape[1]

    def linear_predictor(self, b: np.ndarray, ranef: list) -> np.ndarray:
        """``X b + sum over blocks of Z * r[index]`` for S draws: (S, n), as :func:`linear_predictor` gives it."""
        from hierfit.data.accumulate import coded_products

        n = len(self)
        out = np.zeros((b.shape[0], n))
        zero = np.zeros(n, dtype=np.int64)
        for s in range(b.shape[0]):
            if b.shape[1]:
                coded_products(self.V, self.C, zero, *self.x_refs, np.ascontiguousarray(b[s][None]), out[s])
            for r, block, index in ranef:
                coded_products(self.V, self.C, index, *self.z_refs[block], np.ascontiguousarray(r[s]), out[s])
        return out


def _same_levels(now: list, levels: list) -> bool:
    """The same values of the same types in the same order (``True`` equals ``1``, but is not the level ``1``)."""
    return len(now) == len(levels) and all(type(a) is type(b) and a == b for a, b in zip(now, levels))


def complete_rows(part: pd.DataFrame) -> pd.DataFrame:
    """``part.dropna()``: the rows without a missing value; ``part`` itself (no copy) when every row is complete.

    Integer and boolean columns cannot hold one, a float column holds one when its
    minimum is NaN, a categorical one when a code is -1; other columns ask pandas.

    Example
    -------
    >>> import pandas as pd
    >>> part = pd.DataFrame({"y": [1.0, 2.0], "g": [3, 4], "s": pd.Categorical(["a", "b"])})
    >>> complete_rows(part) is part
    True
    >>> len(complete_rows(part.assign(s=pd.Categorical(["a", None]))))
    1
    """
    for col in part.columns:
        s = part[col]
        dtype = s.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iub":
            continue
        if isinstance(dtype, np.dtype) and dtype.kind == "f":
            values = s.to_numpy()
            missing = len(values) and np.isnan(values.min())
        elif isinstance(dtype, pd.CategoricalDtype):
            codes = s.array.codes
            missing = len(codes) and codes.min() < 0
        else:
            missing = s.isna().any()
        if missing:
            return part.dropna()
    return part


def _integer_lut(blk) -> tuple[int, np.ndarray] | None:
    """(smallest id, id - smallest -> level index) for one grouping column whose levels are integers' labels.

    None when the levels are not all plain decimal integers, or too sparse for a table.
    """
    if len(blk.factors) != 1 or not blk.levels:
        return None
    try:
        ids = np.array([int(lev) for lev in blk.levels], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):  # not integers, or beyond int64 (uint64 ids >= 2**63)
        return None
    if any(str(i) != str(lev) for i, lev in zip(ids.tolist(), blk.levels)):
        return None  # "007" or "+3": the labels say more than the integers
    lo, hi = int(ids.min()), int(ids.max())
    if hi - lo + 1 > 4 * len(ids) + 4096:
        return None
    table = np.full(hi - lo + 1, -1, dtype=np.int64)
    table[ids - lo] = np.arange(len(ids))
    return lo, table


def fast_coder(design, used: list[str]) -> FastCoder | None:
    """A :class:`FastCoder` for the mean predictor of ``design``, or None when a column needs formulaic.

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> d = build_design("normexam ~ standLRT * sex + (standLRT | school)", hierfit.datasets.load("exam"))
    >>> fast_coder(d, ["normexam", "standLRT", "sex", "school"]) is not None
    True
    """
    pred = design.mu
    if set(design.predictors) != {"mu"} or pred.offset_specs or getattr(design, "offset_arg", None) is not None:
        return None
    columns = set(used)
    if design.response.strip().strip("`") not in columns:
        return None
    cats = design.categories
    x_map = _recipes(pred.fixed_spec, cats, columns) if pred.fixed_columns else {}
    if x_map is None or any(c not in x_map for c in pred.fixed_columns):
        return None
    z_recipes = []
    for blk in pred.blocks:
        z_map = _recipes(pred.slope_specs[blk.spec_index], cats, columns)
        if z_map is None or any(c not in z_map for c in blk.columns):
            return None
        z_recipes.append([z_map[c] for c in blk.columns])
    return FastCoder(design, [x_map[c] for c in pred.fixed_columns], z_recipes, used)
