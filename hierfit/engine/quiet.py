"""PyMC's and PyTensor's internal chatter kept from the user.

PyMC logs which variables it samples ("Sampling: [Intercept, gamma_school, ...]",
"NUTS: [x]") under internal names the user never wrote, and PyTensor warns about its
own deprecations; hierfit reports progress and problems itself.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

__all__ = ["quiet_pymc"]


@contextlib.contextmanager
def quiet_pymc():
    """Within the block PyMC logs only warnings and errors, and PyMC/PyTensor FutureWarnings are dropped.

    Example
    -------
    >>> import logging
    >>> with quiet_pymc():
    ...     logging.getLogger("pymc").info("Sampling: [gamma_school]")  # not shown
    """
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"(pytensor|pymc)(\.|$)")
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork\\(\\) may lead.*")
            yield
    finally:
        logger.setLevel(level)
