"""The passes' tasks take large arrays from the heap in Dask workers, and give it back after the pass."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_CHILD = r"""
import resource, numpy as np
from hierfit.data import allocation

def faults():
    np.ones(2_000_000)  # the first array may grow the heap: the count is of the 20 after it
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        a = np.ones(2_000_000)  # 16 MB, as a partition's column
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0

from hierfit.memory import huge_pages_setting

before = faults()
allocation.heap_allocations()
huge_during = huge_pages_setting(False)  # numpy's setting while the pass runs (set back below)
huge_pages_setting(huge_during)
during = faults()
allocation.release_heap()
huge_after = huge_pages_setting(True)  # the setting after the pass (and numpy's default again)
after = faults()
print(before, during, after, int(huge_during), int(huge_after), int(allocation._LIBC is None))
"""


def _run(env: dict) -> list[int]:
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, check=True)
    return [int(v) for v in out.stdout.split()]


def test_heap_allocations_in_a_worker_environment():
    # dask.distributed's workers run with this setting: every 16 MB array is a fresh mapping, faulted in afresh
    before, during, after, huge_during, huge_after, inactive = _run({**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"})
    assert not inactive
    assert during < before / 5  # the heap's pages are reused from one array to the next
    assert after > before / 2  # released: the worker's setting is back (memory returns to the system)
    assert (huge_during, huge_after) == (0, 1)  # small pages while the pass runs, numpy's default after it


def test_heap_allocations_change_nothing_elsewhere():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    assert _run(env)[-1] == 1  # glibc adapts by itself: nothing is changed


def test_workers_released_after_each_pass(exam):
    distributed = pytest.importorskip("distributed")
    import dask.dataframe as dd

    import hierfit

    def heap_on():
        from hierfit.data import allocation

        return (allocation._LIBC is not None, allocation._state["heap"])

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        fit = hierfit.fit("normexam ~ standLRT + (1 | school)", dd.from_pandas(exam, npartitions=4), chains=2,
                          draws=100, tune=100, seed=1, progressbar=False, warn=False)
        assert fit.design.summary.residual_quantiles is not None
        states = client.run(heap_on)
        assert all(active for active, _ in states.values())  # the workers run with Dask's setting
        assert not any(on for _, on in states.values())  # and have it back after the passes
