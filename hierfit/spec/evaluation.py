"""Where formulas are evaluated: the namespace (no builtins) and the one call into formulaic.

Every model matrix hierfit builds goes through :func:`evaluate_terms`, which first checks
every term formulaic would evaluate with Python against the formula grammar
(:func:`check_terms`), then evaluates it in :data:`FORMULA_CONTEXT`: the functions a
formula may call, with every Python builtin replaced by a placeholder that refuses to run.

Example
-------
>>> import pandas as pd
>>> from hierfit.spec.formula import parse_formula
>>> df = pd.DataFrame({"y": [1.0, 2.0, 4.0], "x": [1.0, 2.0, 3.0]})
>>> evaluate_terms("log(x)", df, parse_formula("y ~ log(x)"), "fixed effects").columns.tolist()
['Intercept', 'log(x)']
"""

from __future__ import annotations

import builtins
import re
import warnings

import numpy as np
import pandas as pd

from hierfit.errors import DataError, FormulaError
from hierfit.spec.formula import KNOWN_FUNCTIONS, ParsedFormula
from hierfit.spec.grammar import RESERVED_FUNCTIONS, check_python
from hierfit.spec.smooths import s as s_smooth
from hierfit.spec.splines import bs, ns

__all__ = ["FORMULA_CONTEXT", "FUNCTION_NAMES", "evaluate_terms", "check_terms"]


def _log(x, base=None):
    """R's ``log(x, base)``: natural logarithm, or to the given base."""
    return np.log(x) if base is None else np.log(x) / np.log(base)


def _unary(ufunc):
    """Wrap a numpy ufunc so that a formula cannot pass a second argument (numpy's ``out=``)."""

    def fun(x):
        return ufunc(x)

    fun.__name__ = ufunc.__name__
    return fun


class _Unavailable:
    """Stands in for every Python builtin and unlisted helper in the evaluation namespace."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise FormulaError(f"'{self.name}' is not a formula function")

    def __repr__(self) -> str:
        return f"<not available in formulas: {self.name}>"


# Names formulaic would otherwise resolve: every builtin, and its helpers that no formula may use.
_HIDDEN = [n for n in dir(builtins) if not n.startswith("__FORMULAIC")] + [
    "np", "numpy", "contr", "hashed", "lag", "exp10", "exp2", "cc", "cr", "cs", "standardize", "Q", "identity",
    "encode_contrasts", "ContrastsRegistry", "stateful_transform", "basis_spline", "cubic_spline"]

#: The namespace formulas are evaluated in: the functions formulas can call, by their R
#: names; every Python builtin is shadowed by a placeholder that refuses to run.
FORMULA_CONTEXT = {name: _Unavailable(name) for name in _HIDDEN}
FORMULA_CONTEXT.update({
    "log": _log,
    "log10": _unary(np.log10),
    "log2": _unary(np.log2),
    "log1p": _unary(np.log1p),
    "exp": _unary(np.exp),
    "sqrt": _unary(np.sqrt),
    "abs": _unary(np.abs),
    "bs": bs,
    "ns": ns,
    "s": s_smooth,
})


def evaluate_terms(text: str, data: pd.DataFrame, pf: ParsedFormula, what: str):
    """formulaic's model matrix of ``text`` (one side of a formula), after :func:`check_terms`; its errors as
    hierfit's (FormulaError for the formula, DataError for the data)."""
    from formulaic import model_matrix
    from formulaic.errors import FormulaicError

    text = formulaic_contrasts(text)
    check_terms(text, data, pf, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model_matrix(text, data, context=FORMULA_CONTEXT, na_action="ignore")
    except FormulaicError as err:
        raise FormulaError(f"cannot build the {what} from '{text}': {err}", pf.text) from err
    except (TypeError, ValueError, ArithmeticError, NameError, AttributeError, IndexError, KeyError,
            RecursionError, MemoryError) as err:
        raise DataError(f"cannot evaluate the {what} '{text}': {type(err).__name__}: {err}") from err


# Calls that hierfit's parser takes apart and formulaic never evaluates: a column of the same name is harmless.
_PARSED_BY_HIERFIT = frozenset({"weights", "cens", "se", "trials", "cbind", "offset"})
_R_CONTRASTS = {"contr.sum": "Sum", "contr.treatment": "Treatment", "contr.helmert": "Helmert", "contr.poly": "Poly"}
_R_CONTRAST_RE = re.compile(r"(?<![\w.`])(" + "|".join(re.escape(k) for k in _R_CONTRASTS) + r")(?![\w.`])")


def formulaic_contrasts(text: str) -> str:
    """R's contrast names in ``C()`` as formulaic's: ``C(f, contr.sum)`` -> ``C(f, Sum)``.

    Example
    -------
    >>> formulaic_contrasts("y ~ C(f, contr.sum) + x")
    'y ~ C(f, Sum) + x'
    """
    return _R_CONTRAST_RE.sub(lambda m: _R_CONTRASTS[m.group(1)], text)


def check_terms(text: str, data: pd.DataFrame, pf: ParsedFormula, what: str = "design") -> None:
    """Parse ``text`` with formulaic (without data) and allow every Python-evaluated term only if it is in the
    formula grammar (:func:`hierfit.spec.grammar.check_python`).

    Example
    -------
    >>> from hierfit.spec.formula import parse_formula
    >>> df = pd.DataFrame({"y": [1.0, 2.0], "x": [1.0, 2.0]})
    >>> pf = parse_formula("y ~ log(x) + I(x^2)")
    >>> pf.fixed
    'log(x) + I(x**2)'
    >>> check_terms(pf.fixed, df, pf)
    """
    from formulaic import Formula
    from formulaic.errors import FormulaicError
    from formulaic.parser.types import Factor

    try:
        terms = list(Formula(text))
    except FormulaicError as err:
        raise FormulaError(f"cannot build the {what} from '{text}': {err}", pf.text) from err
    except (SyntaxError, RecursionError, ValueError, TypeError, MemoryError) as err:
        raise FormulaError(f"cannot build the {what} from '{text}': {type(err).__name__}", pf.text) from err
    functions = set(KNOWN_FUNCTIONS) | RESERVED_FUNCTIONS
    columns = set(data.columns)
    for tok in pf.functions:
        if tok.text in columns and tok.text not in _PARSED_BY_HIERFIT:
            raise FormulaError(f"column '{tok.text}' has the name of the function {tok.text}(), which the formula "
                               "also calls; rename the column", pf.text, tok.pos, tok.end - tok.pos)
    for term in terms:
        for factor in term.factors:
            if factor.eval_method is Factor.EvalMethod.PYTHON:
                check_python(factor.expr, pf.text, columns, functions)
            elif factor.eval_method is Factor.EvalMethod.LOOKUP and factor.expr not in columns:
                raise FormulaError(f"'{factor.expr}' is not a column of the data", pf.text)


#: Every name a formula can call or that the evaluation namespace defines; a column of new data with one of
#: these names (and not a variable of the model) is left out, so that it cannot shadow a function.
FUNCTION_NAMES = frozenset(FORMULA_CONTEXT) | frozenset(KNOWN_FUNCTIONS) | RESERVED_FUNCTIONS
