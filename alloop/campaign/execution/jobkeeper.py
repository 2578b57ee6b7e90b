"""Keep a dask-jobqueue cluster at its number of jobs: a batch job that ends is replaced.

dask-jobqueue submits jobs once (``scale``). A job that ends under it
(``scancel``, walltime, a node failure) leaves the cluster short: dask's
SpecCluster forgets a lost single-process job after
``distributed.deploy.lost-worker-timeout`` but submits no replacement, and
never forgets a job of several processes (its workers are named
``<job>-<i>``, not ``<job>``). :class:`JobKeeper` checks every few seconds on
the cluster's event loop: a job that had a worker connected and has had none
for ``grace_s`` is dropped from the cluster (and cancelled, in case it still
runs), then the cluster is scaled back to its size, which submits a new job
under a name never used before (SpecCluster's own delayed clean-up of a lost
worker closes whatever job holds the worker's name). On SLURM it also asks ``squeue`` about jobs none of whose workers
connected yet: one that ended (a broken prologue, a wrong python) is reported
with its state and replaced, and after a few in a row the keeper gives up
(``error``), which ``jobqueue_client`` raises instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

#: seconds between checks
CHECK_EVERY_S = 2.0
#: seconds a job may have no connected worker before it counts as ended (a nanny restarts a worker faster)
GRACE_S = 10.0
#: seconds between asking the batch system about jobs none of whose workers connected yet
PROBE_EVERY_S = 10.0
#: jobs in a row that may end before their worker connects; then the keeper gives up (a broken job script)
MAX_FAILED_STARTS = 3
#: batch states of a job that ended (SLURM's; GONE: no longer known to the batch system)
ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                   "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "GONE"})
#: a job of the cluster: (its name, the id of its Job object; a new job under a reused name is another job)
JobKey = tuple[Any, int]
K = TypeVar("K", bound=Hashable)


@dataclass
class JobWatch:
    """What the keeper saw of one job: whether a worker of it ever connected, and since when none is."""

    seen: bool = False
    absent_since: float | None = None


def job_worker_names(name: Any, spec: Mapping[str, Any]) -> set[str]:
    """The Dask worker names of job ``name``: the name itself, or name + suffix per process of a group."""
    group = spec.get("group")
    return {f"{name}{suffix}" for suffix in group} if group else {str(name)}


def lost_jobs(jobs: Mapping[K, set[str]], present: set[str], watch: dict[K, JobWatch], now: float,
              grace_s: float) -> list[K]:
    """Jobs whose workers all connected once and have all been absent for ``grace_s``; updates ``watch``.

    A job none of whose workers ever connected is waiting in the queue, not lost.
    """
    lost = []
    for key in list(watch):
        if key not in jobs:
            del watch[key]
    for key, names in jobs.items():
        w = watch.setdefault(key, JobWatch())
        if names & present:
            w.seen, w.absent_since = True, None
            continue
        if not w.seen:
            continue
        if w.absent_since is None:
            w.absent_since = now
        if now - w.absent_since >= grace_s:
            lost.append(key)
    return lost


def slurm_job_state(job_id: str) -> str | None:
    """The SLURM state of a job (RUNNING, FAILED, ...), GONE once slurmctld forgot it, None if squeue cannot tell."""
    import subprocess

    try:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-j", str(job_id), "-o", "%T"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return "GONE" if "Invalid job id" in out.stderr else None
    return out.stdout.strip().split("\n")[0] or "GONE"


class JobKeeper:
    """Replaces the jobs of a dask-jobqueue cluster that end while the campaign runs (see the module doc).

    With ``job_state`` (a job id -> batch state function, e.g. :func:`slurm_job_state`),
    a job that ends before any of its workers connected (a broken job script) is
    reported and replaced too; after ``MAX_FAILED_STARTS`` such jobs in a row it
    stops submitting and sets ``error``.
    """

    def __init__(self, cluster: Any, n_workers: int, log: Callable[[str], None] = print, grace_s: float = GRACE_S,
                 job_state: Callable[[str], str | None] | None = None) -> None:
        self.cluster, self.n_workers, self.log, self.grace_s = cluster, n_workers, log, grace_s
        self.job_state = job_state
        self.watch: dict[JobKey, JobWatch] = {}
        self.replaced = 0
        self.failed_starts = 0  # jobs in a row that ended before a worker of theirs connected
        self.error: str | None = None
        self._started: set[JobKey] = set()
        self._dropped_names: set[Any] = set()
        self._last_probe = -float("inf")
        self._closing: set[asyncio.Future] = set()

    def start(self) -> None:
        """Check every CHECK_EVERY_S seconds on the cluster's loop (stopped when the cluster closes)."""
        from tornado.ioloop import PeriodicCallback

        def install() -> None:
            pc = PeriodicCallback(self.check, CHECK_EVERY_S * 1000)
            self.cluster.periodic_callbacks["alloop-job-keeper"] = pc
            pc.start()

        self.cluster.loop.add_callback(install)

    async def check(self, now: float | None = None) -> None:
        """Drop ended jobs and scale back up if the cluster has fewer jobs than it should (runs on the loop)."""
        from distributed.core import Status

        cluster = self.cluster
        if cluster.status != Status.running:
            return
        now = time.monotonic() if now is None else now
        present = {str(w.get("name")) for w in cluster.scheduler_info.get("workers", {}).values()}
        jobs = {(name, id(job)): job_worker_names(name, cluster.worker_spec.get(name, {}))
                for name, job in cluster.workers.items()}
        lost = lost_jobs(jobs, present, self.watch, now, self.grace_s)
        started = {key for key, w in self.watch.items() if w.seen}
        if started - self._started:
            self.failed_starts = 0
        self._started = (self._started | started) & set(jobs)
        dropped = sum(self._drop(key, f"its Dask workers left {self.grace_s:.0f} s ago") for key in lost)
        if self.job_state is not None and now - self._last_probe >= PROBE_EVERY_S:
            self._last_probe = now
            dropped += await self._drop_failed_starts(jobs)
        self.replaced += dropped
        if self.error is None and (dropped or set(cluster.worker_spec) - set(cluster.workers)):
            cluster.scale(n=self.n_workers)  # after a drop, or a job SpecCluster forgot
            self._fresh_names()

    async def _drop_failed_starts(self, jobs: Mapping[JobKey, set[str]]) -> int:
        """Drop the jobs that ended without a worker ever connecting; counts them in ``failed_starts``."""
        job_state = self.job_state
        assert job_state is not None  # check() probes only with a job_state
        loop = asyncio.get_running_loop()
        dropped = 0
        for key in jobs:
            job, watch = self.cluster.workers.get(key[0]), self.watch.get(key)
            if watch is None or watch.seen or job is None or id(job) != key[1] or not getattr(job, "job_id", None):
                continue
            state = await loop.run_in_executor(None, job_state, job.job_id)
            if state is None or state.split()[0] not in ENDED:
                continue
            logs = getattr(job, "log_directory", None)
            if self._drop(key, f"before its Dask worker connected ({state})"
                          + (f"; see its log in {logs}" if logs else "")):
                dropped += 1
                self.failed_starts += 1
        if self.failed_starts >= MAX_FAILED_STARTS and self.error is None:
            self.error = (f"{self.failed_starts} batch jobs in a row ended before their Dask worker connected; "
                          "check the job script (alloop validate --job-script) and the job logs")
            self.log(self.error + "; no more jobs are submitted")
        return dropped

    def _fresh_names(self) -> None:
        """Rename new job specs that reuse a dropped job's name (SpecCluster, a few seconds after losing a worker,
        closes whatever job then holds the worker's name); they start later, on the loop."""
        spec, name_of = self.cluster.worker_spec, getattr(self.cluster, "_new_worker_name", str)
        for name in [n for n in spec if n in self._dropped_names and n not in self.cluster.workers]:
            k = len(spec) + len(self._dropped_names)
            while name_of(k) in spec or name_of(k) in self._dropped_names:
                k += 1
            spec[name_of(k)] = spec.pop(name)

    def _drop(self, key: JobKey, why: str) -> bool:
        """Forget job ``key`` (cancelled, in case it still runs); its replacement gets a new name."""
        name, ident = key
        job = self.cluster.workers.get(name)
        if job is None or id(job) != ident:
            return False
        del self.cluster.workers[name]
        self.cluster.worker_spec.pop(name, None)
        self._dropped_names.add(name)
        self.watch.pop(key, None)
        future = asyncio.ensure_future(_cancel(job))
        self._closing.add(future)
        future.add_done_callback(self._closing.discard)
        self.log(f"batch job {getattr(job, 'job_id', '?')} ({name}) ended: {why}"
                 + ("" if self.error else "; submitting a replacement"))
        return True


async def _cancel(job: Any) -> None:
    """Cancel a job that may have ended already (the scheduler's cancel command then fails: ignored)."""
    try:
        await job.close()
    except Exception:  # noqa: BLE001 (scancel of a finished job exits non-zero)
        pass
