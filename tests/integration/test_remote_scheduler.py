"""``alloop run --address`` on a Dask scheduler and workers started apart (loopback), one worker SIGKILLed mid-label.

The scheduler and the two workers are ``dask scheduler`` / ``dask worker --no-nanny``
processes, as a user would start them. The test watches the scheduler with a
client of its own and kills the worker process that holds a label task (so the
kill lands mid-label on any machine), then checks that the campaign finishes on
the surviving worker, every label committed before the kill is still there and
unchanged, no label is stored twice, and the loss is recorded (the
``worker_losses`` table names the label tasks that were resubmitted, and the
campaign log says so).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import Client
from remote_helpers import (
    check_nothing_lost,
    committed_frames,
    committed_labels,
    free_port,
    freeze_label_holder,
    start_campaign,
    stop,
    tail,
    wait_for_exit,
    wait_until,
    worker_losses,
    write_water,
)

from harness.campaigns import check_invariants

DASK = [sys.executable, "-m", "distributed.cli"]


def _dask(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


@pytest.fixture
def remote_cluster(tmp_path):
    """A scheduler on 127.0.0.1:PORT and two single-thread workers without nanny: (address, {pid: Popen})."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_dask([*DASK[:2], "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                    "--dashboard-address", ":0"], tmp_path / "scheduler.log")]
    try:
        for i in range(2):
            procs.append(_dask([*DASK[:2], "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                                "--name", f"w{i}", "--local-directory", str(tmp_path / f"w{i}")],
                               tmp_path / f"worker{i}.log"))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, {p.pid: p for p in procs[1:]}
    finally:
        for proc in reversed(procs):
            stop(proc)


def test_campaign_on_a_remote_scheduler_survives_a_worker_kill(tmp_path, remote_cluster):
    address, workers = remote_cluster
    yaml = write_water(tmp_path / "water.yaml", "  max_task_retries: 2", samples=40, expensive=10)
    run_dir, log = tmp_path / "run", tmp_path / "campaign.out"
    proc = start_campaign(yaml, run_dir, log, "--address", address)
    try:
        with Client(address, timeout="30s") as watcher:
            wait_until(lambda: committed_frames(run_dir) > 0, proc, "the bootstrap frames' commit", log)
            before = committed_labels(run_dir)
            worker, pid = freeze_label_holder(watcher, proc, log, tmp_path)  # no nanny: the process we started
            os.kill(pid, signal.SIGKILL)
            workers[pid].wait(timeout=30)
        code = wait_for_exit(proc, run_dir, log, timeout_s=300)
        assert code == 0, tail(log)
    finally:
        stop(proc)
    out = check_invariants(run_dir, n_cycles=1)  # finished, every cycle trained, every selected frame labelled once
    check_nothing_lost(before, out["labels"])
    assert out["n_failed"] == 0
    losses = worker_losses(run_dir)
    assert len(losses["worker"]) == 1 and str(losses["worker"][0]) == worker, losses
    lost_keys = set(str(losses["tasks"][0]).split())
    assert lost_keys and all(k.startswith("label-") for k in lost_keys), losses
    assert f"Dask worker {worker} lost while holding" in (run_dir / "campaign.log").read_text()
