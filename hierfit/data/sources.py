"""Which inputs a data engine handles, and opening them lazily as a ``dask.dataframe.DataFrame``.

Local paths are checked when they are opened: a path, glob or folder that names no
file is a :class:`~hierfit.errors.DataError` that names it.  The footers of several
local Parquet files are read then (their schemas, not their data), so that a column the
formula uses and that some files lack, or that has different types in different files,
is refused before a pass reads the data (:func:`check_source_columns`).  The errors that
Dask raises while a pass reads the files (a CSV column whose type it guessed wrong from
the first rows, a column missing from a later file) become hierfit errors that say which
column and what to do (:func:`explain_engine_error`).
"""

from __future__ import annotations

import ast
import os
import re
from collections import OrderedDict
from dataclasses import dataclass

from hierfit.errors import DataError, HierfitError

__all__ = ["is_engine_data", "is_dask_frame", "open_frame", "describe_source", "distributed_client",
           "check_source_columns", "explain_engine_error"]

_CSV_EXTS = {".csv": ",", ".tsv": "\t"}
_COMPRESSIONS = ("", ".gz", ".bz2", ".xz")
_SUFFIXES = (".parquet", ".pq", ".parq") + tuple(e + c for e in _CSV_EXTS for c in _COMPRESSIONS)
#: The file names Dask reads from a Parquet folder (``read_parquet``'s default ``parquet_file_extension``).
_PARQUET_EXTS = (".parquet", ".pq", ".parq")
_GLOB_CHARS = re.compile(r"[*?\[]")
#: Footers read at once when many Parquet files are opened (reading one is a small local read).
_FOOTER_THREADS = 8


def is_dask_frame(obj) -> bool:
    """True for a ``dask.dataframe.DataFrame`` (checked without importing Dask).

    Example
    -------
    >>> import pandas as pd
    >>> is_dask_frame(pd.DataFrame({"a": [1]}))
    False
    """
    mod = type(obj).__module__ or ""
    return mod.split(".")[0] in ("dask", "dask_expr") and type(obj).__name__ == "DataFrame"


def _is_path(obj) -> bool:
    return isinstance(obj, (str, os.PathLike))


def is_engine_data(data) -> bool:
    """True when ``data`` is read through a data engine: a Dask DataFrame, or Parquet/CSV path(s) or glob(s).

    Example
    -------
    >>> is_engine_data("scores/*.parquet"), is_engine_data(["a.csv", "b.csv"]), is_engine_data({"a": [1]})
    (True, True, False)
    """
    if is_dask_frame(data):
        return True
    if _is_path(data):
        return True
    return isinstance(data, (list, tuple)) and len(data) > 0 and all(_is_path(p) for p in data)


def _csv_suffix(path: str) -> tuple[str, str] | None:
    """``(extension, compression suffix)`` of a CSV/TSV name in any case (``.CSV.GZ``), else None."""
    low = path.lower().rstrip("/")
    for ext in _CSV_EXTS:
        for comp in _COMPRESSIONS:
            if low.endswith(ext + comp):
                return ext, comp
    return None


def _kind(paths: list[str]) -> str:
    kinds = {"csv" if _csv_suffix(p) else "parquet" for p in paths}  # else a .parquet file, a folder or a glob
    if len(kinds) > 1:
        raise DataError("data mixes CSV and Parquet paths; pass one kind")
    return kinds.pop()


def _separator(paths: list[str]) -> str:
    """The separator of CSV (comma) or TSV (tab) files, whatever the case of their names."""
    seps = {_CSV_EXTS[_csv_suffix(p)[0]] for p in paths}
    if len(seps) > 1:
        raise DataError("data mixes comma-separated (.csv) and tab-separated (.tsv) files; pass one kind")
    return seps.pop()


def _some(items: list[str], n: int = 3) -> str:
    """``a, b, c and 4 more``."""
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _folder_files(fs, folder: str) -> list[str]:
    """The Parquet files Dask reads from a folder: named ``*.parquet``/``*.pq``/``*.parq``, none under ``_``/``.``."""
    root = fs._strip_protocol(folder).rstrip("/")
    out = []
    for f in fs.find(folder):
        rel = f[len(root):].lstrip("/") if f.startswith(root) else os.path.basename(f)
        if any(part.startswith(("_", ".")) for part in rel.split("/")):
            continue
        if f.lower().endswith(_PARQUET_EXTS):
            out.append(f)
    return sorted(out)


