"""Dask clusters on batch schedulers (SLURM, PBS) through dask-jobqueue."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from alloop.campaign.execution.cluster import THREAD_ENV_VARS
from alloop.errors import AlloopError, ConfigError

_LOCAL_OPTIONS = frozenset(
    {"processes", "memory_limit", "dashboard_address", "host", "scheduler_port", "local_directory", "protocol"}
)
#: dask-jobqueue arguments that alloop sets itself or that are deprecated aliases
_JOBQUEUE_RESERVED = frozenset(
    {"self", "scheduler", "name", "n_workers", "job_cls", "loop", "asynchronous", "config_name"}
    | {"extra", "job_extra", "env_extra", "base_class_kwargs", "job_kwargs"}
)


#: seconds Dask may take to close a batch cluster (scheduler, jobs) before alloop cancels the jobs itself
CLOSE_TIMEOUT_S = 60.0


def import_jobqueue() -> ModuleType:
    """``dask_jobqueue``, with Ctrl-C left alone: importing it replaces the SIGINT handler with ``sys.exit()``
    (a Ctrl-C'd campaign would exit 0, as if it had finished, and never say it was interrupted); the
    handler from before the import (:func:`alloop.signals.stop_on_signals`'s) is put back, or Python's default
    (KeyboardInterrupt) when there was none."""
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT)
    import dask_jobqueue
    import dask_jobqueue.runner  # noqa: F401  (the module that installs the handler)

    handler = signal.getsignal(signal.SIGINT)
    if main and getattr(handler, "__module__", None) == "dask_jobqueue.runner":
        ours = callable(before) and getattr(before, "__module__", None) != "dask_jobqueue.runner"
        signal.signal(signal.SIGINT, before if ours else signal.default_int_handler)
    return dask_jobqueue


def cluster_option_names(kind: str) -> frozenset[str]:
    """Keyword arguments the cluster class of ``kind`` accepts (dask-jobqueue's signatures for slurm/pbs).

    ``execution.cluster.options`` are checked against these when the config is validated.
    """
    if kind == "local":
        return _LOCAL_OPTIONS
    import_jobqueue()
    from dask_jobqueue.core import Job, JobQueueCluster
    from dask_jobqueue.pbs import PBSJob
    from dask_jobqueue.slurm import SLURMJob

    jobs: dict[str, type[Job]] = {"slurm": SLURMJob, "pbs": PBSJob}
    job = jobs[kind]
    names: set[str] = set()
    for fn in (job.__init__, Job.__init__, JobQueueCluster.__init__):
        names.update(inspect.signature(fn).parameters)
    return frozenset(names - _JOBQUEUE_RESERVED)


def check_cluster_options(execution: Any) -> None:
    """ConfigError ``execution.cluster.options: unknown <kind> cluster option ...`` for an option the cluster class
    of ``execution.cluster.kind`` does not take (a typo would otherwise surface when the first job is submitted).

    Called by ``alloop validate`` and before a campaign starts (the config itself does not import Dask).
    """
    cluster = getattr(execution, "cluster", None)
    if cluster is None or not cluster.options:
        return
    known = cluster_option_names(cluster.kind)
    unknown = sorted(set(cluster.options) - known)
    if unknown:
        raise ConfigError(f"execution.cluster.options: unknown {cluster.kind} cluster option '{unknown[0]}' "
                          f"(known: {', '.join(sorted(known))})")


def task_threads(execution: Any) -> int:
    """Tasks one worker process of a batch job runs at once: its cores over ``execution.threads_per_worker``.

    A job's ``cores`` are split over its ``processes``; each task computes with
    ``threads_per_worker`` threads, so a process of ``cores // processes`` cores
    runs that many cores over ``threads_per_worker`` tasks at once (at least one).
    """
    options = execution.cluster.options
    cores, processes = int(options.get("cores") or 1), int(options.get("processes") or 1)
    return max(1, cores // max(1, processes) // execution.threads_per_worker)


def batch_slots(execution: Any) -> int:
    """Task slots of the whole batch cluster once every job runs (``n_workers`` processes)."""
    return (execution.n_workers or 1) * task_threads(execution)


def make_jobqueue_cluster(execution: Any) -> Any:
    """A SLURMCluster / PBSCluster from ``execution.cluster.options``; nothing is submitted until scaled.

    alloop adds to the options: the thread variables in the job script, ``--nthreads``
    (:func:`task_threads`) when it differs from dask-jobqueue's cores // processes,
    and a scheduler with ``allowed_failures: 0`` (unless set), so that a task whose
    worker dies comes back to alloop, which resubmits it (``execution.max_task_retries``)
    and records the death; the scheduler's own log is silenced (``silence_logs``) unless set.
    """
    dask_jobqueue = import_jobqueue()
    kind = execution.cluster.kind
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}.get(kind)
    if cls is None:
        raise AlloopError(f"cluster kind '{kind}' is not a batch scheduler")
    options = dict(execution.cluster.options)
    threads = execution.threads_per_worker
    prologue = list(options.pop("job_script_prologue", None) or [])
    prologue += [f"export {var}={threads}" for var in THREAD_ENV_VARS]
    options["scheduler_options"] = {"allowed_failures": 0, **(options.get("scheduler_options") or {})}
    options.setdefault("silence_logs", "critical")  # worker deaths are alloop's to report (worker_losses.py)
    cores, processes = int(options.get("cores") or 1), int(options.get("processes") or 1)
    if task_threads(execution) != max(1, cores // processes):  # the last --nthreads wins
        options["worker_extra_args"] = [*(options.get("worker_extra_args") or []),
                                        "--nthreads", str(task_threads(execution))]
    import dask

    from alloop.campaign.execution.cluster import quiet_monitoring

    with dask.config.set(quiet_monitoring()):  # the scheduler runs in this process
        return cls(job_script_prologue=prologue, **options)


def job_script(execution: Any) -> str:
    """The batch script alloop would submit for one job (``alloop validate --job-script``)."""
    cluster = make_jobqueue_cluster(execution)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


@contextlib.contextmanager
def jobqueue_client(execution: Any, log: Callable[[str], None] = print) -> Iterator[Any]:
    """A client of a new batch cluster scaled to ``execution.n_workers`` worker processes, kept there.

    Jobs that end (walltime, scancel, node failure) are replaced (:class:`JobKeeper`);
    waits for the first worker to connect.
    """
    from distributed import Client

    from alloop.campaign.execution.cluster import pin_threads_plugin
    from alloop.campaign.execution.jobkeeper import JobKeeper, slurm_job_state

    n_workers = execution.n_workers or 1
    cluster = make_jobqueue_cluster(execution)
    try:
        cluster.scale(n=n_workers)  # worker processes, as configs/clusters/slurm.yaml says
        keeper = JobKeeper(cluster, n_workers, log,
                           job_state=slurm_job_state if execution.cluster.kind == "slurm" else None)
        keeper.start()
        client = Client(cluster)
        try:
            client.register_plugin(pin_threads_plugin(execution.threads_per_worker))
            log(f"{execution.cluster.kind}: {len(cluster.worker_spec)} jobs for {n_workers} Dask worker processes "
                "submitted; waiting for the first worker to connect")
            _wait_for_a_worker(client, keeper)
            yield client
        finally:
            _close_client(client, log)
    finally:
        close_batch_cluster(cluster, log)


def _close_client(client: Any, log: Callable[[str], None], timeout_s: float = CLOSE_TIMEOUT_S / 4) -> None:
    """Close the campaign's client within ``timeout_s`` (the cluster's close follows whether or not it did)."""
    try:
        client.close(timeout=timeout_s)
    except (TimeoutError, asyncio.TimeoutError):
        log(f"the Dask client did not close within {timeout_s:.0f} s; closing the batch cluster anyway")


def close_batch_cluster(cluster: Any, log: Callable[[str], None] = print, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Close a batch cluster, which cancels its jobs; if Dask's close has not finished after ``timeout_s`` (it waits
    on the scheduler and on every job), the jobs are cancelled with the batch system's own command instead, so that
    a stopped campaign exits and leaves nothing in the queue."""
    jobs = sorted({str(job.job_id) for job in list(cluster.workers.values()) if getattr(job, "job_id", None)})
    cancel = getattr(getattr(cluster, "job_cls", None), "cancel_command", None)
    started = time.monotonic()
    try:
        cluster.close(timeout=timeout_s)
    except (TimeoutError, asyncio.TimeoutError):
        log(f"the batch cluster did not close within {timeout_s:.0f} s; cancelling its jobs directly "
            f"({cancel} {' '.join(jobs) or '(none)'})")
        if cancel and jobs:
            try:
                subprocess.run([*shlex.split(cancel), *jobs], capture_output=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as exc:
                log(f"'{cancel}' failed ({exc}); check the queue for jobs named after the campaign")
        return
    if jobs:
        log(f"batch cluster closed in {time.monotonic() - started:.0f} s; jobs {' '.join(jobs)} cancelled")


def _wait_for_a_worker(client: Any, keeper: Any) -> None:
    """Wait (as long as the queue takes) for one worker; AlloopError if the keeper gave up on the jobs."""
    while True:
        try:
            client.wait_for_workers(1, timeout=2)
            return
        except TimeoutError:
            if keeper.error is not None:
                raise AlloopError(keeper.error) from None
