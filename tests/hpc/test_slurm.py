"""``alloop run`` on a real SLURM: Dask workers as batch jobs (dask-jobqueue), one job scancelled mid-label.

Needs a running SLURM (``bash tests/hpc/start_slurm.sh``, as root); skipped
otherwise, and deselected from the default suite (marker ``hpc``):

    python -m pytest -q -m hpc tests/hpc

The campaign (water, HF/STO-3G at both fidelities) runs with
``execution.cluster: slurm`` and two single-core worker jobs. A client of the
test watches the campaign's scheduler (fixed port on 127.0.0.1); once the
bootstrap frames are committed, a worker is stopped (SIGSTOP) in the middle of
a label task and its job cancelled with ``scancel`` (a kill chosen by progress,
not by time: the label cannot finish before the cancel, however fast it is).
The campaign has far more cycles than the test needs, so it cannot finish
before the job keeper notices the loss (it waits ``GRACE_S``, wall time);
once a worker of the replacement job has connected and the campaign has
committed MD frames after that, the test stops it with SIGINT (what Ctrl-C
does). Checked: ``squeue`` shows the jobs running, a replacement job is
submitted, runs and connects, the campaign goes on, every label committed before the cancel is still
there and unchanged, none is stored twice or failed, the loss is recorded
(``worker_losses`` table, campaign log), and ``sacct`` (jobcomp/filetxt, no
slurmdbd) lists every job with the cancelled one CANCELLED.
"""

from __future__ import annotations

import os
import signal
import subprocess
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

from alloop.labeling.result import STATUS_CODES, LabelStatus

pytestmark = pytest.mark.hpc

#: far more cycles than the test waits for: the campaign is stopped once the replacement job has worked
N_CYCLES = 1000
EXECUTION = """\
  n_workers: 2
  max_task_retries: 2
  cluster:
    preset: slurm
    options:
      cores: 1
      processes: 1
      memory: 2GB
      walltime: "00:15:00"
      job_name: {job}
      log_directory: {logs}
      scheduler_options: {{host: 127.0.0.1, port: {port}, dashboard_address: ":0"}}"""


def _jobs(name: str) -> dict[str, str]:
    """job id -> state of our jobs in squeue."""
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True, timeout=30)
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


def _job_of(pid: int) -> str | None:
    """The SLURM job id of a process on this machine (read from its environment: a stopped process cannot answer)."""
    for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if entry.startswith(b"SLURM_JOB_ID="):
            return entry.split(b"=", 1)[1].decode()
    return None


def _sacct(name: str) -> dict[str, str] | None:
    """job id -> state of our finished jobs from sacct's job completion log, or None when sacct cannot tell."""
    out = subprocess.run(["sacct", "-c", "-n", "-P", "-o", "jobid,jobname,state", "--name", name],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        return None
    rows = [line.split("|") for line in out.stdout.splitlines() if line.count("|") == 2]
    return {job: state.split()[0] for job, jobname, state in rows if jobname == name}


def test_campaign_on_slurm_replaces_a_cancelled_job(tmp_path, slurm):
    job, port = f"alloop-hpc-{os.getpid()}", free_port()
    yaml = write_water(tmp_path / "water.yaml", EXECUTION.format(job=job, logs=tmp_path / "dask-logs", port=port),
                       name="water-slurm", cycles=N_CYCLES, samples=60, expensive=20, max_cheap=10**6,
                       max_expensive=10**6)
    run_dir, log = tmp_path / "run", tmp_path / "campaign.out"
    proc = start_campaign(yaml, run_dir, log)
    try:
        wait_until(lambda: committed_frames(run_dir) > 0, proc, "the bootstrap frames' commit", log)
        with Client(f"tcp://127.0.0.1:{port}", timeout="30s") as watcher:
            before = committed_labels(run_dir)
            worker, pid = freeze_label_holder(watcher, proc, log, tmp_path)  # stopped mid-label: it cannot finish it
            cancelled = _job_of(pid)
            first = _jobs(job)  # before the cancel: a cancelled job soon leaves squeue
            subprocess.run(["scancel", cancelled], check=True, timeout=30)
            replacement = wait_until(lambda: {j for j, s in _jobs(job).items() if j not in first and s == "RUNNING"},
                                     proc, "a replacement job running in squeue", log, every_s=0.5)
            wait_until(lambda: set(watcher.run(lambda: os.environ.get("SLURM_JOB_ID")).values()) & replacement,
                       proc, "a worker of the replacement job connected", log, every_s=0.5)
            joined = committed_frames(run_dir)
            wait_until(lambda: committed_frames(run_dir) > joined, proc, "frames committed after the replacement "
                       "joined", log, every_s=0.5)
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the campaign stops, its jobs are cancelled
        code = wait_for_exit(proc, run_dir, log, timeout_s=120)
        assert code == 130, tail(log)
    finally:
        stop(proc)
        subprocess.run(["scancel", "-n", job], timeout=30)  # our jobs, if the campaign died with them queued
    assert cancelled is not None and first.get(cancelled) == "RUNNING" and len(first) == 2, (cancelled, first)
    after = committed_labels(run_dir)  # asserts each label is stored once
    check_nothing_lost(before, after)
    assert len(after) > len(before)
    assert all(status == STATUS_CODES[LabelStatus.OK] for status, *_ in after.values())
    losses = worker_losses(run_dir)
    assert str(losses["worker"][0]) == worker and str(losses["tasks"][0]).startswith("label-"), losses
    text = (run_dir / "campaign.log").read_text()
    assert f"Dask worker {worker} lost while holding" in text
    assert f"batch job {cancelled} (" in text and "submitting a replacement" in text
    finished = _sacct(job)
    if finished is not None:  # jobcomp/filetxt: every job, the cancelled one CANCELLED
        assert set(first) | replacement <= set(finished) and finished[cancelled] == "CANCELLED", (finished, first)
