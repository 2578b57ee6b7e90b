"""Many Dask workers on one machine, measured (``many_workers.py``): a stream of fixed-cost labels through the
campaign's :class:`~alloop.campaign.execution.labeling_pool.LabelingPool`, the driver's CPU and memory, the workers'
utilisation, the scheduler's latency, and labels lost when workers are SIGKILLed.

The cluster is the campaign's own (``open_client`` under ``short_logs``: worker processes of 1 thread, Dask's
monitoring slowed by ``QUIET_MONITORING``); the labels are ``alloop.testing.labelers.wait_labeler``'s (they sleep:
the workers' CPU is not what is measured). The stream is driven as the asynchronous loop drives its labels:
``pool.poll()``, then a wait of at most ``pipeline.WAIT_S`` on the pool's futures (``FutureWaiter``); the pool's
local queue is topped up whenever it holds fewer frames than there are workers.

Task timestamps are the scheduler's task stream (the worker's start and stop of each task's compute) and the time
the pool called ``client.submit`` or ``client.map`` (a proxy around the client records it); on one machine both
clocks are the same.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from lib.common import cpu_seconds

#: seconds the cluster settles after its workers joined, before anything is measured
SETTLE_S = 5.0


@dataclass(frozen=True)
class Plan:
    """One run: ``n_workers`` x 1 thread, labels of ``task_s`` seconds, ``n_labels`` of them (or for ``minutes``)."""

    n_workers: int
    task_s: float
    n_labels: int = 0  # 0: stream for ``minutes``
    minutes: float = 0.0
    idle_s: float = 20.0  # the idle cluster's driver CPU is measured this long (0: not measured, nothing subtracted)
    kill_fraction_per_hour: float = 0.0  # random worker SIGKILLs at this fraction of the workers per hour
    kill_after_labels: tuple[int, ...] = ()  # or one SIGKILL once each of these many labels are back
    batch_seconds: float = 2.0  # execution.label_batch_seconds (the campaign's default)
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.n_labels > 0) == (self.minutes > 0):
            raise ValueError("give a number of labels or minutes, not both or neither")


class TimedClient:
    """The Dask client, with the time (unix seconds) of every ``submit`` recorded by task key."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.submitted: dict[str, float] = {}

    def submit(self, *args: Any, key: str, **kwargs: Any) -> Any:
        self.submitted[key] = time.time()
        return self._client.submit(*args, key=key, **kwargs)

    def map(self, *args: Any, key: list[str], **kwargs: Any) -> Any:
        now = time.time()
        self.submitted.update(dict.fromkeys(key, now))
        return self._client.map(*args, key=key, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@dataclass
class Killer:
    """SIGKILLs a busy worker process (one holding a task) at random times (a Poisson process of ``rate_per_s``) and
    once each count of labels back in ``after_labels`` is reached."""

    rate_per_s: float
    after_labels: list[int]
    rng: random.Random
    next_s: float = float("inf")
    kills: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, plan: Plan) -> Killer:
        rng = random.Random(plan.seed)
        killer = cls(plan.kill_fraction_per_hour * plan.n_workers / 3600.0, sorted(plan.kill_after_labels), rng)
        killer.next_s = rng.expovariate(killer.rate_per_s) if killer.rate_per_s > 0 else float("inf")
        return killer

    def step(self, client: Any, elapsed_s: float, n_back: int) -> None:
        """Kill whatever is due at ``elapsed_s`` seconds into the stream with ``n_back`` labels back."""
        while self.after_labels and n_back >= self.after_labels[0]:
            self.after_labels.pop(0)
            self.kills.append(kill_busy_worker(client, self.rng, elapsed_s))
        while elapsed_s >= self.next_s:
            self.next_s += self.rng.expovariate(self.rate_per_s)
            self.kills.append(kill_busy_worker(client, self.rng, elapsed_s))


