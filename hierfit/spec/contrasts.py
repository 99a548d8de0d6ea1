"""R's names for the columns of contrast-coded factors: ``C(f, Sum)`` -> ``f1``, ``f2`` as ``contr.sum``.

formulaic names the columns of ``C(f, Sum)`` ``C(f, Sum)[S.a]``; R (with ``contr.sum``)
calls them ``f1``, ``f2``.  Likewise Helmert and successive-difference contrasts are
numbered, treatment contrasts with a reference get the level (``fa``), polynomial
contrasts R's ``f.L``, ``f.Q``, ``f.C``.  ``C(f)`` without a contrast keeps lme4's ``C(f)b``.
"""

from __future__ import annotations

import re

__all__ = ["r_contrast_names"]

_CONTRAST_COLUMN = re.compile(r"^C\(\s*`?([^,`]+?)`?\s*,\s*([A-Za-z_.]+)(\(.*\))?\s*\)\[(.*)\]$")
_NUMBERED = ("Sum", "contr.sum", "Helmert", "contr.helmert", "Diff")


def _one(part: str, counters: dict) -> str:
    m = _CONTRAST_COLUMN.match(part)
    if not m:
        return part
    col, contrast, _, level = m.groups()
    if contrast in _NUMBERED:
        key = (col, contrast)
        seen = counters.setdefault(key, [])
        lev = level.split(".", 1)[1] if "." in level else level
        if lev not in seen:
            seen.append(lev)
        return f"{col}{seen.index(lev) + 1}"
    if contrast in ("Poly", "contr.poly"):
        return f"{col}{level}"
    if contrast in ("Treatment", "contr.treatment"):
        return f"{col}{level[2:] if level.startswith('T.') else level}"
    return part


def r_contrast_names(columns: list[str]) -> list[str]:
    """formulaic column names with contrast-coded factors renamed as R names them.

    Example
    -------
    >>> r_contrast_names(["Intercept", "C(f, Sum)[S.a]", "C(f, Sum)[S.b]", "x:C(f, Poly)[.L]"])
    ['Intercept', 'f1', 'f2', 'x:f.L']
    """
    counters: dict = {}
    return [":".join(_one(p, counters) for p in c.split(":")) for c in columns]
