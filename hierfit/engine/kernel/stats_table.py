"""The collapsed kernel's data: per-level sufficient statistics laid into the program's float table.

The collapsed Gaussian model reads no rows: :func:`collapsed_table` writes the
statistics of :func:`hierfit.spec.layout.sufficient_stats` (n, y'y, X'y, X'X, Z'y,
Z'X, Z'Z per level) and the level starts into the program, and points the header at
them.
"""

from __future__ import annotations

from hierfit.engine.kernel import codes as C
from hierfit.spec.layout import sufficient_stats

__all__ = ["collapsed_table"]


def collapsed_table(prog, design, lay) -> None:
    """Write the collapsed model's per-level sufficient statistics into the program (header slots ``H_SS_*``).

    Example
    -------
    >>> # collapsed_table(prog, design, collapsed_layout(design))   (called by build_spec(collapsed=True))
    """
    s = sufficient_stats(design, lay)
    h = prog.header
    h[C.H_J] = len(lay.starts) - 1
    h[C.H_K] = s.n.shape[0]
    h[C.H_P] = s.Xy.shape[1]
    h[C.H_Q] = s.Zy.shape[1]
    h[C.H_Q1] = lay.q1
    h[C.H_SS_START] = prog.i(lay.starts)
    h[C.H_SS_N] = prog.f(s.n)
    h[C.H_SS_YY] = prog.f(s.yy)
    h[C.H_SS_XY] = prog.f(s.Xy)
    h[C.H_SS_XX] = prog.f(s.XX)
    h[C.H_SS_ZY] = prog.f(s.Zy)
    h[C.H_SS_ZX] = prog.f(s.ZX)
    h[C.H_SS_ZZ] = prog.f(s.ZZ)
