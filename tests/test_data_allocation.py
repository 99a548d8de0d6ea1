"""Pass tasks in Dask workers take large arrays from the heap (hierfit.data.allocation)."""

from __future__ import annotations

import os
import subprocess
import sys

_CHILD = r"""
import resource, numpy as np
from hierfit.data.allocation import heap_allocations

def faults():
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        a = np.ones(2_000_000)  # 16 MB, as a partition's column
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0

before = faults()
with heap_allocations():
    inside = faults()
after = faults()
from hierfit.data import allocation
print(before, inside, after, int(allocation._LIBC is None))
"""


def _run(env_extra: dict) -> list[int]:
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, check=True)
    return [int(v) for v in out.stdout.split()]


def test_heap_allocations_in_a_worker_environment():
    # dask.distributed's workers run with this setting: every 16 MB array is a fresh mapping, faulted in page by page
    before, inside, after, inactive = _run({"MALLOC_TRIM_THRESHOLD_": "65536"})
    assert not inactive
    assert inside < before / 5  # the heap's pages are reused
    assert after > before / 2  # the worker's setting is back (memory returns to the system)


def test_heap_allocations_change_nothing_elsewhere():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split()[-1] == "1"  # glibc adapts by itself: the context manager leaves it alone
