"""The kernel program's threshold table: an ordinal family's K - 1 ordered thresholds.

PyMC lays the thresholds out as one vector variable ``Intercept_ordered__`` with its
ordered transform (theta_1 = x_1, theta_k = theta_{k-1} + exp(x_k), Jacobian
sum_{k >= 2} x_k); the table (layout in :mod:`hierfit.engine.kernel.codes`, ``TH_*``) gives
their count, the position of the first, and each one's prior, which
:func:`hierfit.engine.kernel.likelihood.cumulative_rows` evaluates at theta_k.
"""

from __future__ import annotations

import numpy as np

from hierfit.engine.kernel import codes as C

__all__ = ["threshold_table", "ordered_start"]


def ordered_start(n: int) -> np.ndarray:
    """The unconstrained start of ``n`` thresholds: PyMC's initial value linspace(-1, 1, n) through the transform.

    Example
    -------
    >>> ordered_start(3).round(4).tolist()
    [-1.0, 0.0, 0.0]
    """
    start = np.linspace(-1.0, 1.0, n)
    return np.r_[start[0], np.log(np.diff(start))]


def threshold_table(prog, layout, name: str, dists: list) -> tuple[int, np.ndarray]:
    """Lay out thresholds ``<name>_ordered__`` in ``layout`` and write their table into ``prog``.

    ``dists`` holds each threshold's prior (normal, student_t or cauchy).  Returns the
    table's offset in the program's ints and the thresholds' positions in x.

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> from hierfit.spec.priors import resolve_priors
    >>> from hierfit.engine.kernel import build_spec
    >>> df = hierfit.datasets.load("exam").assign(band=lambda d: (d.normexam > 0).astype(int) + (d.normexam > 1))
    >>> spec = build_spec(build_design("band ~ standLRT", df, family="cumulative"), resolve_priors(build_design(
    ...     "band ~ standLRT", df, family="cumulative")))
    >>> [v.name for v in spec.value_vars]
    ['beta', 'Intercept_ordered__']
    """
    n = len(dists)
    pos = layout.take(name + "_ordered__", (n,), centre=ordered_start(n))
    priors = prog.f([[*(tuple(d.params) + (0.0,))[:3], 0.0, 0.0] for d in dists])  # (p1, p2, p3, lower, const)
    return prog.i([n, pos[0], priors, *(C.PRIORS[d.family] for d in dists)]), pos
