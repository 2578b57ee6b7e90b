"""SIGKILL the whole campaign (driver, scheduler, workers) at points of its progress, resume, check nothing is lost.

Kill points are counted in the store's commits, not in seconds (kill_points.py):
each run completes exactly the planned number of new commits (at least one, so
every resume moves forward) and dies after the last of them, inside the next
one, or in between. The tiny campaign is fixed in work: the bootstrap commits
3 phases and every cycle 5 (each phase exactly once, checked below), then
'finished'; labelling batches add commits on top. A plan whose kill points add
up to at most ``phase_commits(n_cycles)`` commits therefore gets exactly its
kills on any machine. The only clock is a safety net against a hung run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alloop.campaign.runner import is_store
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path

from campaign_helpers import check_invariants, label_rows, write_tiny
from kill_points import MODES

MAX_CHEAP = 18
CHEAP_HASH = "fa1162a91ebb1963"  # hf-sto3g
KILLER = Path(__file__).with_name("kill_points.py")
RUN_TIMEOUT_S = 600  # a safety net against a hung run; never a kill trigger
MAX_DELAY_S = 3.0  # a 'during' kill lands at most this long after its commit (or at the next commit)

KillPoint = tuple[int, str, float]  # (new commits to complete, mode, delay of a 'during' kill)


def phase_commits(n_cycles: int) -> int:
    """Commits the tiny campaign makes at least before 'finished': one per phase (bootstrap 3, 5 per cycle)."""
    return 3 + 5 * n_cycles


def kill_plan(n_kills: int, max_commits: int, rng: random.Random) -> list[KillPoint]:
    """``n_kills`` kill points of 1 to 3 new commits each, adding up to at most ``max_commits``; every mode is used
    (in a shuffled rotation) once there are as many kills as modes."""
    spare = max_commits - n_kills
    assert spare >= 0, f"{n_kills} kills need a campaign of at least {n_kills} commits, this one guarantees {max_commits}"
    modes = rng.sample(MODES, len(MODES))
    plan = []
    for i in range(n_kills):
        extra = rng.randint(0, min(2, spare))
        spare -= extra
        mode = modes[i % len(modes)]
        plan.append((1 + extra, mode, round(rng.uniform(0.0, MAX_DELAY_S), 2) if mode == "during" else 0.0))
    return plan


def _command(yaml: Path, run_dir: Path, point: KillPoint | None) -> list[str]:
    if is_store(run_dir):
        cli = ["resume", str(run_dir), "--no-progress"]
    else:
        cli = ["run", str(yaml), "--dir", str(run_dir), "--no-progress"]
    if point is None:
        return [sys.executable, "-m", "alloop.cli", *cli]
    commits, mode, delay = point
    return [sys.executable, str(KILLER), str(commits), mode, str(delay), "--", *cli]


def _run(command: list[str], stderr: Path) -> int:
    """Run ``command`` in its own process group; its exit code (negative: killed by that signal)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with stderr.open("ab") as err:
        proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            return proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"{' '.join(command[1:])} hung: no exit within {RUN_TIMEOUT_S} s\n{_tail(stderr)}")


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _seq(run_dir: Path) -> int:
    """The committed sequence number, read from the commit record (the root zarr.json; takes no lock)."""
    return _seq_of(store_path(run_dir))


def _snapshot(run_dir: Path) -> dict:
    with CampaignStore.open(store_path(run_dir)) as store:
        return label_rows(store)


