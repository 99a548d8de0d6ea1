"""Small memory pages for large arrays that are written once.

numpy asks the kernel for transparent huge pages (2 MB) for every array above 4 MB.
Where the kernel compacts memory to find them when a page is first touched (its
``defrag`` setting ``madvise``, the default of many Linux systems, and the rule on
virtual machines whose memory is fragmented), writing a fresh array costs far more than
the arithmetic that fills it: 640 MB of new arrays took 1.0 s with huge pages and 0.26 s
without on the machine of ``benchmarks/results/scale_out.md``.  A fit's draws of the
group effects (draws x levels x coefficients, hundreds of MB for thousands of levels)
are such arrays; :func:`small_pages` gives them ordinary pages.

Example
-------
>>> import numpy as np
>>> with small_pages():
...     a = np.zeros(1_000_000)
>>> float(a.sum())
0.0
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

__all__ = ["small_pages", "huge_pages_setting"]


def huge_pages_setting(enabled: bool) -> bool | None:
    """Set whether numpy asks for huge pages for large arrays; the previous setting, or None where numpy cannot say.

    Example
    -------
    >>> before = huge_pages_setting(False)
    >>> _ = huge_pages_setting(before if before is not None else True)
    """
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    setter = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if setter is None:
        return None
    return bool(setter(enabled))


@contextmanager
def small_pages():
    """Within the block, numpy's new arrays get ordinary pages; the previous setting is restored after it.

    Example
    -------
    >>> import numpy as np
    >>> with small_pages():
    ...     out = np.empty((100, 1000))
    >>> out.shape
    (100, 1000)
    """
    before = huge_pages_setting(False)  # one call sets and returns the previous setting
    try:
        yield
    finally:
        if before is not None:
            huge_pages_setting(before)
