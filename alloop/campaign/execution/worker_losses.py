"""Record the Dask workers lost while a campaign runs, whoever resubmits their tasks.

A worker that dies (SIGKILL, OOM, ``scancel``, a node failure) loses the tasks it
was running or held queued. They run again elsewhere: resubmitted by the
scheduler itself (its ``distributed.scheduler.allowed-failures``, 3 by default
on a scheduler alloop did not start) and then by alloop (``execution.max_task_retries``,
keys ending in ``-retry<n>``). The scheduler publishes each removal on its
``all`` event topic; :class:`WorkerLosses` reads the new ones, and
:func:`record_losses` writes them to the ``worker_losses`` table (committed
with the phase's next commit) and the campaign log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from alloop.store import tables
from alloop.store.campaign import CampaignStore


@dataclass(frozen=True)
class WorkerLoss:
    """One worker removed unexpectedly, with the task keys it held (scheduler clock, unix seconds)."""

    time: float
    worker: str
    tasks: tuple[str, ...]


def parse_losses(events: Iterable[tuple[float, Any]], since: float) -> list[WorkerLoss]:
    """The unexpected ``remove-worker`` events after ``since``, oldest first."""
    out = []
    for stamp, msg in events:
        if stamp <= since or not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            continue
        if msg.get("expected"):  # retired on purpose: its tasks moved, nothing lost
            continue
        keys = tuple(sorted(str(k) for k in msg.get("processing-tasks") or ()))
        out.append(WorkerLoss(float(stamp), str(msg.get("worker", "?")), keys))
    return sorted(out, key=lambda loss: loss.time)


#: the scheduler's event topic of worker removals
ALL_TOPIC = "all"


class WorkerLosses:
    """Reads worker removals from the scheduler's ``all`` event topic, each once; earlier ones (before this object)
    are ignored. Events are pushed to this client as they happen (subscribed) and read from the scheduler's own log,
    which keeps only the last ``distributed.admin.low-level-log-length`` events (cluster.py shortens it)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pushed: list[tuple[float, Any]] = []
        self.since = max((float(stamp) for stamp, _ in self._log()), default=0.0)
        try:
            client.subscribe_topic(ALL_TOPIC, self.pushed.append)
        except Exception:  # noqa: BLE001 (a client that cannot subscribe: the scheduler's log alone)
            pass

    def close(self) -> None:
        """Stop the pushes (before the client closes: the scheduler would push the client's own removal to a closed
        comm and log it as CRITICAL with a traceback)."""
        try:
            self.client.unsubscribe_topic(ALL_TOPIC)
        except Exception:  # noqa: BLE001 (never subscribed, or the client is gone: nothing to stop)
            pass

    def _log(self) -> tuple[tuple[float, Any], ...]:
        try:
            return tuple(self.client.get_events(ALL_TOPIC))
        except Exception:  # noqa: BLE001 (a scheduler without the event log: nothing to record)
            return ()

    def new(self) -> list[WorkerLoss]:
        """Losses since the last call."""
        events = self._log() + tuple(self.pushed)
        losses = sorted(set(parse_losses(events, self.since)), key=lambda loss: (loss.time, loss.worker))
        self.since = max([self.since, *(float(stamp) for stamp, _ in events)])
        self.pushed[:] = [e for e in self.pushed if float(e[0]) > self.since]  # read: dropped
        return losses


def describe(loss: WorkerLoss, shown: int = 4) -> str:
    """One log line for a loss."""
    keys = ", ".join(loss.tasks[:shown]) + (f" and {len(loss.tasks) - shown} more" if len(loss.tasks) > shown else "")
    n = len(loss.tasks)
    held = f"{n} task{'s' if n > 1 else ''} ({keys}), resubmitted" if n else "no task"
    return f"Dask worker {loss.worker} lost while holding {held}"


def record_losses(store: CampaignStore, losses: WorkerLosses | None, cycle: int, phase: str,
                  log: Callable[[str], None]) -> int:
    """Append the new losses to the ``worker_losses`` table and the log; returns how many."""
    new = losses.new() if losses is not None else []
    for loss in new:
        log(f"cycle {cycle} ({phase}): {describe(loss)}")
    if new:
        tables.append(store, tables.WORKER_LOSSES, cycle=[cycle] * len(new), phase=[phase] * len(new),
                      time=[x.time for x in new], worker=[x.worker for x in new],
                      n_tasks=[len(x.tasks) for x in new], tasks=[" ".join(x.tasks) for x in new])
    return len(new)
