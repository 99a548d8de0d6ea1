"""Keeping the model's columns in the Dask workers' memory between the passes, when they fit there.

A fit from engine data reads the rows three times: the metadata pass, the grouped pass
and, after sampling, the residual pass.  When the columns the formula uses take at most
a quarter of the memory of a ``dask.distributed`` cluster's workers, they are read once
into the workers' memory (Dask's ``persist``) and the later passes reuse them: from the
metadata pass on when the row count is known beforehand (Parquet files' footers), else
from the grouped pass on.  The fitting process never holds them, and they are released
as soon as the residual pass is done.  Larger data (or no distributed cluster: the threaded scheduler
would hold them in the fitting process) are read again by every pass.

Example
-------
>>> import dask.dataframe as dd, pandas as pd
>>> frames = EngineData(dd.from_pandas(pd.DataFrame({"y": [1.0, 2.0]}), npartitions=1))
>>> frames.passes is frames.lazy
True
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hierfit.data.sources import distributed_client

__all__ = ["EngineData", "resident_columns", "estimated_bytes", "footer_rows", "RESIDENT_SHARE"]

#: Largest share of the workers' total memory limit that the resident columns may take.
RESIDENT_SHARE = 0.25


@dataclass
class EngineData:
    """The frame of a fit from engine data.

    Attributes
    ----------
    lazy : the Dask DataFrame as given or opened (what ``fit.fitted()`` re-reads)
    resident : the formula's columns persisted in the workers' memory, or None
    """

    lazy: object
    resident: object | None = None

    @property
    def passes(self):
        """The frame the passes read: the resident columns when there are, else the lazy frame."""
        return self.resident if self.resident is not None else self.lazy

    def release(self) -> None:
        """Let the workers free the resident columns."""
        self.resident = None


def estimated_bytes(meta: pd.DataFrame, columns: list[str], nrows: int) -> float:
    """Memory the columns take in pandas for ``nrows`` rows (strings counted at 64 bytes a value).

    Example
    -------
    >>> estimated_bytes(pd.DataFrame({"a": pd.Series([], dtype="float32")}), ["a"], 1000)
    4000.0
    """
    per_row = 0
    for c in columns:
        dtype = meta[c].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            per_row += 2  # codes (int8/int16 for up to 32,767 categories)
        elif dtype.kind in "biufcmM":
            per_row += dtype.itemsize
        else:
            per_row += 64
    return float(per_row) * nrows


def _workers_memory(client) -> float | None:
    """Sum of the memory limits of the client's workers, or None when one has none."""
    workers = client.scheduler_info().get("workers", {})
    limits = [w.get("memory_limit") or 0 for w in workers.values()]
    return float(sum(limits)) if limits and all(limits) else None


def footer_rows(ddf) -> int | None:
    """The row count of a frame read straight from Parquet (from the files' footers), else None.

    Any other frame would have to be computed to count its rows.

    Example
    -------
    >>> import dask.dataframe as dd, pandas as pd
    >>> footer_rows(dd.from_pandas(pd.DataFrame({"y": [1.0]}), npartitions=1)) is None
    True
    """
    expr = getattr(ddf, "expr", None)
    if expr is None or not type(expr).__name__.startswith("ReadParquet"):
        return None
    try:
        return int(len(ddf))
    except (OSError, ValueError, TypeError):
        return None


def resident_columns(ddf, columns: list[str], nrows: int):
    """``ddf[columns]`` persisted in the workers when they fit there (see the module's text), else None.

    Example
    -------
    >>> import dask.dataframe as dd, pandas as pd
    >>> ddf = dd.from_pandas(pd.DataFrame({"y": [1.0, 2.0]}), npartitions=1)
    >>> resident_columns(ddf, ["y"], 2) is None   # no distributed cluster here
    True
    """
    client = distributed_client()
    memory = None if client is None else _workers_memory(client)
    if memory is None or estimated_bytes(ddf._meta, columns, nrows) > RESIDENT_SHARE * memory:
        return None
    return ddf[columns].persist()

