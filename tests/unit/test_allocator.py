"""alloop.allocator: freed blocks stay in the process and are reused, in a thread too, under Dask's environment."""

import os
import subprocess
import sys

import pytest

from alloop.allocator import _mallopt

pytestmark = pytest.mark.skipif(_mallopt() is None, reason="no glibc mallopt")

#: 10 allocations of a 64 MiB array (above glibc's largest dynamic mmap threshold) in a second thread, after one
#: to warm up; prints the page faults they cost
PROBE = """
import resource, sys, threading
import numpy as np
if sys.argv[1] == "reuse":
    from alloop.allocator import reuse_freed_memory
    assert reuse_freed_memory()
faults = []
def work():
    a = np.ones(8 << 20); del a
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        a = np.ones(8 << 20); a[::512] = 2.0; del a
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
t = threading.Thread(target=work); t.start(); t.join()
print(faults[0])
"""


def _faults(mode: str) -> int:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}, "MALLOC_TRIM_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


def test_freed_large_blocks_are_reused_instead_of_faulting_in_again():
    before, after = _faults("dask"), _faults("reuse")
    # mapped afresh, each array faults in again: 16,384 pages, or 32 huge pages of 2 MiB; reused, almost none
    assert before >= 10 * 16 and after * 10 < before, (before, after)