def _kill_and_resume(tmp_path: Path, n_kills: int, n_cycles: int, seed: int, mode: str = "synchronous") -> None:
    yaml = write_tiny(tmp_path, cycles=n_cycles, max_cheap=MAX_CHEAP, mode=mode)
    run_dir, stderr = tmp_path / "run", tmp_path / "campaign.stderr"
    plan = kill_plan(n_kills, phase_commits(n_cycles), random.Random(seed))
    committed: dict = {}
    seq, kills = 0, 0
    for point in plan:
        code = _run(_command(yaml, run_dir, point), stderr)
        assert code == -signal.SIGKILL, (
            f"run {kills} ended with exit code {code} before its kill point {point} (plan {plan}); a campaign "
            f"shorter than {phase_commits(n_cycles)} commits would do that\n{_tail(stderr)}")
        kills += 1
        assert _seq(run_dir) == seq + point[0], f"kill {kills} at {point}: expected commit {seq + point[0]}"
        seq += point[0]
        now = _snapshot(run_dir)
        for key, value in committed.items():
            assert now.get(key) == value, f"committed label {key} changed or vanished after kill {kills}"
        committed = now
    assert kills == n_kills
    code = _run(_command(yaml, run_dir, None), stderr)
    assert code == 0, _tail(stderr)
    out = check_invariants(run_dir, n_cycles)
    for key, value in committed.items():
        assert out["labels"][key] == value, f"label {key} committed before a kill is not identical at the end"
    assert sum(1 for (_, h) in out["labels"] if h == CHEAP_HASH) <= MAX_CHEAP
    with CampaignStore.open(store_path(run_dir)) as store:
        progress = store.table("progress")
    phases = list(zip(progress["cycle"].tolist(), progress["phase"].tolist()))
    assert len(set(phases)) == len(phases) == phase_commits(n_cycles) + 1, f"phases not each once: {phases}"
    assert np.sum(progress["phase"] == "finished") == 1
    log = (run_dir / "campaign.log").read_text()
    assert log.count("campaign finished") == 1


def test_kill_plan_fits_the_campaign():
    for seed in range(50):
        plan = kill_plan(15, phase_commits(3), random.Random(seed))
        assert len(plan) == 15 and sum(k for k, _, _ in plan) <= phase_commits(3)
        assert all(k >= 1 and mode in MODES and 0.0 <= delay <= MAX_DELAY_S for k, mode, delay in plan)
    assert all({mode for _, mode, _ in kill_plan(3, 13, random.Random(seed))} == set(MODES) for seed in range(20))
    with pytest.raises(AssertionError, match="need a campaign"):
        kill_plan(14, phase_commits(2), random.Random(0))


class _Killed(Exception):
    pass


@pytest.mark.parametrize(("mode", "survive"), [("after", 2), ("inside", 2), ("during", 2)])
def test_kill_points_count_commits(tmp_path, mode, survive):
    """The harness on a real store, with an exception for SIGKILL: it fires at the planned commit."""
    from kill_points import arm

    def kill() -> None:
        raise _Killed

    disarm = arm(survive, mode, 60.0, kill=kill)  # a 'during' timer this long never fires: commit 3 comes first
    try:
        store = CampaignStore.create(tmp_path / "s.zarr", {})  # seq 0: not a commit
        raised_at = None
        for n in range(1, 5):
            store.append_rows("progress", cycle=np.array([n], np.int32))
            try:
                store.commit(phase=f"p{n}")
            except _Killed:
                raised_at = n
                break
        store.close()
    finally:
        disarm()
    assert raised_at == (survive if mode == "after" else survive + 1)
    assert _seq_of(tmp_path / "s.zarr") == survive  # 'inside'/'during': commit 3's data, never its record


def _seq_of(path: Path) -> int:
    return int(json.loads((path / "zarr.json").read_text())["attributes"]["commit"]["seq"])


def test_campaign_survives_five_sigkills(tmp_path):
    _kill_and_resume(tmp_path, n_kills=5, n_cycles=2, seed=11)


def test_asynchronous_campaign_survives_five_sigkills(tmp_path):
    """Asynchronous mode: kills may land while a cycle's training is in flight and the next cycle explores."""
    _kill_and_resume(tmp_path, n_kills=5, n_cycles=2, seed=13, mode="asynchronous")


@pytest.mark.slow
def test_campaign_survives_many_sigkills(tmp_path):
    _kill_and_resume(tmp_path, n_kills=15, n_cycles=3, seed=12)


@pytest.mark.slow
def test_asynchronous_campaign_survives_many_sigkills(tmp_path):
    _kill_and_resume(tmp_path, n_kills=15, n_cycles=3, seed=14, mode="asynchronous")
