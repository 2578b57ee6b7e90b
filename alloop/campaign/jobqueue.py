"""Dask clusters on batch schedulers (SLURM, PBS) through dask-jobqueue."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from alloop.errors import AlloopError

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def make_jobqueue_cluster(execution: Any) -> Any:
    """A SLURMCluster / PBSCluster from ``execution.cluster.options``; nothing is submitted until scaled."""
    import dask_jobqueue

    kind = execution.cluster.kind
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}.get(kind)
    if cls is None:
        raise AlloopError(f"cluster kind '{kind}' is not a batch scheduler")
    options = dict(execution.cluster.options)
    threads = execution.threads_per_worker
    prologue = list(options.pop("job_script_prologue", []))
    prologue += [f"export {var}={threads}" for var in THREAD_VARS]
    return cls(job_script_prologue=prologue, **options)


@contextlib.contextmanager
def jobqueue_client(execution: Any) -> Iterator[Any]:
    from distributed import Client

    cluster = make_jobqueue_cluster(execution)
    try:
        cluster.scale(n=execution.n_workers or 1)  # worker processes, as configs/clusters/slurm.yaml says
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()
