"""The fit-file container: one zip holding ``meta.json`` and plain ``.npy`` arrays; data only.

A fit file never holds Python objects: the model description is JSON and the
numbers are NumPy ``.npy`` arrays read with ``allow_pickle=False`` (numbers, text,
booleans and dates only), so loading a file cannot run code.  This module knows
nothing about fits: :func:`write_fit_file` takes a JSON-able dict and a dict of
arrays, :func:`read_fit_file` gives them back (the fit class rebuilds itself from them).

Reading is bounded: a file may decompress to at most :data:`MAX_RATIO` times its
size (or :data:`MIN_ALLOWANCE` bytes for small files), every member is checked
against the size it declares, and an array header must describe exactly the bytes
that follow it, all before memory is used.

Writing is atomic: a temporary file next to the target, flushed and ``fsync``-ed,
then renamed over the target (whose permission bits are kept); on any failure the
temporary file is removed and the error is a :class:`hierfit.PersistenceError`
naming the path.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from hierfit.errors import PersistenceError

__all__ = ["write_fit_file", "read_fit_file", "FORMAT", "FORMAT_VERSION", "MAX_RATIO", "MIN_ALLOWANCE",
           "MAX_MEMBERS"]

FORMAT = "hierfit-fit"
#: 1: the old pickle format (refused); 2: JSON + .npy arrays.
FORMAT_VERSION = 2
#: A file may decompress to at most this many times its own size ...
MAX_RATIO = 50
#: ... or to this many bytes, whichever is larger (small files).
MIN_ALLOWANCE = 64 * 2**20
#: At most this many members in one file.
MAX_MEMBERS = 10_000
_ARRAY_KINDS = "biufcUmM"  # numbers, booleans, text, dates, durations: never objects


def _os_error(path: Path, err: OSError, doing: str) -> PersistenceError:
    reason = {errno.ENOSPC: "no space left on the device", errno.EFBIG: "the file is too large for the file system",
              errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
              errno.EROFS: "the file system is read-only", errno.EISDIR: "it is a directory",
              errno.ENOTDIR: "a part of the path is not a directory",
              errno.ENOENT: "the folder does not exist"}.get(err.errno, err.strerror or str(err))
    return PersistenceError(f"cannot {doing} {str(path)!r}: {reason}")


def _npy_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr)
    if arr.dtype.kind not in _ARRAY_KINDS:
        raise PersistenceError(f"cannot store an array of dtype {arr.dtype} in a fit file (numbers and text only)")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def write_fit_file(path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write ``meta`` (JSON-able) and ``arrays`` to ``path`` atomically.

    Example
    -------
    >>> import tempfile, os, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "x.hfit")
    >>> write_fit_file(p, {"format": FORMAT, "format_version": FORMAT_VERSION}, {"a": np.arange(3)})
    >>> read_fit_file(p)[1]["a"]
    array([0, 1, 2])
    """
    path = Path(path)
    try:
        text = json.dumps(meta, indent=1, allow_nan=True)
    except (TypeError, ValueError) as err:
        raise PersistenceError(f"cannot save to {str(path)!r}: the model description is not plain data "
                               f"({err})") from err
    members = {f"arrays/{name}.npy": _npy_bytes(arr) for name, arr in arrays.items()}
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise PersistenceError(f"cannot save to {str(path)!r}: it is a directory")
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a folder"
        raise PersistenceError(f"cannot save to {str(path)!r}: folder {str(directory)!r} {what}")
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    except OSError:
        mode = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as err:
        raise _os_error(path, err, "save to") from err
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("meta.json", text)
                for name, data in members.items():
                    zf.writestr(name, data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        try:  # make the rename itself durable
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise _os_error(path, err, "save to") from err
        raise


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    with zf.open(info) as fh:
        data = fh.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise PersistenceError(f"cannot read {str(path)!r}: member {info.filename!r} is larger or smaller than it "
                               "declares; the file is damaged or truncated")
    return data


def _parse_npy(data: bytes, name: str, path: Path) -> np.ndarray:
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except (ValueError, SyntaxError, TypeError) as err:
        raise PersistenceError(f"cannot read {str(path)!r}: array {name!r} is damaged ({err})") from err
    if dtype.kind not in _ARRAY_KINDS or dtype.hasobject:
        raise PersistenceError(f"{str(path)!r}: array {name!r} holds Python objects ({dtype}), which hierfit never "
                               "writes and does not load; the file was not written by hierfit")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    body = memoryview(data)[buf.tell():]
    if count < 0 or count * dtype.itemsize != len(body):
        raise PersistenceError(f"cannot read {str(path)!r}: array {name!r} declares {shape} x {dtype} but holds "
                               f"{len(body)} bytes; the file is damaged or truncated")
    arr = np.frombuffer(body, dtype=dtype, count=count).copy()
    return arr.reshape(shape, order="F" if fortran else "C")


def _check_sizes(zf: zipfile.ZipFile, path: Path, size: int) -> None:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise PersistenceError(f"{str(path)!r} has {len(infos)} members, more than a fit file has (at most "
                               f"{MAX_MEMBERS}); not loaded")
    allowance = max(MAX_RATIO * size, MIN_ALLOWANCE)
    total = 0
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise PersistenceError(f"{str(path)!r}: member {info.filename!r} uses a compression hierfit does not "
                                   "write; not loaded")
        total += info.file_size
        if total > allowance:
            raise PersistenceError(
                f"{str(path)!r} claims to decompress to more than {allowance / 2**20:.0f} MiB "
                f"({MAX_RATIO} times its size of {size} bytes); a fit file never does, so it is not loaded "
                "(a damaged file or a zip bomb)")


def read_fit_file(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a fit file: its ``meta.json`` dict and its arrays, without running anything.

    Raises :class:`hierfit.PersistenceError` for missing, foreign, damaged, oversized
    files, old pickle-format files and files from a newer format version.

    Example
    -------
    >>> meta, arrays = read_fit_file("exam_rs.hfit")  # doctest: +SKIP
    >>> meta["hierfit_version"]  # doctest: +SKIP
    '0.1.0'
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise PersistenceError(f"cannot read {str(path)!r}: it is a directory, not a hierfit fit file")
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise PersistenceError(f"no such file: {str(path)!r}") from None
    except OSError as err:
        raise _os_error(path, err, "read") from err
    if size == 0:
        raise PersistenceError(f"cannot read {str(path)!r}: the file is empty (damaged or truncated)")
    if not head.startswith(b"PK"):
        raise PersistenceError(f"{str(path)!r} is not a hierfit fit file (hierfit fit files are written by "
                               "fit.save(); read data files with pandas or 'hierfit fit')")
    try:
        with zipfile.ZipFile(path) as zf:
            _check_sizes(zf, path, size)
            infos = {i.filename: i for i in zf.infolist()}
            if "meta.json" not in infos:
                raise PersistenceError(f"{str(path)!r} is not a hierfit fit file (no meta.json inside)")
            meta = json.loads(_read_member(zf, infos["meta.json"], path).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
                raise PersistenceError(f"{str(path)!r} is not a hierfit fit file (format {found!r})")
            version = meta.get("format_version")
            written_by = meta.get("hierfit_version", "an unknown version")
            if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
                raise PersistenceError(
                    f"{str(path)!r} was written in fit-file format {version}, newer than this hierfit reads "
                    f"({FORMAT_VERSION}); upgrade hierfit (it was saved by hierfit {written_by})")
            if version == 1 or "fit.pkl" in infos:
                raise PersistenceError(
                    f"{str(path)!r} was written by hierfit {written_by} in the old pickle format, which is not "
                    "loaded for safety (loading it could run code); refit the model and save it again")
            if version < FORMAT_VERSION:
                raise PersistenceError(f"{str(path)!r} was written by hierfit {written_by} in fit-file format "
                                       f"{version}, which this hierfit does not read; refit and save again")
            arrays = {}
            for name, info in infos.items():
                if name == "meta.json":
                    continue
                if not (name.startswith("arrays/") and name.endswith(".npy")):
                    raise PersistenceError(f"{str(path)!r} holds an unexpected member {name!r}; not a file hierfit "
                                           "wrote")
                key = name[len("arrays/"):-len(".npy")]
                arrays[key] = _parse_npy(_read_member(zf, info, path), key, path)
    except PersistenceError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, json.JSONDecodeError, UnicodeDecodeError,
            ValueError, KeyError, NotImplementedError, RuntimeError, zlib.error, OverflowError) as err:
        raise PersistenceError(f"cannot read {str(path)!r}: the file is damaged or truncated ({err})") from err
    except OSError as err:
        raise _os_error(path, err, "read") from err
    return meta, arrays