def _local_files(paths: list[str], kind: str) -> list[str] | None:
    """The local files ``paths`` name (globs expanded, Parquet folders listed); None if a path is remote.

    A path, glob or folder that names no file is a :class:`DataError` that names it.
    """
    if not all(_is_local(p) for p in paths):
        return None  # remote stores: Dask lists them (and reports what it cannot open)
    import fsspec

    fs = fsspec.filesystem("file")
    out: list[str] = []
    for p in paths:
        what = "Parquet" if kind == "parquet" else "CSV"
        if _GLOB_CHARS.search(p):
            found = fs.glob(p)
            if not found:
                raise DataError(f"the {what} path {p!r} matched no file (check the folder and the pattern)")
            for f in found:
                out.extend(_folder_files(fs, f) if kind == "parquet" and fs.isdir(f) else [f])
        elif fs.isdir(p):
            if kind == "csv":
                raise DataError(f"{p!r} is a folder; pass the CSV files, or a glob such as "
                                f"{os.path.join(p, '*.csv')!r}")
            found = _folder_files(fs, p)
            if not found:
                raise DataError(f"the folder {p!r} holds no Parquet files (files named *.parquet, *.pq or *.parq)")
            out.extend(found)
        elif fs.exists(p):
            out.append(fs._strip_protocol(p))
        else:
            raise DataError(f"no such {what} file or folder: {p!r}")
    return out


@dataclass
class _Source:
    """What :func:`open_frame` opened: the paths as given, the local files, and the Parquet files' schemas."""

    kind: str
    paths: list[str]
    files: list[str] | None
    sep: str = ","
    schemas: dict | None = None  # file -> {column: pyarrow type}, for several local Parquet files
    headers: dict | None = None  # file -> column names of its first line, for several local CSV files

    def label(self) -> str:
        return _some(self.paths, 2)


#: The sources of the frames :func:`open_frame` returned, by the name of their read expression (the last few).
_SOURCES: OrderedDict[str, _Source] = OrderedDict()
_MAX_SOURCES = 64


def _read_schemas(files: list[str]) -> dict:
    """``{file: {column: pyarrow type}}`` from the files' footers (no data is read)."""
    import pyarrow.parquet as pq

    def one(f):
        try:
            schema = pq.read_schema(f)
            return dict(zip(schema.names, schema.types))
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise DataError(f"cannot read the Parquet footer of {f}: {err}") from err

    if len(files) <= 2 * _FOOTER_THREADS:
        return {f: one(f) for f in files}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(_FOOTER_THREADS) as pool:
        return dict(zip(files, pool.map(one, files)))


def _register(ddf, source: _Source) -> None:
    name = getattr(getattr(ddf, "expr", None), "_name", None)
    if name is None:
        return
    _SOURCES[name] = source
    _SOURCES.move_to_end(name)
    while len(_SOURCES) > _MAX_SOURCES:
        _SOURCES.popitem(last=False)


def _source_of(ddf) -> _Source | None:
    """The source :func:`open_frame` registered for ``ddf`` or for a frame it was derived from."""
    expr = getattr(ddf, "expr", None)
    if expr is None or not _SOURCES:
        return None
    try:
        for e in expr.walk():
            src = _SOURCES.get(getattr(e, "_name", None))
            if src is not None:
                return src
    except Exception:  # an expression Dask cannot walk: no source known
        return None
    return None


def open_frame(data):
    """A lazy ``dask.dataframe.DataFrame`` for ``data`` (nothing is read but the file footers/headers).

    ``.csv`` files are read comma-separated and ``.tsv`` files tab-separated, in any case
    of the name and compressed (``.gz``, ``.bz2``, ``.xz``) or not.  A local path, glob or
    folder that names no file raises a :class:`~hierfit.errors.DataError` that names it.

    Example
    -------
    >>> import dask.dataframe as dd, pandas as pd
    >>> open_frame(dd.from_pandas(pd.DataFrame({"a": [1, 2]}), npartitions=1)).columns.tolist()
    ['a']
    >>> try:
    ...     open_frame("no-such-folder/*.parquet")
    ... except DataError as err:
    ...     print(err)
    the Parquet path 'no-such-folder/*.parquet' matched no file (check the folder and the pattern)
    """
    try:
        import dask.dataframe as dd
    except ImportError as err:
        raise HierfitError("fitting from Parquet/CSV files or Dask frames needs Dask: "
                           "pip install 'hierfit[dask]'") from err
    if is_dask_frame(data):
        return data
    paths = [os.fspath(data)] if _is_path(data) else [os.fspath(p) for p in data]
    kind = _kind(paths)
    sep = _separator(paths) if kind == "csv" else ","
    files = _local_files(paths, kind)
    source = _Source(kind, paths, files, sep)
    try:
        if kind == "csv":
            # a compressed file is one block (Dask says so in a warning, and reads it whole anyway)
            compressed = any(_csv_suffix(p)[1] for p in paths)
            ddf = dd.read_csv(paths if len(paths) > 1 else paths[0], sep=sep,
                              **({"blocksize": None} if compressed else {}))
        else:
            ddf = dd.read_parquet(paths if len(paths) > 1 else paths[0])
    except (OSError, ValueError) as err:
        raise DataError(f"cannot open {kind} data {', '.join(paths[:3])}: {err}") from err
    if kind == "parquet" and files is not None and len(files) > 1:
        source.schemas = _read_schemas(files)
    if kind == "csv" and files is not None and len(files) > 1:  # a file lacking a column reads as NaN in Dask
        source.headers = _csv_headers(source)
    _register(ddf, source)
    return ddf


