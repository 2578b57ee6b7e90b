"""The embedded cluster's workers keep freed memory for reuse (alloop.allocator) although Dask's nanny starts them
with MALLOC_TRIM_THRESHOLD_=65536: a task that allocates and frees a 64 MiB array ten times faults it in once."""

import os
import resource

import numpy as np
import pytest

from alloop.allocator import SPAWN_ENV, _mallopt
from alloop.campaign.execution.cluster import open_client

pytestmark = pytest.mark.skipif(_mallopt() is None, reason="no glibc mallopt")


def _faults_of_ten_large_arrays() -> int:
    a = np.ones(8 << 20)
    del a
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        a = np.ones(8 << 20)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0


def _malloc_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}


def test_a_worker_task_reuses_freed_blocks():
    with open_client(n_workers=1, threads_per_worker=1) as client:
        client.wait_for_workers(1)
        assert list(client.run(_malloc_env).values()) == [SPAWN_ENV]
        # mapped afresh each time (Dask's setting), the arrays fault in at least 10 x 32 huge pages (10 x 16,384
        # pages without them); the worker's other threads fault too, a few dozen times
        assert client.submit(_faults_of_ten_large_arrays, pure=False).result() < 160
