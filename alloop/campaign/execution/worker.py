"""What every task body on a Dask worker shares: its torch threads, a map over the cluster's workers from inside a
task, and a log whose lines a task publishes as they happen.

Every function here also works outside a worker (called directly, in tests or in one process): the map then runs
in this process and the log only collects its lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


def pin_threads(n: int) -> None:
    """Pin torch's intra-op threads inside a task (the nanny leaves OMP at 1)."""
    torch.set_num_threads(max(1, int(n)))


def cluster_slots() -> int:
    """Task slots (threads) of the cluster this task runs on; 1 outside a worker, where a map runs in this process."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:  # not inside a worker
        return 1
    return sum(int(info["nthreads"]) for info in worker.client.scheduler_info()["workers"].values())


def worker_map(function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """``map`` over the cluster's workers when called inside a Dask task, else in this process.

    The calling task secedes from its worker's thread pool while it waits, so its
    slot is free for the pieces; each piece sets its own torch threads.
    """
    items = list(items)
    try:
        from distributed import get_worker, worker_client

        get_worker()
    except ValueError:  # not inside a worker
        return [function(item) for item in items]
    with worker_client() as client:
        return client.gather(client.map(function, items, pure=False))


class TaskLog(list):
    """Collects log lines and, inside a Dask worker, publishes each one on the event ``topic`` as it happens (the
    driver subscribes to it to echo the lines)."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic

    def append(self, line: str) -> None:
        super().append(line)
        try:
            from distributed import get_worker

            get_worker().log_event(self.topic, line)
        except ValueError:  # not inside a worker (called directly)
            pass
