"""Helpers of the remote-scheduler and SLURM tests: a water campaign on an external cluster, watched from outside.

The campaign runs as ``alloop run`` in its own process group; the test watches
its store (committed content only) and its Dask scheduler (a second client) to
strike a worker while it holds a label task, whatever the machine's speed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import is_store, store_path
from harness.campaigns import check_nothing_lost, committed_labels, tail  # noqa: F401 (the tests import them from here)

#: water at HF/STO-3G for both fidelities (the expensive one converged tighter); many bootstrap labels, so the
#: bootstrap's labelling lasts long enough to lose a worker in the middle of it
WATER = """
name: {name}
seed: 5
system: {{structures: H2O}}
fidelities:
  cheap: hf-sto3g
  expensive: {{name: hf-sto3g-tight, method: hf, basis: sto-3g, conv_tol_Eh: 1.0e-10}}
model: {{architecture: pair, cutoff_A: 4.0, n_rbf: 8, baseline: null}}
md: {{n_replicas: 2, segment_steps: 40, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0, restart_from: start}}
uncertainty: {{n_components: 2}}
selection: {{max_cheap_per_cycle: 4, min_cheap_per_cycle: 0, max_expensive_per_cycle: 2, min_step_spacing: 10,
            expensive_pick: bias}}
training: {{method: asteroid, final_refit: false, max_epochs: 4, patience_epochs: 2, batch_size: 8, gamma_grid: [1.0]}}
schedule:
  strategy: periodic
  n_cycles: {cycles}
  max_labels: {{cheap: {max_cheap}, expensive: {max_expensive}}}
  bootstrap: {{n_samples: {samples}, n_expensive: {expensive}, amplitude_A: 0.03}}
execution:
{execution}
evaluation: null
"""


def write_water(path: Path, execution: str, *, name: str = "water", cycles: int = 1, samples: int = 40,
                expensive: int = 10, max_cheap: int = 200, max_expensive: int = 60) -> Path:
    """The campaign file; ``execution`` is the indented body of its execution section."""
    path.write_text(WATER.format(name=name, cycles=cycles, samples=samples, expensive=expensive, execution=execution,
                                 max_cheap=max_cheap, max_expensive=max_expensive))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_campaign(yaml: Path, run_dir: Path, log: Path, *extra: str) -> subprocess.Popen:
    """``alloop run`` in its own process group, output to ``log``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "alloop.cli", "run", str(yaml), "--dir", str(run_dir),
                                 "--no-progress", *extra], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def stop(proc: subprocess.Popen, group: bool = True) -> None:
    """SIGKILL a process (and its group) that is still running, and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


def wait_for_exit(proc: subprocess.Popen, run_dir: Path, log: Path, timeout_s: float) -> int:
    """The campaign's exit code; if it has not exited within ``timeout_s`` (a safety net), it is asked for every
    thread's stack (SIGUSR1: faulthandler appends them to its campaign.log) and the test fails with that log."""
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        campaign_log = run_dir / "campaign.log"
        os.kill(proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 60  # a safety net: the dump is written as soon as the signal arrives
        while proc.poll() is None and "most recent call first" not in tail(campaign_log, 20000):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise AssertionError(f"the campaign did not exit within {timeout_s} s; its output:\n{tail(log)}\n"
                             f"its campaign.log with every thread's stack:\n{tail(campaign_log, 20000)}"
                             ) from None


def committed_frames(run_dir: Path) -> int:
    if not is_store(run_dir):
        return 0
    with CampaignStore.open(store_path(run_dir)) as store:
        return store.committed_frames


def worker_losses(run_dir: Path) -> dict[str, Any]:
    with CampaignStore.open(store_path(run_dir)) as store:
        return tables.read(store, tables.WORKER_LOSSES)


def label_holder(client: Any) -> tuple[str, list[str]] | None:
    """A worker that holds a label task right now (running or queued on it) and its label keys, or None."""
    for worker, keys in client.processing().items():
        labels = sorted(str(k) for k in keys if str(k).startswith("label-"))
        if labels:
            return worker, labels
    return None


def _is_stopped(pid: int) -> bool:
    """Whether process ``pid`` (on this machine) is stopped by a signal (state T in /proc)."""
    try:
        return any(line.split()[1] == "T" for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("State:"))
    except FileNotFoundError:
        return False


def freeze_label_holder(client: Any, proc: subprocess.Popen, log: Path, scratch: Path) -> tuple[str, int]:
    """SIGSTOP a worker (on this machine) in the middle of a label task; returns its address and pid.

    The check "is a label running here" and the SIGSTOP run in one step of the worker's event loop, so a
    label cannot finish and be reported in between: the worker is then lost *while holding* a label,
    however fast labels are (a kill straight after seeing a label in ``processing`` can come too late).
    """
    for attempt in range(1000):
        worker, _ = wait_until(lambda: label_holder(client), proc, "a label task on a worker", log)
        pid = client.run(os.getpid, workers=[worker])[worker]
        idle = scratch / f"not-labelling-{attempt}"

        async def stop_if_labelling(marker: str, dask_worker: Any = None) -> None:
            if any(str(ts.key).startswith("label-") for ts in dask_worker.state.executing):
                os.kill(os.getpid(), signal.SIGSTOP)
            else:
                Path(marker).write_text("no label running")

        client.run(stop_if_labelling, str(idle), workers=[worker], wait=False)
        outcome = wait_until(lambda pid=pid, idle=idle: ("stopped" if _is_stopped(pid)
                                                         else ("idle" if idle.exists() else None)),
                             proc, "the worker stopped or found without a label", log, every_s=0.05)
        if outcome == "stopped":
            return worker, pid
    raise AssertionError("no worker could be stopped in the middle of a label")


def wait_until(condition: Callable[[], Any], proc: subprocess.Popen, what: str, log: Path,
               timeout_s: float = 300.0, every_s: float = 0.1) -> Any:
    """Poll ``condition`` until it is truthy; fails if the campaign exits first (or the safety net expires)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the campaign exited ({proc.returncode}) before {what}\n{tail(log)}")
        time.sleep(every_s)
    raise AssertionError(f"no {what} within {timeout_s} s (safety net)\n{tail(log)}")
