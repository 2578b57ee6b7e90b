"""tests/hpc: a real single-node SLURM (start it with tests/hpc/start_slurm.sh); skipped when there is none."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))  # remote_helpers

#: node states in which a job can start
USABLE = ("idle", "mixed", "allocated", "completing")
#: seconds a probe job may take to run (a node that sinfo calls idle may have lost its slurmd)
PROBE_S = 60


def slurm_problem() -> str | None:
    """Why no SLURM job can run here, or None."""
    missing = [tool for tool in ("sinfo", "squeue", "sbatch", "scancel") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not on PATH"
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo failed: {exc}"
    if out.returncode != 0:
        return f"sinfo failed: {(out.stderr or out.stdout).strip()[:200]}"
    states = out.stdout.split()
    if not any(s in USABLE for s in states):
        return f"no usable node (sinfo node states: {' '.join(states) or 'none'})"
    return _probe_job()


def _probe_job() -> str | None:
    """Run a one-second batch job to completion; why it did not, or None."""
    name = f"alloop-probe-{os.getpid()}"
    try:
        out = subprocess.run(["sbatch", "--wait", "-J", name, "-t", "1", "-o", "/dev/null", "--wrap", "true"],
                             capture_output=True, text=True, timeout=PROBE_S)
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", "-n", name], capture_output=True, timeout=30)
        return f"a probe job did not run within {PROBE_S} s (is slurmd up? see squeue and the slurmd log)"
    if out.returncode != 0:
        return f"a probe job failed: {(out.stderr or out.stdout).strip()[:200]}"
    return None


@pytest.fixture(scope="session")
def slurm() -> None:
    """Skips the test unless SLURM is up with a usable node."""
    problem = slurm_problem()
    if problem is not None:
        pytest.skip(f"SLURM is not available: {problem} (start one with: bash tests/hpc/start_slurm.sh, as root)")
