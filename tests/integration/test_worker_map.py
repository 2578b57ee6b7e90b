"""worker_map: a training task's independent pieces spread over a real LocalCluster."""

import functools
import os
import time
from pathlib import Path

from alloop.campaign.execution.cluster import open_client
from alloop.campaign.execution.worker import worker_map


def _piece(x: int, folder: str | None = None) -> tuple[int, int]:
    """x squared and the process that computed it; with ``folder``, each piece waits until pieces have started in two
    processes (driven by the pieces started, not by how fast a machine is; 120 s is only a safety net)."""
    if folder is not None:
        Path(folder, str(os.getpid())).touch()
        deadline = time.monotonic() + 120.0
        while len(list(Path(folder).iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    return x * x, os.getpid()


def _outer(n: int, folder: str) -> list[tuple[int, int]]:
    return worker_map(functools.partial(_piece, folder=folder), range(n))


def test_worker_map_outside_a_worker_runs_in_process():
    out = worker_map(_piece, [3, 1, 2])
    assert [v for v, _ in out] == [9, 1, 4] and {pid for _, pid in out} == {os.getpid()}


def test_worker_map_inside_a_task_uses_every_worker_and_keeps_order(tmp_path):
    with open_client(n_workers=2, threads_per_worker=1) as client:
        client.wait_for_workers(2)
        out = client.submit(_outer, 6, str(tmp_path), pure=False).result(timeout=300)
        worker_pids = set(client.run(os.getpid).values())
    assert [v for v, _ in out] == [0, 1, 4, 9, 16, 25]
    assert {pid for _, pid in out} == worker_pids  # the waiting task freed its slot: both workers took pieces
