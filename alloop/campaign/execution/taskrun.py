"""Run long Dask tasks (MD segments, training) and survive worker deaths (bounded resubmission); wait for any
of many tasks to end."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from alloop.errors import AlloopError
from alloop.signals import raise_if_stopped

#: seconds between looks at a stop signal (:func:`~alloop.signals.raise_if_stopped`) while a task runs
STOP_CHECK_S = 2.0


class BackgroundTask:
    """``fn(*args)`` on the cluster, collected later; resubmitted up to ``retries`` times if its worker dies."""

    def __init__(self, client: Any, fn: Callable[..., Any], args: tuple, retries: int, priority: int = 0) -> None:
        self.client, self.fn, self.args, self.retries, self.priority = client, fn, args, retries, priority
        self.attempts = 0
        self.future = self._submit()

    def _submit(self) -> Any:
        return self.client.submit(self.fn, *self.args, pure=False, priority=self.priority)

    def done(self) -> bool:
        """Whether the current attempt has ended (finished, failed or lost its worker)."""
        return self.future.done()

    def ready(self) -> bool:
        """Without waiting: whether :meth:`result` will return (or raise) at once; an attempt that lost its worker
        is resubmitted here (so the caller keeps polling)."""
        from distributed.scheduler import KilledWorker

        if not self.future.done() or self.future.status == "finished":
            return self.future.done()
        exc = self.future.exception() if self.future.status == "error" else None
        if (exc is not None and not isinstance(exc, KilledWorker)) or self.attempts >= self.retries:
            return True
        self.attempts += 1
        self.future = self._submit()
        return False

    def result(self) -> Any:
        """Wait for the result; a task error is raised, a lost worker resubmits (AlloopError past ``retries``)."""
        from distributed.scheduler import KilledWorker

        waiter = FutureWaiter()
        while not self.ready():
            raise_if_stopped()
            waiter.wait([self.future], STOP_CHECK_S)
        if self.future.status == "finished":
            return self.future.result()
        exc = self.future.exception() if self.future.status == "error" else None
        if exc is not None and not isinstance(exc, KilledWorker):
            raise exc
        name = getattr(self.fn, "__name__", self.fn)
        raise AlloopError(f"task {name} lost its worker {self.attempts + 1} times; giving up")


def run_tasks(client: Any, fn: Callable[..., Any], args: Sequence[tuple], retries: int) -> list[Any]:
    """``[fn(*a) for a in args]`` on the cluster, in order; a task whose worker dies is resubmitted up to ``retries``
    times."""
    tasks = [BackgroundTask(client, fn, a, retries) for a in args]
    return [task.result() for task in tasks]


class FutureWaiter:
    """Block until one of a changing set of Dask futures ends, at the cost of one done-callback per future.

    ``distributed.wait(..., return_when="FIRST_COMPLETED")`` starts a waiter task on the client's event loop for
    every future at every call and leaves the unfinished ones behind, so a loop that waits a few times a second
    on a long training accumulates thousands of them (each woken when its future ends). Here each future gets one
    done-callback, the first time it is shown, that sets an event.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._watched: set[str] = set()  # keys of the futures with a callback

    def wait(self, futures: Iterable[Any], timeout: float) -> None:
        """Return once any of ``futures`` has ended (at once if one already has) or after ``timeout`` seconds."""
        futures = list(futures)
        keys = {f.key for f in futures}
        for future in futures:
            if future.key not in self._watched:
                self._watched.add(future.key)
                future.add_done_callback(self._wake)
        self._watched &= keys  # forget futures that are gone (their callbacks only set the event)
        if any(f.done() for f in futures):
            return
        self._event.wait(timeout)
        self._event.clear()  # a future ending after this is seen by the done() check of the next call

    def _wake(self, _future: Any) -> None:
        self._event.set()