def kill_busy_worker(client: Any, rng: random.Random, elapsed_s: float) -> dict[str, Any]:
    """SIGKILL a random worker holding a task (any worker if none does); what was killed, when."""
    busy = sorted(w for w, tasks in client.processing().items() if tasks) or sorted(client.nthreads())
    worker = rng.choice(busy) if busy else None
    pid = None
    if worker is not None:
        try:
            pid = client.run(os.getpid, workers=[worker])[worker]
            os.kill(pid, signal.SIGKILL)
        except (OSError, KeyError, ValueError):  # the worker went away between the two calls
            pid = None
    return {"at_s": round(elapsed_s, 2), "worker": worker, "pid": pid}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def workers_rss_mb(client: Any) -> float:
    """The resident memory of the cluster's worker processes, summed (MB)."""
    import psutil

    total = 0
    for pid in client.run(os.getpid).values():
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def idle_cpu_rate(seconds: float) -> float:
    """The driver's CPU (cores) while the cluster idles for ``seconds`` (0 when ``seconds`` is 0)."""
    if seconds <= 0:
        return 0.0
    cpu0, t0 = cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds() - cpu0) / (time.monotonic() - t0)


@dataclass
class Tally:
    """What came back from a stream: labels sent and back (ok or failed), the stream's wall and driver CPU."""

    sent: int = 0
    ok: int = 0
    failed: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    main_thread_cpu_s: float = 0.0  # of ``cpu_s``, the driver's main thread (the pool and the client's calls)
    failures: list[str] = field(default_factory=list)


def stream(pool: Any, client: Any, plan: Plan, killer: Killer) -> Tally:
    """Feed ``plan``'s labels of an ethanol frame through ``pool`` until every one is back; the driver's CPU over it."""
    from ase.build import molecule

    from alloop.campaign.execution.taskrun import FutureWaiter
    from alloop.campaign.loop.pipeline import WAIT_S
    from alloop.fidelity import load_fidelity

    fidelity, atoms, waiter, tally = load_fidelity("hf-sto3g"), molecule("CH3CH2OH"), FutureWaiter(), Tally()
    chunk = 2 * plan.n_workers
    cpu0, thread0, t0 = cpu_seconds(), time.thread_time(), time.monotonic()
    while True:
        elapsed = time.monotonic() - t0
        feeding = tally.sent < plan.n_labels if plan.n_labels else elapsed < 60 * plan.minutes
        if feeding and pool.n_pending < plan.n_workers:
            k = min(chunk, plan.n_labels - tally.sent) if plan.n_labels else chunk
            pool.submit_many(((f"frame-{tally.sent + i}", atoms) for i in range(k)), fidelity)
            tally.sent += k
        for _, result in pool.poll():
            tally.ok += result.ok
            if not result.ok:
                tally.failed += 1
                tally.failures.append(result.reason)
        killer.step(client, elapsed, tally.ok + tally.failed)
        if not feeding and not pool.n_unfinished:
            break
        waiter.wait(pool.futures(), WAIT_S)
    tally.wall_s, tally.cpu_s = time.monotonic() - t0, cpu_seconds() - cpu0
    tally.main_thread_cpu_s = time.thread_time() - thread0
    return tally


def _quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (a multiple of 0.01) of ``values``, interpolated between them; NaN without values."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(100 * q) - 1]


