"""BackgroundTask on a real LocalCluster: a task whose worker dies is resubmitted, a task error is not;
FutureWaiter wakes when a future ends and leaves nothing behind on the client's event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest
from distributed import Event, wait

from alloop.campaign.execution.cluster import open_client
from alloop.campaign.execution.taskrun import BackgroundTask, FutureWaiter, run_tasks
from alloop.errors import AlloopError


def _die_once(marker: str) -> int:
    """Kill the worker process the first time (leaving ``marker``), return 42 afterwards."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return 42


def _always_die() -> None:
    os._exit(1)


def _fail() -> None:
    raise ValueError("a task error, not a lost worker")


@pytest.fixture
def client():
    """A one-worker cluster of its own for each test: the tests kill its worker, and a Dask nanny whose new worker
    dies before it has reported back gives up on it for good (the next test then waited forever on a shared one)."""
    with open_client(n_workers=1, threads_per_worker=1) as c:
        c.wait_for_workers(1)
        yield c


def test_lost_worker_is_resubmitted_and_result_returns(client, tmp_path):
    task = BackgroundTask(client, _die_once, (str(tmp_path / "died"),), retries=1)
    assert task.result() == 42
    assert task.attempts == 1


def test_ready_polls_without_waiting_and_resubmits(client, tmp_path):
    task = BackgroundTask(client, _die_once, (str(tmp_path / "died"),), retries=2)
    while not task.ready():
        wait([task.future])  # as the pipeline does: wait on what is in flight, then poll
    assert task.result() == 42
    assert task.attempts == 1


def test_gives_up_past_retries(client):
    task = BackgroundTask(client, _always_die, (), retries=1)
    with pytest.raises(AlloopError, match="_always_die lost its worker 2 times"):
        task.result()
    assert task.attempts == 1


def test_task_error_is_raised_without_resubmission(client):
    task = BackgroundTask(client, _fail, (), retries=3)
    with pytest.raises(ValueError, match="a task error"):
        task.result()
    assert task.attempts == 0


def test_run_tasks_keeps_order_through_a_worker_death(client, tmp_path):
    results = run_tasks(client, _die_once, [(str(tmp_path / "a"),), (str(tmp_path / "a"),)], retries=2)
    assert results == [42, 42]


def _hold(name: str) -> int:
    """Block until the distributed Event ``name`` is set."""
    Event(name).wait()
    return 7


def _loop_tasks(client) -> int:  # noqa: ANN001
    """asyncio tasks alive on the client's event loop."""
    return client.sync(_count_tasks)


async def _count_tasks() -> int:
    return len(asyncio.all_tasks())


def test_future_waiter_wakes_when_a_future_ends_and_keeps_no_task_per_wait(client):
    release = Event("alloop-test-release")
    held = client.submit(_hold, "alloop-test-release", pure=False)
    waiter = FutureWaiter()
    waiter.wait([held], timeout=0.01)  # times out: the task is held
    tasks_before = _loop_tasks(client)
    for _ in range(50):  # a loop waiting again and again on a long task
        waiter.wait([held], timeout=0.001)
    assert _loop_tasks(client) <= tasks_before + 2  # distributed.wait left one waiter task per call behind
    woke = threading.Event()
    thread = threading.Thread(target=lambda: (waiter.wait([held], timeout=600), woke.set()))
    thread.start()
    release.set()
    thread.join(timeout=120)
    assert woke.is_set() and held.result() == 7
    waiter.wait([held], timeout=600)  # a future that has ended: at once
