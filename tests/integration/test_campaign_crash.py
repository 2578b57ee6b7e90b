"""SIGKILL the whole campaign (driver, scheduler, workers) at random moments, resume, and check nothing is lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alloop.campaign.runner import is_store
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path

from campaign_helpers import check_invariants, label_rows, write_tiny

N_CYCLES = 2
MAX_CHEAP = 18


def _command(yaml: Path, run_dir: Path) -> list[str]:
    if is_store(run_dir):
        return [sys.executable, "-m", "alloop.cli", "resume", str(run_dir), "--no-progress"]
    return [sys.executable, "-m", "alloop.cli", "run", str(yaml), "--dir", str(run_dir), "--no-progress"]


def _snapshot(run_dir: Path) -> dict:
    if not is_store(run_dir):
        return {}
    with CampaignStore.open(store_path(run_dir)) as store:
        return label_rows(store)


def _kill_and_resume(tmp_path: Path, n_kills: int, seed: int) -> None:
    yaml = write_tiny(tmp_path, cycles=N_CYCLES, max_cheap=MAX_CHEAP)
    run_dir = tmp_path / "run"
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    committed: dict = {}
    kills = 0
    while kills < n_kills:
        proc = subprocess.Popen(_command(yaml, run_dir), start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env)
        time.sleep(rng.uniform(4.0, 14.0))
        if proc.poll() is not None:  # finished (or failed) before the kill
            assert proc.returncode == 0, proc.stderr.read().decode()[-3000:]
            break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        now = _snapshot(run_dir)
        for key, value in committed.items():
            assert now.get(key) == value, f"committed label {key} changed or vanished after kill {kills}"
        committed = now
    final = subprocess.run(_command(yaml, run_dir), capture_output=True, timeout=900, env=env)
    assert final.returncode == 0, final.stderr.decode()[-3000:]
    out = check_invariants(run_dir, N_CYCLES)
    for key, value in committed.items():
        assert out["labels"][key] == value, f"label {key} committed before a kill is not identical at the end"
    cheap = sum(1 for (_, h) in out["labels"] if h == "fa1162a91ebb1963")
    assert cheap <= MAX_CHEAP
    assert kills == n_kills, f"the campaign finished after {kills} kills; make it longer"
    log = (run_dir / "campaign.log").read_text()
    assert log.count("campaign finished") == 1


def test_campaign_survives_five_sigkills(tmp_path):
    _kill_and_resume(tmp_path, n_kills=5, seed=11)


@pytest.mark.slow
def test_campaign_survives_many_sigkills(tmp_path):
    _kill_and_resume(tmp_path, n_kills=15, seed=12)
