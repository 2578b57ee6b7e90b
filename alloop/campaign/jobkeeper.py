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
under a new name (so SpecCluster's own delayed clean-up of the old name never
touches it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping

#: seconds between checks
CHECK_EVERY_S = 2.0
#: seconds a job may have no connected worker before it counts as ended (a nanny restarts a worker faster)
GRACE_S = 10.0


@dataclass
class JobWatch:
    """What the keeper saw of one job: whether a worker of it ever connected, and since when none is."""

    seen: bool = False
    absent_since: float | None = None


def job_worker_names(name: Any, spec: Mapping[str, Any]) -> set[str]:
    """The Dask worker names of job ``name``: the name itself, or name + suffix per process of a group."""
    group = spec.get("group")
    return {f"{name}{suffix}" for suffix in group} if group else {str(name)}


def lost_jobs(jobs: Mapping[Hashable, set[str]], present: set[str], watch: dict[Hashable, JobWatch], now: float,
              grace_s: float) -> list[Hashable]:
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


class JobKeeper:
    """Replaces the jobs of a dask-jobqueue cluster that end while the campaign runs (see the module doc)."""

    def __init__(self, cluster: Any, n_workers: int, log: Callable[[str], None] = print,
                 grace_s: float = GRACE_S) -> None:
        self.cluster, self.n_workers, self.log, self.grace_s = cluster, n_workers, log, grace_s
        self.watch: dict[Hashable, JobWatch] = {}
        self.replaced = 0
        self._closing: set[asyncio.Future] = set()

    def start(self) -> None:
        """Check every CHECK_EVERY_S seconds on the cluster's loop (stopped when the cluster closes)."""
        from tornado.ioloop import PeriodicCallback

        def install() -> None:
            pc = PeriodicCallback(self.check, CHECK_EVERY_S * 1000)
            self.cluster.periodic_callbacks["alloop-job-keeper"] = pc
            pc.start()

        self.cluster.loop.add_callback(install)

    def check(self, now: float | None = None) -> None:
        """Drop lost jobs and scale back up if the cluster has fewer jobs than it should (runs on the loop)."""
        from distributed.core import Status

        cluster = self.cluster
        if cluster.status != Status.running:
            return
        present = {str(w.get("name")) for w in cluster.scheduler_info.get("workers", {}).values()}
        jobs = {(name, id(job)): job_worker_names(name, cluster.worker_spec.get(name, {}))
                for name, job in cluster.workers.items()}
        dropped = 0
        now = time.monotonic() if now is None else now
        for name, ident in lost_jobs(jobs, present, self.watch, now, self.grace_s):
            job = cluster.workers.get(name)
            if job is None or id(job) != ident:
                continue
            del cluster.workers[name]
            cluster.worker_spec.pop(name, None)  # the replacement gets a new name
            future = asyncio.ensure_future(_cancel(job))
            self._closing.add(future)
            future.add_done_callback(self._closing.discard)
            dropped += 1
            self.log(f"batch job {getattr(job, 'job_id', '?')} ({name}) ended: its Dask workers left "
                     f"{self.grace_s:.0f} s ago; submitting a replacement")
        self.replaced += dropped
        if dropped or set(cluster.worker_spec) - set(cluster.workers):  # dropped, or forgotten by SpecCluster
            cluster.scale(n=self.n_workers)


async def _cancel(job: Any) -> None:
    """Cancel a job that may have ended already (the scheduler's cancel command then fails: ignored)."""
    try:
        await job.close()
    except Exception:  # noqa: BLE001 (scancel of a finished job exits non-zero)
        pass
