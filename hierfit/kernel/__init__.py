"""hierfit's compiled log density: one numba kernel for every model it handles, compiled once.

The pipeline stage between *model* and *sampling*: :func:`build_spec` turns a design,
its priors and the group-effect parametrization into a :class:`KernelSpec` (flat
arrays: the data, the level indices, the prior parameters and where every parameter
sits); :func:`load` returns the compiled entry points, which read any spec.  Nothing
is compiled per model, so a formula never fitted before starts sampling at once.
The PyMC model (:func:`hierfit.model.build_model`) stays the specification: the
kernel's log density and gradient equal PyMC's at every point (tests/test_kernel.py).

Modules: :mod:`~hierfit.kernel.codes` (the program's layout), :mod:`~hierfit.kernel.spec`
(building it), :mod:`~hierfit.kernel.scalar` (special functions, priors),
:mod:`~hierfit.kernel.likelihood` (families and links), :mod:`~hierfit.kernel.terms`
(sds, LKJ correlations), :mod:`~hierfit.kernel.density` (the two log densities),
:mod:`~hierfit.kernel.entry` (the C entry points), :mod:`~hierfit.kernel.driver`
(running nutpie on them).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from .spec import KernelSpec, KernelUnsupported, build_spec, kernel_support

__all__ = ["KernelSpec", "KernelUnsupported", "build_spec", "kernel_support", "load", "entry_point", "cache_tag"]

_JITTED = ("codes.py", "scalar.py", "likelihood.py", "terms.py", "density.py", "entry.py")


def cache_tag() -> str:
    """A digest of the kernel's source files and numba's version: the name of its cache folder.

    numba invalidates a cached function only when its own file changes; keying the
    folder by every kernel file means an edit anywhere recompiles everything.
    """
    import numba

    h = hashlib.sha1(numba.__version__.encode())
    here = Path(__file__).resolve().parent
    for name in _JITTED:
        h.update((here / name).read_bytes())
    return "hierfit-kernel-" + h.hexdigest()[:16]


@contextlib.contextmanager
def _cache_folder():
    import numba

    base = numba.config.CACHE_DIR
    if not base:  # numba's default: next to the sources (or the user cache when those are read-only)
        yield
        return
    numba.config.CACHE_DIR = os.path.join(base, cache_tag())
    try:
        yield
    finally:
        numba.config.CACHE_DIR = base


def load():
    """The kernel's numba module :mod:`hierfit.kernel.entry`, imported with the kernel's cache folder.

    Its ``logp_and_grad(x, grad, ints, floats)`` evaluates a spec's log density from
    Python (tests, checks); the sampler uses :func:`entry_point`.

    Example
    -------
    >>> entry = load()
    >>> callable(entry.logp_and_grad)
    True
    """
    import sys

    name = __name__ + ".entry"
    if name not in sys.modules:
        with _cache_folder():
            from . import entry  # noqa: F401
    return sys.modules[name]


def entry_point(name: str):
    """The address of a C entry point: ``"full"`` or ``"collapsed"`` (log density and gradient) or ``"expand"``.

    Compiled on first use (cached on disk, in the kernel's cache folder).

    Example
    -------
    >>> entry_point("collapsed") > 0
    True
    """
    entry = load()
    with _cache_folder():
        return entry.cfunc(name).address
