"""worker_map: a training task's independent pieces spread over a real LocalCluster."""

import os
import time

from alloop.campaign.cluster import open_client
from alloop.campaign.tasks import worker_map


def _piece(x: int) -> tuple[int, int]:
    time.sleep(0.3)
    return x * x, os.getpid()


def _outer(n: int) -> list[tuple[int, int]]:
    return worker_map(_piece, range(n))


def test_worker_map_outside_a_worker_runs_in_process():
    out = worker_map(_piece, [3, 1, 2])
    assert [v for v, _ in out] == [9, 1, 4] and {pid for _, pid in out} == {os.getpid()}


def test_worker_map_inside_a_task_uses_every_worker_and_keeps_order():
    with open_client(n_workers=2, threads_per_worker=1) as client:
        client.wait_for_workers(2)
        out = client.submit(_outer, 6, pure=False).result(timeout=120)
        worker_pids = set(client.run(os.getpid).values())
    assert [v for v, _ in out] == [0, 1, 4, 9, 16, 25]
    assert {pid for _, pid in out} == worker_pids  # the waiting task freed its slot: both workers took pieces
