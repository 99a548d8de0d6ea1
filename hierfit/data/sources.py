"""Which inputs a data engine handles, and opening them lazily as a ``dask.dataframe.DataFrame``."""

from __future__ import annotations

import os

from hierfit.errors import DataError, HierfitError

__all__ = ["is_engine_data", "is_dask_frame", "open_frame", "describe_source", "distributed_client"]

_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv")


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


def _kind(paths: list[str]) -> str:
    kinds = set()
    for p in paths:
        low = p.lower().rstrip("/")
        if low.endswith((".csv", ".csv.gz", ".tsv")):
            kinds.add("csv")
        else:
            kinds.add("parquet")  # a .parquet file, a folder of them, or a glob
    if len(kinds) > 1:
        raise DataError("data mixes CSV and Parquet paths; pass one kind")
    return kinds.pop()


def open_frame(data):
    """A lazy ``dask.dataframe.DataFrame`` for ``data`` (nothing is read but the file footers/headers).

    Example
    -------
    >>> import dask.dataframe as dd, pandas as pd
    >>> open_frame(dd.from_pandas(pd.DataFrame({"a": [1, 2]}), npartitions=1)).columns.tolist()
    ['a']
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
    try:
        if kind == "csv":
            return dd.read_csv(paths if len(paths) > 1 else paths[0], sep="\t" if paths[0].endswith(".tsv") else ",")
        return dd.read_parquet(paths if len(paths) > 1 else paths[0])
    except (OSError, ValueError) as err:
        raise DataError(f"cannot open {kind} data {', '.join(paths[:3])}: {err}") from err


def describe_source(data) -> str:
    """A short name of the data for the summary header (the path, or ``dask DataFrame``)."""
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
