"""How an engine pass runs: one function per partition, the partial results added in a tree.

The metadata pass, the grouped pass and the residual pass all have this shape:
``func(partition, *args)`` returns a small partial result (counts, sums, a histogram)
and ``combine(*partials)`` adds several of them, ``split_every`` at a time, so the
process that asked receives one small object however many partitions there are.

With a ``dask.distributed`` client and columns kept in the workers' memory
(:func:`hierfit.data.resident.resident_columns`), each partition's task is submitted
to the worker(s) that hold that partition (loose restrictions: should a worker leave,
Dask recomputes its partitions and runs their tasks elsewhere).  Without that, the
scheduler placed a pass's tasks apart from their data and copied partitions between
workers (tens of megabytes each; 24 of 50 in a residual pass).  The
arguments (the frozen design, the posterior means) go to every worker once.  Any
other frame or scheduler: ``ddf[columns].to_delayed()`` and ``dask.compute``.
"""

from __future__ import annotations

from hierfit.data.allocation import release_workers
from hierfit.data.sources import check_source_columns, distributed_client, explain_engine_error

__all__ = ["run_pass", "BLOCK_ROWS"]

#: Rows a task codes at a time.  A task's temporaries (the coded columns, the level index: a few MB per block) are
#: then reused from one block to the next, from the heap (:mod:`hierfit.data.allocation`), instead of being mapped
#: afresh for every partition (in a worker, a partition of 2e6 rows coded at once faulted in 32-100 MB of new pages
#: per task, 12-300 ms of kernel time).
BLOCK_ROWS = 1 << 19


def _resident_futures(ddf, columns: list[str], client) -> list | None:
    """The futures of ``ddf``'s partitions in order when ``ddf`` is exactly these columns kept in the workers."""
    if client is None or list(ddf.columns) != list(columns):
        return None
    from distributed import futures_of

    futures = futures_of(ddf)
    names = {f.key[0] if isinstance(f.key, tuple) else None for f in futures}
    if len(futures) != ddf.npartitions or len(names) != 1 or None in names:
        return None
    return sorted(futures, key=lambda f: f.key[1])


def _batch(func, combine, n_args: int, *items):
    """``combine`` of ``func(partition, *args)`` over ``items = (*args, *partitions)``, one partition at a time.

    Each partial is added to the running total before the next one is made, so that its
    memory is reused by the next (one partial alive, not one per partition).
    """
    args, parts = items[:n_args], items[n_args:]
    out = None
    for part in parts:
        partial = func(part, *args)
        out = partial if out is None else combine(out, partial)
    return out


def _by_worker(futures: list, where: dict, size: int, threads: dict) -> list[tuple[str, list]] | None:
    """The partitions grouped by the worker that holds them; None unless every one is held.

    A worker's partitions are cut into batches of at most ``size``, and into at least as
    many batches as it has threads, so that all of them work.
    """
    held: dict[str, list] = {}
    for f in futures:
        holders = where.get(f.key)
        if not holders:
            return None
        held.setdefault(sorted(holders)[0], []).append(f)
    out = []
    for w, fs in held.items():
        count = max(-(-len(fs) // size), min(len(fs), int(threads.get(w) or 1)))
        step = -(-len(fs) // count)
        out.extend((w, fs[i:i + step]) for i in range(0, len(fs), step))
    return out


def run_pass(func, ddf, columns: list[str], args: tuple, combine, split_every: int = 8, exact: bool = False):
    """``combine`` of ``func(partition, *args)`` over the partitions of ``ddf[columns]``, computed by the engine.

    ``exact=True`` says that ``combine`` gives the same result in any order (counts,
    minima, maxima): partitions the same worker holds in memory are then processed
    up to ``split_every`` at a time by one task (at least one task per thread of the
    worker), which adds their partials as it goes.  Sums of
    floating-point numbers are not exact in that sense, and are added in partition order.
    The workers' allocator settings are restored when the pass ends (:func:`release_workers`).
    Files that disagree about a column, or a CSV column whose type Dask guessed wrong, raise a
    :class:`~hierfit.errors.DataError` (:func:`~hierfit.data.sources.check_source_columns`,
    :func:`~hierfit.data.sources.explain_engine_error`) instead of Dask's ``KeyError``/``ValueError``.

    Example
    -------
    >>> import dask.dataframe as dd, pandas as pd
    >>> ddf = dd.from_pandas(pd.DataFrame({"y": [1.0, 2.0, 3.0], "x": [0, 1, 2]}), npartitions=2)
    >>> run_pass(lambda part, k: k * float(part["y"].sum()), ddf, ["y"], (10,), lambda *s: sum(s))
    60.0
    """
    check_source_columns(ddf, columns)  # files that disagree about a column: refused from their footers
    client = distributed_client()
    futures = _resident_futures(ddf, columns, client)
    try:
        if futures is not None:
            where = client.who_has(futures)
            shared = client.scatter(list(args), broadcast=True, hash=False) if args else []  # one round trip
            batches = None
            if exact:
                threads = {w: info.get("nthreads", 1) for w, info in client.scheduler_info()["workers"].items()}
                batches = _by_worker(futures, where, split_every, threads)
            if batches is not None:  # every partition in memory: one task per worker and batch, where they are
                parts = [client.submit(_batch, func, combine, len(shared), *shared, *fs, pure=False,
                                       workers=[w], allow_other_workers=True) for w, fs in batches]
            else:
                # loose restrictions: a task whose worker left runs elsewhere (Dask recomputes its partition);
                # a partition still being read (the first pass) is placed by Dask where it lands
                parts = [client.submit(func, f, *shared, pure=False, **({"workers": list(where[f.key]),
                                                                        "allow_other_workers": True}
                                                                       if where.get(f.key) else {}))
                         for f in futures]
            while len(parts) > 1:
                parts = [client.submit(combine, *parts[i:i + split_every], pure=False)
                         for i in range(0, len(parts), split_every)]
            return parts[0].result()
        import dask

        shared = [dask.delayed(a, pure=True, traverse=False) for a in args]
        parts = [dask.delayed(func, pure=True)(p, *shared) for p in ddf[columns].to_delayed()]
        while len(parts) > 1:
            parts = [dask.delayed(combine, pure=True)(*parts[i:i + split_every])
                     for i in range(0, len(parts), split_every)]
        (out,) = dask.compute(parts[0])
        return out
    except (KeyError, ValueError) as err:  # bad files that show only when read: a hierfit error that says which
        explained = explain_engine_error(err, ddf, columns)
        if explained is None:
            raise
        raise explained from err
    finally:
        release_workers()