def _arrow_kind(t) -> str | None:
    """The kind of values a Parquet column holds (``number``, ``text``, ``bool``, ...); None for all-null."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_null(t):
        return None
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"  # integers in some files and floats in others read as the same numbers
    if pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", bool)(t):
        return "text"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "date/time"
    return str(t).split("<")[0].split("[")[0]


def check_source_columns(ddf, columns: list[str]) -> None:
    """Refuse the formula's ``columns`` when the files :func:`open_frame` opened disagree about them.

    Parquet files, from their footers read when they were opened: a column that some
    files have and others lack, or that holds numbers in some files and text (or
    booleans, dates) in others; CSV files, from their first lines: a column that some
    files lack (Dask would read it as missing values there).  Either raises a
    :class:`~hierfit.errors.DataError` that names the column and the files.  Columns the
    formula does not use may differ.  Frames not opened from several local files are
    not checked here.

    Example
    -------
    >>> import dask.dataframe as dd, pandas as pd
    >>> check_source_columns(dd.from_pandas(pd.DataFrame({"y": [1.0]}), npartitions=1), ["y"]) is None
    True
    """
    src = _source_of(ddf)
    if src is not None and src.headers:
        for c in columns:
            lacking = [f for f, h in src.headers.items() if c not in h]
            if lacking and len(lacking) < len(src.headers):
                having = [f for f in src.headers if f not in lacking]
                raise DataError(f"column '{c}' is missing from {len(lacking)} of the {len(src.headers)} CSV files: "
                                f"{_some(lacking)} (it is in {_some(having)}); the files have different columns: "
                                "write the column in every file, or pass only the files that have it")
    if src is None or not src.schemas:
        return
    schemas = src.schemas
    for c in columns:
        having = [f for f, s in schemas.items() if c in s]
        if not having:
            continue  # not in the files (a folder's partition column): Dask adds it
        lacking = [f for f, s in schemas.items() if c not in s]
        if lacking:
            raise DataError(f"column '{c}' is missing from {len(lacking)} of the {len(schemas)} Parquet files: "
                            f"{_some(lacking)} (it is in {_some(having)}); the files have different columns: write "
                            "the column in every file, or pass only the files that have it")
        kinds: dict[str, list[tuple[str, str]]] = {}
        for f, s in schemas.items():
            t = s[c]
            k = _arrow_kind(t)
            if k is not None:
                kinds.setdefault(k, []).append((f, str(t)))
        if len(kinds) > 1:
            parts = []
            for k, fs in kinds.items():
                types = "/".join(dict.fromkeys(t for _, t in fs))
                parts.append(f"{k} ({types}) in {len(fs)} file(s): {_some([f for f, _ in fs], 2)}")
            raise DataError(f"column '{c}' has different types in the {len(schemas)} Parquet files: "
                            + "; ".join(parts) + f". Write '{c}' with one type in every file (e.g. convert it with "
                            f"df['{c}'].astype(str) for labels, or pd.to_numeric(df['{c}']) for numbers, before "
                            "df.to_parquet(...)), or pass a dask DataFrame in which you converted the column")


_TEXT = {"str": "str (text)", "object": "object (text)", "string": "string (text)"}
_MISMATCH_ROW = re.compile(r"^\|\s*(.+?)\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|\s*$")


def _csv_dtype_error(err: ValueError, src: _Source | None) -> DataError | None:
    text = str(err)
    if "Mismatched dtypes found" not in text:
        return None
    rows = [m.groups() for m in map(_MISMATCH_ROW.match, text.splitlines()) if m and m.group(1) != "Column"]
    where = f"the CSV data {src.label()}" if src is not None else "the CSV data"
    if not rows:
        return DataError(f"{where}: Dask guessed a column's type from the first rows wrong; read the files with "
                         f"explicit types (dd.read_csv(..., dtype=...)) and pass the dask DataFrame, or convert the "
                         f"files to Parquet. Dask said: {text}")
    described = ", ".join(f"'{c}' (guessed {exp} from the first rows, found {_TEXT.get(found, found)} further on)"
                          for c, found, exp in rows)
    dtype = "{" + ", ".join(f"{c!r}: '{found}'" for c, found, _ in rows) + "}"
    extra = ""
    if all(found.startswith("float") and exp.startswith(("int", "uint")) for _, found, exp in rows):
        extra = " (or assume_missing=True: integer columns with missing values read as floats)"
    return DataError(f"{where}: Dask guessed the type of column(s) {described}; Dask reads a CSV's types from the "
                     f"first rows of the first file only. Read the files yourself with the types given, "
                     f"dd.read_csv(paths, dtype={dtype}){extra}, and pass that dask DataFrame to hierfit, or convert "
                     "the files to Parquet, whose files record their types")


def _csv_headers(src: _Source) -> dict[str, list[str]]:
    """The column names in the first line of each local CSV file (empty if they cannot be read)."""
    import pandas as pd

    out = {}
    for f in src.files or []:
        try:
            out[f] = list(pd.read_csv(f, sep=src.sep, nrows=0).columns)
        except (OSError, ValueError):
            return {}
    return out


def _missing_column_error(err: KeyError, columns: list[str], src: _Source | None) -> DataError | None:
    m = re.search(r"(\[.*\]) not in index", str(err))
    if m is None:
        return None
    try:
        names = [str(c) for c in ast.literal_eval(m.group(1))]
    except (ValueError, SyntaxError):
        return None
    names = [c for c in names if c in columns]
    if not names:
        return None  # not a column of the formula: not a problem of the data
    cols = ", ".join(f"'{c}'" for c in names)
    if src is not None:
        if src.schemas:
            heads = src.schemas
        else:
            heads = _csv_headers(src) if src.kind == "csv" else {}
        lacking = [f for f, cs in heads.items() if any(c not in cs for c in names)]
        if lacking:
            kind = "Parquet" if src.kind == "parquet" else "CSV"
            return DataError(f"column(s) {cols} missing from {len(lacking)} of the {len(heads)} {kind} files: "
                             f"{_some(lacking)}; the files have different columns: write the column in every file, "
                             "or pass only the files that have it")
        where = src.label()
    else:
        where = "the data"
    return DataError(f"column(s) {cols} missing from some of the files or partitions of {where} (Dask took the "
                     "columns from the first file): the files have different columns; write the column in every "
                     "file, or pass only the files that have it")


def explain_engine_error(err: BaseException, ddf, columns: list[str]) -> DataError | None:
    """The :class:`~hierfit.errors.DataError` for an error Dask raised while a pass read ``ddf``, or None.

    Two kinds of bad files show up only when the rows are read: a CSV column whose type
    Dask guessed from the first rows wrong (a ``Mismatched dtypes`` ``ValueError``) and a
    column of the formula (``columns``) missing from a later file or partition (a
    ``KeyError``).  Any other error gives None: the caller re-raises it as it is.

    Example
    -------
    >>> import dask.dataframe as dd, pandas as pd
    >>> ddf = dd.from_pandas(pd.DataFrame({"y": [1.0]}), npartitions=1)
    >>> print(explain_engine_error(KeyError("['x'] not in index"), ddf, ["y", "x"]))  # doctest: +ELLIPSIS
    column(s) 'x' missing from some of the files or partitions of the data ...
    >>> explain_engine_error(KeyError("['x'] not in index"), ddf, ["y"]) is None   # not a column of the formula
    True
    """
    src = _source_of(ddf)
    if isinstance(err, KeyError):
        return _missing_column_error(err, columns, src)
    if isinstance(err, ValueError) and not isinstance(err, HierfitError):
        return _csv_dtype_error(err, src)
    return None


def describe_source(data) -> str:
    """A short name of the data for the summary header (the path, or ``dask DataFrame``).

    Example
    -------
    >>> describe_source(["2023.parquet", "2024.parquet", "2025.parquet"])
    '2023.parquet and 2 more'
    """
    if is_dask_frame(data):
        return f"dask DataFrame ({data.npartitions} partitions)"
    paths = [os.fspath(data)] if _is_path(data) else [os.fspath(p) for p in data]
    return paths[0] if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more"


def distributed_client():
    """The current ``dask.distributed`` client, or None (not installed, or Dask's local schedulers in this process).

    Example
    -------
    >>> distributed_client() is None   # no cluster started here
    True
    """
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None
