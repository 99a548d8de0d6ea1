"""Exceptions and warnings raised by hierfit.

Every problem with user input is reported as a :class:`HierfitError` subclass
whose message names the offending formula token, column, level or row count.
"""

from __future__ import annotations

import os
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning]) -> None:
    """Issue a warning attributed to the first caller outside hierfit (the user's line)."""
    warnings.warn(message, category, skip_file_prefixes=(_PACKAGE_DIR,))


class HierfitError(Exception):
    """Base class of all errors raised by hierfit.

    Example
    -------
    >>> import hierfit
    >>> try:
    ...     hierfit.datasets.load("no-such-data")
    ... except hierfit.HierfitError as err:
    ...     print(type(err).__name__)
    DataError
    """


class FormulaError(HierfitError):
    """A formula that cannot be parsed or refers to something that does not exist.

    The message shows the formula with a caret under the offending text, like a
    compiler error.

    Example
    -------
    >>> from hierfit.spec.formula import parse_formula
    >>> try:
    ...     parse_formula("y ~ x + (1 | )")
    ... except FormulaError as err:
    ...     print(err)  # doctest: +NORMALIZE_WHITESPACE
    empty grouping factor after '|'
      y ~ x + (1 | )
                 ^
    """

    def __init__(self, message: str, formula: str | None = None, pos: int | None = None, length: int = 1):
        self.message = message
        self.formula = formula
        self.pos = pos
        self.length = max(1, length)
        super().__init__(self._render())

    def _render(self) -> str:
        if self.formula is None or self.pos is None:
            return self.message
        caret = " " * self.pos + "^" * self.length
        return f"{self.message}\n  {self.formula}\n  {caret}"


class DataError(HierfitError):
    """The data cannot be used with the formula (wrong types, NaN/inf, too few rows or levels).

    Example
    -------
    >>> import pandas as pd, hierfit
    >>> try:
    ...     hierfit.fit("y ~ x + (1 | g)", pd.DataFrame({"y": [], "x": [], "g": []}))
    ... except hierfit.DataError as err:
    ...     print("empty" in str(err))
    True
    """


class PriorError(HierfitError):
    """A prior specification that cannot be understood or does not match the model.

    Example
    -------
    >>> from hierfit.spec.priors import parse_dist
    >>> try:
    ...     parse_dist("normal(0)")
    ... except PriorError as err:
    ...     print("normal" in str(err))
    True
    """


class ArgumentError(HierfitError):
    """An argument outside its valid range or of the wrong type (``chains=-1``, ``ci=1.5``, ``seed="a"``).

    Example
    -------
    >>> import hierfit
    >>> issubclass(hierfit.ArgumentError, hierfit.HierfitError)
    True
    """


class SamplingError(HierfitError):
    """The sampler failed (for example, no valid starting point was found)."""


class PersistenceError(HierfitError):
    """A saved fit cannot be read (truncated, foreign, or from a newer format version)."""


class HierfitWarning(UserWarning):
    """Base class of hierfit warnings (dropped rows, data scaling, convergence)."""


class ConvergenceWarning(HierfitWarning):
    """The sampler's output shows signs of non-convergence (divergences, R-hat, ESS, singular fit)."""


class DataWarning(HierfitWarning):
    """Rows dropped because of missing values, or data that should be rescaled."""
