"""hierfit's compiled log density: one numba kernel for every model it handles, compiled once.

The pipeline stage between *model* and *sampling*: :func:`build_spec` turns a design,
its priors and the group-effect parametrization into a :class:`KernelSpec` (flat
arrays: the data, the level indices, the prior parameters and where every parameter
sits); :func:`load` returns the compiled entry points, which read any spec.  Nothing
is compiled per model, so a formula never fitted before starts sampling at once.
The PyMC model (:func:`hierfit.engine.model.build_model`) stays the specification: the
kernel's log density and gradient equal PyMC's at every point (tests/test_kernel.py).

Modules: :mod:`~hierfit.engine.kernel.codes` (the program's layout), :mod:`~hierfit.engine.kernel.spec`
(building it), :mod:`~hierfit.engine.kernel.scalar` (special functions, priors),
:mod:`~hierfit.engine.kernel.likelihood` (families and links), :mod:`~hierfit.engine.kernel.terms`
(sds, LKJ correlations), :mod:`~hierfit.engine.kernel.density` (the two log densities),
:mod:`~hierfit.engine.kernel.entry` (the C entry points), :mod:`~hierfit.engine.kernel.driver`
(running nutpie on them).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from hierfit.engine.kernel.spec import KernelSpec, KernelUnsupported, build_spec, kernel_support

__all__ = ["KernelSpec", "KernelUnsupported", "build_spec", "kernel_support", "load", "entry_point", "cache_tag",
           "cache_base"]

_JITTED = ("codes.py", "scalar.py", "likelihood.py", "terms.py", "nested.py", "rows.py", "density.py", "entry.py")


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


def cache_base() -> str:
    """Where the compiled kernel is cached: ``NUMBA_CACHE_DIR`` if set, else the user's cache folder.

    ``$XDG_CACHE_HOME/hierfit`` (by default ``~/.cache/hierfit``), or a folder in the
    temporary directory when that cannot be written.
    """
    import numba

    if numba.config.CACHE_DIR:
        return numba.config.CACHE_DIR
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    for base in (os.path.join(root, "hierfit"), os.path.join(tempfile.gettempdir(), f"hierfit-{user}")):
        try:
            os.makedirs(base, exist_ok=True)
            if os.access(base, os.W_OK):
                return base
        except OSError:
            continue
    return tempfile.mkdtemp(prefix="hierfit-kernel-")


@contextlib.contextmanager
def _cache_folder():
    """numba's cache folder set to ``<cache_base()>/<cache_tag()>`` while the kernel is compiled or loaded.

    Always a folder of our own, keyed by the kernel's sources: numba's default cache
    (next to the sources) checks only each function's own file, so an edit elsewhere in
    the kernel could load stale machine code reading the program with an old layout.
    """
    import numba

    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = os.path.join(cache_base(), cache_tag())
    try:
        yield
    finally:
        numba.config.CACHE_DIR = saved


def load():
    """The kernel's numba module :mod:`hierfit.engine.kernel.entry`, imported with the kernel's cache folder.

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
            from hierfit.engine.kernel import entry  # noqa: F401
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
