"""Checks of the arguments of hierfit's public functions: each failure an :class:`~hierfit.errors.ArgumentError`
naming the argument, the value given and the valid range.

Example
-------
>>> check_count("chains", 4)
4
>>> try:
...     check_probability("ci", 1.5)
... except ArgumentError as err:
...     print(err)
ci must be between 0 and 1 (exclusive), got 1.5
"""

from __future__ import annotations

import difflib
import math

import numpy as np

from hierfit.errors import ArgumentError

__all__ = ["check_count", "check_seed", "check_probability", "check_cores", "check_arguments", "reject_unknown",
           "MAX_SEED"]

#: Seeds are integers from 0 to 2^63 - 1 (what numpy, PyMC and nutpie all accept).
MAX_SEED = 2**63 - 1


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_count(name: str, value, minimum: int = 1, maximum: int = 10**8) -> int:
    """An integer from ``minimum`` to ``maximum`` (draws, chains, tune, ndraws).

    Example
    -------
    >>> check_count("tune", 0, minimum=0)
    0
    """
    if not _is_int(value) or not minimum <= value <= maximum:
        kind = "a positive integer" if minimum == 1 else "a non-negative integer" if minimum == 0 else \
            f"an integer >= {minimum}"
        raise ArgumentError(f"{name} must be {kind} (at most {maximum:,}), got {value!r}")
    return int(value)


def check_seed(value, name: str = "seed") -> int | None:
    """None or an integer from 0 to 2^63 - 1.

    Example
    -------
    >>> check_seed(np.int64(7))
    7
    """
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value <= MAX_SEED:
        raise ArgumentError(f"{name} must be a non-negative integer or None (0 to 2^63 - 1), got {value!r}")
    return int(value)


def check_probability(name: str, value) -> float:
    """A real number strictly between 0 and 1 (``ci``, ``target_accept``).

    Example
    -------
    >>> check_probability("ci", 0.9)
    0.9
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(float(value)) or not 0 < float(value) < 1:
        raise ArgumentError(f"{name} must be between 0 and 1 (exclusive), got {value!r}")
    return float(value)


def check_cores(value) -> int | None:
    """None (one per chain, up to the machine's cores) or a positive integer.

    Example
    -------
    >>> check_cores(None), check_cores(2)
    (None, 2)
    """
    if value is None:
        return None
    if not _is_int(value) or not 1 <= value <= 4096:
        raise ArgumentError(f"cores must be a positive integer (1 to 4096) or None for the default, got {value!r}")
    return int(value)


def check_arguments(seed=None, ndraws=None, ci=None) -> None:
    """The common optional arguments of prediction functions: ``seed``, ``ndraws`` (None or >= 1), ``ci``.

    Example
    -------
    >>> check_arguments(seed=1, ndraws=100, ci=0.9)
    """
    check_seed(seed)
    if ndraws is not None:
        check_count("ndraws", ndraws)
    if ci is not None:
        check_probability("ci", ci)


def reject_unknown(function: str, unknown: dict, valid) -> None:
    """ArgumentError naming keyword arguments that ``function`` does not have (with the closest valid one).

    Example
    -------
    >>> try:
    ...     reject_unknown("fit", {"chain": 2}, ["chains", "draws"])
    ... except ArgumentError as err:
    ...     print(err)
    fit() has no argument chain=; did you mean chains=? (arguments: chains, draws)
    """
    if not unknown:
        return
    name = next(iter(unknown))
    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f"; did you mean {close[0]}=?" if close else ""
    extra = " (brms's iter is tune + draws)" if name == "iter" else ""
    raise ArgumentError(f"{function}() has no argument {name}={hint}{extra} (arguments: {', '.join(valid)})")


