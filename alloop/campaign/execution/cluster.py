"""Start an embedded Dask LocalCluster, or connect to an existing scheduler, with pinned threads.

Each worker process runs ``tasks_per_worker`` tasks at a time (default one),
and each task computes with ``threads_per_worker`` threads: OMP/MKL/OpenBLAS
environment variables are set before the worker processes spawn, and a worker
plugin pins PySCF, every loaded OpenBLAS and torch at start-up (labelling
tasks pin again themselves: OpenMP's count is per thread).

Dask's nanny writes its spawn environment (OMP_NUM_THREADS=... ) into the
driver's ``os.environ`` as well: ``open_client`` restores the driver's
variables after start-up and re-pins the driver's torch thread count.

Workers keep freed memory for reuse (:mod:`alloop.allocator`): the embedded cluster's from their start (its spawn
environment replaces the nanny's ``MALLOC_TRIM_THRESHOLD_=65536``), every worker when the plugin starts.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from alloop.errors import AlloopError

if TYPE_CHECKING:
    import distributed

#: environment variables that set compute threads in a worker process
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

#: Dask's periodic monitoring, slowed down: the event-loop watchdog tick (default 20 ms), the nanny's and
#: worker's memory check (100 ms), the worker's statistical profiler (samples the task thread every 10 ms), every
#: server's system monitor (CPU, memory, network and disk counters for the dashboard's system page, 500 ms) and the
#: client's refresh of the scheduler's worker list (2 s). At the defaults an idle 2-worker LocalCluster costs the
#: driver about 3 % of a core and each worker about 2 %, taken from the labels; with these about 0.7 % and 0.5 %
#: (``python benchmarks/idle_cluster.py``).
QUIET_MONITORING = {"distributed.admin.tick.interval": "500ms", "distributed.worker.memory.monitor-interval": "500ms",
                    "distributed.worker.profile.interval": "100ms",
                    "distributed.admin.system-monitor.interval": "10s",
                    "distributed.client.scheduler-info-interval": "10s"}


#: the length of Dask's low-level logs in the driver and its workers (default 1000): every batch of messages the
#: client sends the scheduler (submitted tasks with their arguments: a training's labels, an MD segment's model, a
#: label task's 64 frames) and the scheduler its workers is kept in such a log when under 1 MB, as are the task
#: transitions and each event topic's events; they are for debugging Dask. Filling, they grew the driver of
#: campaigns/long-xtb.yaml by 6-8 MB a cycle over 20 cycles (378 -> 507 MB) and its workers by 4-5 MB; with 50
#: entries the driver still grew until about cycle 10 (379 -> 415 MB, then 415-425 to cycle 19). Worker losses do
#: not depend on it: the driver subscribes to them (worker_losses.py).
LOG_LENGTH = {"distributed.admin.low-level-log-length": 10}


@contextmanager
def short_logs() -> Iterator[None]:
    """:data:`LOG_LENGTH` (unless a user's Dask config sets it) for the ``with`` block: a campaign's client, its
    scheduler and workers, and the streams of workers that join later, all read it as they start."""
    import dask

    with dask.config.set(_still_default(LOG_LENGTH)):
        yield


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pin_threads_plugin(threads: int) -> Any:
    """A worker plugin that pins a worker's compute threads to ``threads`` when it starts."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class PinThreads(WorkerPlugin):
        """Pins compute threads when a worker starts (and records them in the worker's environment); the worker
        keeps freed memory for reuse (:func:`~alloop.allocator.reuse_freed_memory`)."""

        name = "alloop-pin-threads"

        def __init__(self, n: int) -> None:
            self.n = n

        def setup(self, worker) -> None:  # noqa: ANN001 (distributed's signature)
            for var in THREAD_ENV_VARS:
                os.environ[var] = str(self.n)
            from alloop.allocator import reuse_freed_memory
            from alloop.labeling.threads import set_compute_threads

            reuse_freed_memory()
            set_compute_threads(self.n)

    return PinThreads(threads)


def quiet_monitoring() -> dict[str, str]:
    """The :data:`QUIET_MONITORING` settings whose current Dask value is still Dask's default (a user's own wins)."""
    return _still_default(QUIET_MONITORING)


def _still_default(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``settings`` whose current Dask value is still the one Dask ships (a user's own wins)."""
    import dask
    import distributed  # noqa: F401 (registers distributed's configuration defaults)

    shipped = dask.config.merge(*dask.config.defaults)  # the packages' own defaults, without the user's files
    return {key: value for key, value in settings.items()
            if dask.config.get(key, None) == dask.config.get(key, None, config=shipped)}


def dashboard_link(client) -> str | None:  # noqa: ANN001
    """The dashboard URL, or None when bokeh (which serves it) is not installed."""
    return client.dashboard_link if _has_bokeh() else None


def _positive(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise AlloopError(f"{name} must be a positive integer, not {value!r}")


@contextmanager
def open_client(
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    address: str | None = None,
    scheduler_file: str | None = None,
    *,
    tasks_per_worker: int = 1,
    memory_limit: str | float | int = "auto",
    allowed_failures: int = 0,
    quiet: bool = True,
) -> Iterator[distributed.Client]:
    """A Dask client on a new LocalCluster (processes) or on the scheduler at ``address``/``scheduler_file``.

    ``n_workers`` defaults to cores // threads_per_worker. ``allowed_failures``
    (embedded cluster only) is how many worker deaths a task survives inside
    the scheduler; 0 hands every death to the caller (``LabelingPool`` counts
    and resubmits them itself).
    """
    import dask
    from distributed import Client

    _positive("n_workers", n_workers)
    _positive("threads_per_worker", threads_per_worker)
    _positive("tasks_per_worker", tasks_per_worker)
    if address is not None and scheduler_file is not None:
        raise AlloopError("give a scheduler address or a scheduler file, not both")
    saved_env = {var: os.environ.get(var) for var in THREAD_ENV_VARS}
    torch = sys.modules.get("torch")
    driver_torch_threads = torch.get_num_threads() if torch is not None else None
    cluster = None
    try:
        with dask.config.set(quiet_monitoring()):  # read by the servers and the client as they start
            if address is None and scheduler_file is None:
                cluster = _local_cluster(n_workers, threads_per_worker, tasks_per_worker, memory_limit,
                                         allowed_failures, logging.CRITICAL if quiet else logging.WARNING)
                client = Client(cluster)
            else:
                client = Client(address=address, scheduler_file=scheduler_file)
    except (OSError, RuntimeError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise AlloopError(f"cannot start or reach the Dask scheduler: {exc}") from exc
    finally:
        _restore_driver(saved_env, torch, driver_torch_threads)
    try:
        client.register_plugin(pin_threads_plugin(threads_per_worker))
        yield client
    finally:
        try:
            client.close()
            if cluster is not None:
                _close_cluster(cluster)
        finally:
            _restore_driver(saved_env, torch, driver_torch_threads)


def _close_cluster(cluster: distributed.LocalCluster) -> None:
    """Close the embedded cluster. A nanny whose restarted worker died before it started has no process to join
    (distributed raises AssertionError 'can only join a started process'); the rest of the cluster is closed by
    then, and everything the campaign did is committed, so that is logged, not raised."""
    try:
        cluster.close()
    except AssertionError as exc:
        logging.getLogger(__name__).warning("closing the Dask cluster: %s (a worker that never started)", exc)


def _local_cluster(n_workers: int | None, threads_per_worker: int, tasks_per_worker: int,
                   memory_limit: str | float | int, allowed_failures: int,
                   log_level: int) -> distributed.LocalCluster:
    """A LocalCluster of worker processes spawned with ``threads_per_worker`` compute threads.

    Sets the thread variables in ``os.environ`` (the nanny reads them as its pre-spawn environment); the caller
    restores them. The workers start with :data:`~alloop.allocator.SPAWN_ENV` in place of the nanny's malloc
    setting.
    """
    import dask
    from distributed import LocalCluster

    from alloop.allocator import SPAWN_ENV

    workers = n_workers or max(1, available_cores() // threads_per_worker)
    for var in THREAD_ENV_VARS:  # read by the nanny as its pre-spawn environment
        os.environ[var] = str(threads_per_worker)
    env = {var: str(threads_per_worker) for var in THREAD_ENV_VARS}
    spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **SPAWN_ENV, **env}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=tasks_per_worker,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=":0" if _has_bokeh() else None,
            silence_logs=log_level,
            scheduler_kwargs={"allowed_failures": allowed_failures},
            env=env,
        )


def _restore_driver(saved_env: dict[str, str | None], torch: Any, torch_threads: int | None) -> None:
    """Put back the driver's thread variables and torch thread count (the nanny changes them)."""
    _restore_env(saved_env)
    if torch is not None and torch_threads is not None:
        torch.set_num_threads(torch_threads)


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def _restore_env(saved: dict[str, str | None]) -> None:
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
