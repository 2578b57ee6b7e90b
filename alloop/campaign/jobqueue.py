"""Dask clusters on batch schedulers (SLURM, PBS) through dask-jobqueue."""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Iterator

from alloop.errors import AlloopError

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_LOCAL_OPTIONS = frozenset(
    {"processes", "memory_limit", "dashboard_address", "host", "scheduler_port", "local_directory", "protocol"}
)
#: dask-jobqueue arguments that alloop sets itself or that are deprecated aliases
_JOBQUEUE_RESERVED = frozenset(
    {"self", "scheduler", "name", "n_workers", "job_cls", "loop", "asynchronous", "config_name"}
    | {"extra", "job_extra", "env_extra", "base_class_kwargs", "job_kwargs"}
)


def cluster_option_names(kind: str) -> frozenset[str]:
    """Keyword arguments the cluster class of ``kind`` accepts (dask-jobqueue's signatures for slurm/pbs).

    ``execution.cluster.options`` are checked against these when the config is validated.
    """
    if kind == "local":
        return _LOCAL_OPTIONS
    from dask_jobqueue.core import Job, JobQueueCluster
    from dask_jobqueue.pbs import PBSJob
    from dask_jobqueue.slurm import SLURMJob

    job = {"slurm": SLURMJob, "pbs": PBSJob}[kind]
    names: set[str] = set()
    for fn in (job.__init__, Job.__init__, JobQueueCluster.__init__):
        names.update(inspect.signature(fn).parameters)
    return frozenset(names - _JOBQUEUE_RESERVED)


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
