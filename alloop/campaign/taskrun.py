"""Run a few long Dask tasks (MD segments, training) and survive worker deaths (bounded resubmission)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from alloop.errors import AlloopError


def run_tasks(client: Any, fn: Callable[..., Any], args: Sequence[tuple], retries: int) -> list[Any]:
    """``[fn(*a) for a in args]`` on the cluster, in order; a task whose worker dies is resubmitted up to ``retries`` times."""
    from distributed import wait
    from distributed.scheduler import KilledWorker

    futures = [client.submit(fn, *a, pure=False) for a in args]
    attempts = [0] * len(args)
    results: list[Any] = [None] * len(args)
    pending = set(range(len(args)))
    while pending:
        wait([futures[i] for i in pending])
        for i in sorted(pending):
            fut = futures[i]
            if fut.status == "finished":
                results[i] = fut.result()
                pending.discard(i)
                continue
            exc = fut.exception() if fut.status == "error" else None
            if exc is not None and not isinstance(exc, KilledWorker):
                raise exc
            if attempts[i] >= retries:
                raise AlloopError(f"task {getattr(fn, '__name__', fn)} lost its worker {attempts[i] + 1} times; giving up")
            attempts[i] += 1
            futures[i] = client.submit(fn, *args[i], pure=False)
    return results
