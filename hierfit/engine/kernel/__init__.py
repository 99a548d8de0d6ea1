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
import stat
import tempfile
from pathlib import Path

from hierfit.engine.kernel.spec import KernelSpec, KernelUnsupported, build_spec, kernel_support

__all__ = ["KernelSpec", "KernelUnsupported", "build_spec", "kernel_support", "load", "entry_point", "cache_tag",
           "cache_base", "kernel_cache_folder", "safe_folder", "compiled_now"]

_JITTED = ("codes.py", "scalar.py", "linalg.py", "likelihood.py", "terms.py", "addition.py", "nested.py",
           "vecmath.py", "rows.py", "density.py", "entry.py")


def cache_tag() -> str:
    """The kernel's cache folder name: hierfit's version and a digest of the kernel's sources and numba's version.

    numba invalidates a cached function only when its own file changes; keying the
    folder by every kernel file means an edit anywhere recompiles everything, and a new
    hierfit version never reads an older one's machine code.

    Example
    -------
    >>> cache_tag().startswith("hierfit-")
    True
    """
    import numba

    from hierfit.version import __version__

    h = hashlib.sha1(numba.__version__.encode())
    here = Path(__file__).resolve().parent
    for name in _JITTED:
        h.update((here / name).read_bytes())
    return f"hierfit-{__version__}-kernel-{h.hexdigest()[:16]}"


_PRIVATE: dict[str, str] = {}  # unusable cache folder -> this process's private replacement


def safe_folder(path: str) -> str | None:
    """Create ``path`` (mode 0700) if missing; None unless it is a real folder of this user that only they can write.

    numba reads its cache index with pickle, so a cache folder that another user can
    write (or owns) would let them run code in this process.

    Example
    -------
    >>> import tempfile, os
    >>> d = os.path.join(tempfile.mkdtemp(), "c")
    >>> safe_folder(d) == d, oct(os.stat(d).st_mode & 0o777)
    (True, '0o700')
    """
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None  # a symbolic link or a file
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        return None
    if st.st_mode & 0o077:  # ours, but readable by others (made by an older hierfit): make it private
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass
    if not os.access(path, os.W_OK | os.X_OK):
        return None
    return path


def cache_base() -> str:
    """Where the compiled kernel is cached: one folder per user, shared by every process.

    ``NUMBA_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/hierfit`` (by default
    ``~/.cache/hierfit``), created with mode 0700.  A folder that is not this user's or
    that others can write is refused with a warning, and a fresh private temporary folder
    (random name, mode 0700) is used for this process instead; never a predictable
    folder in the shared temporary directory.

    Example
    -------
    >>> os.path.isdir(cache_base())
    True
    """
    import numba

    from hierfit.errors import HierfitWarning, warn

    if numba.config.CACHE_DIR:
        wanted = str(numba.config.CACHE_DIR)
    else:
        root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        wanted = os.path.join(root, "hierfit")
    if safe_folder(wanted) is not None:
        return wanted
    if wanted not in _PRIVATE:
        _PRIVATE[wanted] = tempfile.mkdtemp(prefix="hierfit-kernel-")
        warn(f"the compile cache folder {wanted!r} cannot be used safely (missing and not creatable, not yours, "
             f"or writable by others); compiling into a private temporary folder {_PRIVATE[wanted]!r} instead, "
             "so this process compiles the kernel again. Fix: remove that folder, or set XDG_CACHE_HOME to a "
             "folder only you can write.", HierfitWarning)
    return _PRIVATE[wanted]


def kernel_cache_folder() -> str:
    """``<cache_base()>/<cache_tag()>``, created with mode 0700: where numba keeps the kernel's machine code.

    Example
    -------
    >>> os.path.basename(kernel_cache_folder()) == cache_tag()
    True
    """
    base = cache_base()
    folder = os.path.join(base, cache_tag())
    if safe_folder(folder) is None:
        return safe_folder(tempfile.mkdtemp(prefix="hierfit-kernel-")) or base
    return folder


@contextlib.contextmanager
def _cache_folder():
    """numba's cache folder set to ``<cache_base()>/<cache_tag()>`` while the kernel is compiled or loaded.

    Always a folder of our own, keyed by the kernel's sources: numba's default cache
    (next to the sources) checks only each function's own file, so an edit elsewhere in
    the kernel could load stale machine code reading the program with an old layout.
    """
    import numba

    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = kernel_cache_folder()
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


def compiled_now() -> list[str]:
    """Entry points this process compiled (rather than loaded from the on-disk cache).

    Empty after a fit when the kernel's machine code came from the cache.

    Example
    -------
    >>> _ = entry_point("collapsed")
    >>> isinstance(compiled_now(), list)
    True
    """
    import sys

    entry = sys.modules.get(__name__ + ".entry")
    if entry is None:
        return []
    return [name for name in ("full", "collapsed", "expand")
            if name in entry.compiled_entries() and entry.compiled_entries()[name].cache_hits == 0]
