"""Large temporary arrays from the heap in the Dask workers while a pass runs.

dask.distributed starts its worker processes with ``MALLOC_TRIM_THRESHOLD_=65536`` so
that freed memory goes back to the operating system at once.  glibc then stops adapting
its mmap threshold: every array above 128 kB is a fresh mapping whose pages the kernel
faults in and zeroes when numpy first writes them.  A pass's task makes a few dozen
arrays of a partition's length, so in a worker about 40 % of its CPU went to page
faults (grouped pass over 20 partitions of 2·10⁶ rows: 418,000 faults, 1.7 of 4.2
CPU-seconds in the kernel).

While a pass runs, each of its tasks calls :func:`heap_allocations`, which lets glibc
serve large arrays from the heap and keep them for the next task (15,000 faults, 0.2
CPU-seconds in the kernel); when the pass is over, :func:`release_workers` restores the
workers' settings and trims their heaps, so the memory goes back to the system as
Dask intends.  Elsewhere (no such setting, or not glibc) both do nothing.

Example
-------
>>> import numpy as np
>>> heap_allocations()
>>> float(np.ones(1_000_000).sum())
1000000.0
>>> release_heap()
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

from hierfit.data.sources import distributed_client
from hierfit.memory import huge_pages_setting

__all__ = ["heap_allocations", "release_heap", "release_workers"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_GLIBC_MMAP_DEFAULT = 128 * 1024
_lock = threading.Lock()
_state = {"heap": False, "huge": None}


def _glibc():
    if os.environ.get("MALLOC_TRIM_THRESHOLD_") is None:
        return None  # glibc adapts its thresholds itself: nothing to do
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc()


def _trim_threshold() -> int:
    try:
        return int(os.environ.get("MALLOC_TRIM_THRESHOLD_", ""))
    except ValueError:
        return 128 * 1024  # glibc's default


def heap_allocations() -> None:
    """From now until :func:`release_heap`, allocations of any size come from the heap and are reused.

    Example
    -------
    >>> heap_allocations(); release_heap()
    """
    if _LIBC is None or _state["heap"]:
        return
    with _lock:
        if not _state["heap"]:
            _LIBC.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)
            _state["huge"] = huge_pages_setting(False)  # the heap's pages are reused: small ones (hierfit.memory)
            _state["heap"] = True


def release_heap() -> None:
    """Restore the process's allocator settings and give the heap's free memory back to the system.

    Example
    -------
    >>> release_heap()
    """
    if _LIBC is None or not _state["heap"]:
        return
    with _lock:
        if _state["heap"]:
            _LIBC.mallopt(_M_MMAP_THRESHOLD, _GLIBC_MMAP_DEFAULT)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, _trim_threshold())
            _LIBC.malloc_trim(0)
            if _state["huge"] is not None:
                huge_pages_setting(_state["huge"])
            _state["heap"] = False


def release_workers() -> None:
    """After a pass: :func:`release_heap` in every worker of the current ``dask.distributed`` client, if any.

    Example
    -------
    >>> release_workers()   # no distributed client here: nothing to do
    """
    client = distributed_client()
    if client is None:
        release_heap()  # Dask's local schedulers ran the tasks in this process
        return
    client.run(release_heap)
