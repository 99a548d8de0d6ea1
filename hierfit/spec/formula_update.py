"""R's ``update.formula``: ``.`` in a new formula stands for the old left- or right-hand side."""

from __future__ import annotations

import re

from hierfit.errors import FormulaError
from hierfit.spec.formula import ModelFormula

__all__ = ["update_formula"]

_DOT = re.compile(r"(?<![\w.])\.(?![\w.])")


def _sides(text: str) -> tuple[str, str]:
    if text.count("~") != 1:
        raise FormulaError(f"expected one '~' in the formula {text!r}", text)
    lhs, rhs = text.split("~")
    return lhs.strip(), rhs.strip()


def update_formula(old, new: str):
    """The new formula with ``.`` replaced by the old formula's sides (R's ``update(y ~ x, . ~ . + z)``).

    A one-sided ``"~ . + z"`` keeps the response.  For a ``bf()`` formula the mean's
    formula is updated and the distributional formulas are kept.

    Example
    -------
    >>> update_formula("y ~ x + (1 | g)", ". ~ . + z")
    'y ~ x + (1 | g) + z'
    >>> update_formula("y ~ x + (1 | g)", "log(y) ~ x + (x | g)")
    'log(y) ~ x + (x | g)'
    """
    if isinstance(old, ModelFormula):
        return ModelFormula(update_formula(old.formula, new), dict(old.dpars))
    old_lhs, old_rhs = _sides(str(old))
    text = new.strip()
    if text.startswith("~"):
        text = ". " + text
    lhs, rhs = _sides(text)
    lhs = _DOT.sub(lambda m: old_lhs, lhs)
    rhs = _DOT.sub(lambda m: f"{old_rhs}", rhs) if rhs.strip() != "." else old_rhs
    return f"{lhs} ~ {rhs}"
