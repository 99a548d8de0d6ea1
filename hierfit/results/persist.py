"""Saving and loading fits: one zip file with a JSON header and the pickled fit.

The write is atomic (a temporary file renamed into place), so an interrupted
``save`` never leaves a half-written file under the target name.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

from hierfit.errors import PersistenceError

__all__ = ["save_fit", "load", "FORMAT_VERSION"]

FORMAT = "hierfit-fit"
FORMAT_VERSION = 1


def save_fit(fit, path) -> None:
    """Write ``fit`` to ``path`` (use :meth:`HierFit.save`)."""
    from hierfit.version import __version__

    path = Path(path)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "hierfit_version": __version__,
            "formula": fit.formula, "nobs": fit.nobs}
    payload = pickle.dumps(fit, protocol=pickle.HIGHEST_PROTOCOL)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.exists():
        raise PersistenceError(f"cannot save to {str(path)!r}: folder {str(directory)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("meta.json", json.dumps(meta, indent=1))
            zf.writestr("fit.pkl", payload)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load(path):
    """Load a fit written by :meth:`HierFit.save`.

    Raises :class:`hierfit.PersistenceError` for missing, truncated or foreign files and
    for files written by a newer format version.

    Example
    -------
    >>> import hierfit
    >>> fit = hierfit.load("exam_rs.hfit")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise PersistenceError(f"no such file: {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "meta.json" not in names or "fit.pkl" not in names:
                raise PersistenceError(f"{str(path)!r} is not a hierfit fit file (no meta.json/fit.pkl inside)")
            meta = json.loads(zf.read("meta.json"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
                raise PersistenceError(f"{str(path)!r} is not a hierfit fit file (format {found!r})")
            version = meta.get("format_version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise PersistenceError(
                    f"{str(path)!r} was written in fit-file format {version}, newer than this hierfit reads "
                    f"({FORMAT_VERSION}); upgrade hierfit (it was saved by hierfit {meta.get('hierfit_version')})"
                )
            fit = pickle.loads(zf.read("fit.pkl"))
        from hierfit.results.fit import HierFit

        if not isinstance(fit, HierFit):
            raise PersistenceError(f"{str(path)!r} holds a {type(fit).__name__}, not a fitted hierfit model")
    except PersistenceError:
        raise
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, json.JSONDecodeError, KeyError, OSError) as err:
        raise PersistenceError(f"cannot read {str(path)!r}: the file is damaged or truncated ({err})") from err
    return fit