def _covered(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """The length of [lo, hi] that the union of ``intervals`` covers: one worker's busy time. Consecutive tasks of a
    worker can overlap by a millisecond in the task stream (each message's timestamps are shifted by the scheduler's
    estimate of that worker's clock offset), so the intervals are merged, not summed."""
    total, end = 0.0, lo
    for start, stop in sorted(intervals):
        start, stop = max(start, end), min(stop, hi)
        if stop > start:
            total += stop - start
            end = stop
    return total


def task_timings(records: list[dict[str, Any]], submitted: dict[str, float], n_workers: int) -> dict[str, Any]:
    """Utilisation over the steady window and the scheduler's latencies, from the task stream's ``records``.

    The window opens when the ``n_workers``-th worker starts its first task (start-up excluded) and closes at the
    pool's last submit (until then every worker had a task waiting for it: at the scheduler or in the pool's
    queue). Latency: submit -> start of each task. Dispatch gap: start - max(submit, the end of the previous task
    on the same worker), the time a task could have run and did not."""
    runs = sorted((ss["start"], ss["stop"], rec["worker"], rec["key"]) for rec in records
                  for ss in rec.get("startstops", ()) if ss.get("action") == "compute" and rec["key"] in submitted)
    first: dict[str, float] = {}
    for start, _, worker, _ in runs:
        first.setdefault(worker, start)
    starts = sorted(first.values())
    win0 = starts[min(n_workers, len(starts)) - 1] if starts else float("nan")
    win1 = max(submitted.values()) if submitted else float("nan")
    busy = sum(_covered([(s, e) for s, e, w, _ in runs if w == worker], win0, win1) for worker in first)
    length = win1 - win0
    latency = [start - submitted[key] for start, _, _, key in runs]
    gaps, free_at = [], {}
    for start, stop, worker, key in runs:
        gaps.append(start - max(submitted[key], free_at.get(worker, -float("inf"))))
        free_at[worker] = stop
    return {"tasks_timed": len(runs), "workers_used": len(first), "window_s": length,
            "utilisation": busy / (n_workers * length) if length > 0 else float("nan"),
            "latency_median_s": _quantile(latency, 0.5), "latency_p95_s": _quantile(latency, 0.95),
            "gap_median_s": _quantile(gaps, 0.5), "gap_p95_s": _quantile(gaps, 0.95)}


def run(plan: Plan, log: Any = print) -> dict[str, Any]:
    """Start the cluster, measure its idle driver CPU, stream the labels, and return every figure of the run."""
    from alloop.campaign.execution.cluster import open_client, short_logs
    from alloop.campaign.execution.labeling_pool import LabelingPool
    from alloop.testing.labelers import wait_labeler

    rss_before, load_before, t0 = peak_rss_mb(), os.getloadavg(), time.monotonic()
    with short_logs(), open_client(n_workers=plan.n_workers, threads_per_worker=1) as client:
        client.wait_for_workers(plan.n_workers)
        startup_s = time.monotonic() - t0
        log(f"{plan.n_workers} workers joined in {startup_s:.1f} s")
        if plan.idle_s > 0:
            time.sleep(SETTLE_S)
        idle = idle_cpu_rate(plan.idle_s)
        timed, killer = TimedClient(client), Killer.of(plan)
        pool = LabelingPool(timed, labeler_factory=wait_labeler(plan.task_s), batch_seconds=plan.batch_seconds)
        client.get_task_stream(start=time.time())  # the scheduler records its task stream from now on
        wall0 = time.time()
        tally = stream(pool, client, plan, killer)
        records = client.get_task_stream(start=wall0)
        workers_rss = workers_rss_mb(client)
    back = tally.ok + tally.failed
    busy_cpu = tally.cpu_s - idle * tally.wall_s
    return {"plan": {k: v for k, v in vars(plan).items()}, "startup_s": startup_s,
            "load_before": load_before, "load_after": os.getloadavg(),
            "idle_driver_core_pct": 100 * idle, "labels_sent": tally.sent, "labels_ok": tally.ok,
            "labels_failed": tally.failed, "labels_lost": tally.sent - back, "failures": tally.failures[:10],
            "tasks_sent": pool.tasks_sent, "tasks_retried": sum("-retry" in k for k in timed.submitted),
            "worker_deaths": pool.worker_deaths, "kills": killer.kills, "stream_wall_s": tally.wall_s,
            "driver_cpu_s": tally.cpu_s, "driver_ms_per_label": 1000 * busy_cpu / max(1, back),
            "driver_main_thread_cpu_s": tally.main_thread_cpu_s,
            "driver_main_thread_ms_per_label": 1000 * tally.main_thread_cpu_s / max(1, back),
            "driver_ms_per_task": 1000 * busy_cpu / max(1, pool.tasks_sent),
            "driver_rss_before_mb": rss_before, "driver_peak_rss_mb": peak_rss_mb(),
            "workers_rss_mb": workers_rss, **task_timings(records, timed.submitted, plan.n_workers)}
