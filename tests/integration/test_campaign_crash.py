"""SIGKILL the whole campaign (driver, scheduler, workers) at points of its progress, resume, check nothing is lost.

Kill points are counted in the store's commits, not in seconds (harness.kill_points; the plan and the runs:
harness.kill_resume, shared with benchmarks/kill_soak.py): each run completes exactly the planned number of new
commits and dies after the last of them, inside the next one, or in between. The only clock is a safety net
against a hung run.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import numpy as np
import pytest

from alloop.store.campaign import CampaignStore
from harness.campaigns import check_invariants, check_nothing_lost, committed_labels, tail, write_tiny
from harness.kill_points import ALL_MODES, MODES, PROGRESS_MODES, WINDOW
from harness.kill_resume import (
    MAX_COUNT,
    MAX_DELAY_S,
    campaign_command,
    committed_phases,
    committed_seq,
    kill_plan,
    phase_commits,
    plan_cost,
    run_group,
    seq_of,
)

MAX_CHEAP = 18


def _kill_and_resume(tmp_path: Path, n_kills: int, n_cycles: int, seed: int, mode: str = "synchronous",
                     **levels: str) -> None:
    """``levels``: ``cheap`` and ``expensive`` fidelities for write_tiny (default HF/STO-3G and HF/6-31G)."""
    from alloop.fidelity import load_fidelity

    yaml = write_tiny(tmp_path, cycles=n_cycles, max_cheap=MAX_CHEAP, mode=mode, **levels)
    cheap = load_fidelity(levels.get("cheap", "hf-sto3g"))
    run_dir, stderr = tmp_path / "run", tmp_path / "campaign.stderr"
    plan = kill_plan(n_kills, phase_commits(n_cycles), random.Random(seed))
    if n_kills >= len(MODES):
        assert {mode for _, mode, _ in plan} == set(MODES), plan  # every kind of kill point at least once
    committed: dict = {}
    seq, kills = 0, 0
    for point in plan:
        code = run_group(campaign_command(yaml, run_dir, point), stderr)
        assert code == -signal.SIGKILL, (
            f"run {kills} ended with exit code {code} before its kill point {point} (plan {plan}); a campaign "
            f"shorter than {phase_commits(n_cycles)} commits would do that\n{tail(stderr)}")
        kills += 1
        assert committed_seq(run_dir) == seq + point[0], f"kill {kills} at {point}: expected commit {seq + point[0]}"
        seq += point[0]
        now = committed_labels(run_dir)
        check_nothing_lost(committed, now)
        committed = now
    assert kills == n_kills
    code = run_group(campaign_command(yaml, run_dir, None), stderr)
    assert code == 0, tail(stderr)
    out = check_invariants(run_dir, n_cycles, cheap_name=cheap.name)
    check_nothing_lost(committed, out["labels"])
    assert sum(1 for (_, h) in out["labels"] if h == cheap.hash()) <= MAX_CHEAP
    phases = committed_phases(run_dir)
    assert len(set(phases)) == len(phases) == phase_commits(n_cycles) + 1, f"phases not each once: {phases}"
    assert sum(1 for _, phase in phases if phase == "finished") == 1
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


def test_kill_plan_with_progress_modes():
    for seed in range(20):
        plan = kill_plan(10, phase_commits(8), random.Random(seed), modes=ALL_MODES)
        assert {mode for _, mode, _ in plan} == set(ALL_MODES) and plan_cost(plan) <= phase_commits(8)
        for _, mode, at in plan:
            if mode in MAX_COUNT:
                assert at == int(at) and 1 <= at <= MAX_COUNT[mode]
    with pytest.raises(AssertionError, match="need a campaign of at least 32 commits"):  # 10 + 2 x 5 + 2 x 6
        kill_plan(10, phase_commits(5), random.Random(0), modes=ALL_MODES)
    same_seed = [kill_plan(15, phase_commits(3), random.Random(12), **kw) for kw in ({}, {"modes": MODES})]
    assert same_seed[0] == same_seed[1]


class _Killed(Exception):
    pass


@pytest.mark.parametrize(("mode", "survive"), [("after", 2), ("inside", 2), ("during", 2)])
def test_kill_points_count_commits(tmp_path, mode, survive):
    """The harness on a real store, with an exception for SIGKILL: it fires at the planned commit."""
    from harness.kill_points import arm

    disarm = arm(survive, mode, 60.0, kill=_raise_killed)  # a 60 s 'during' timer never fires: commit 3 comes first
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
    assert seq_of(tmp_path / "s.zarr") == survive  # 'inside'/'during': commit 3's data, never its record


def _store_with_water(path: Path, n_frames: int) -> CampaignStore:
    from ase.build import molecule

    store = CampaignStore.create(path, {})  # seq 0: not a commit
    store.add_frames([molecule("H2O") for _ in range(n_frames)])
    return store


def test_label_kill_point_counts_label_results_after_its_commit(tmp_path):
    """'label': the kill lands at the n-th label result the driver adds after commit k (also after later commits),
    written to the store, never committed."""
    from alloop.fidelity import load_fidelity
    from alloop.labeling.result import LabelResult, LabelStatus
    from harness.kill_points import arm

    cheap = load_fidelity("hf-sto3g")
    failed = LabelResult.failure(3, LabelStatus.FAILED, "test", fidelity_name=cheap.name, fidelity_hash=cheap.hash())
    note = tmp_path / "note"
    disarm = arm(1, "label", 2, kill=_raise_killed, note=note)
    try:
        store = _store_with_water(tmp_path / "s.zarr", 4)
        store.add_labels(cheap, [0], [failed])  # before commit 1: not counted
        store.commit(phase="p1")
        store.add_labels(cheap, [1], [failed])
        store.commit(phase="p2")
        with pytest.raises(_Killed):
            store.add_labels(cheap, [2], [failed])  # written, then killed
        with pytest.warns(UserWarning, match="uncommitted"):
            store.close()  # the label of frame 2: never committed
    finally:
        disarm()
    assert note.read_text() == "label 2 after commit 2\n"
    assert seq_of(tmp_path / "s.zarr") == 2


def test_epoch_kill_point_counts_training_epochs_the_driver_logs(tmp_path):
    """'epoch': the kill lands at the n-th finished training epoch logged after commit k (epoch 0 is not one)."""
    from alloop.campaign.loop import runner
    from harness.kill_points import arm

    note = tmp_path / "note"
    disarm = arm(1, "epoch", 2, kill=_raise_killed, note=note)
    try:
        log = runner._logger(tmp_path, echo=lambda text: None)
        store = _store_with_water(tmp_path / "s.zarr", 1)
        log("  stage1 epoch    1  train loss 1.0")  # before commit 1: not counted
        store.commit(phase="p1")
        for line in ("  stage1 epoch    0  train loss     -", "  stage1 epoch    1  train loss 1.0", "trained"):
            log(line)
        with pytest.raises(_Killed):
            log("  stage1 epoch    2  train loss 0.9")
        store.close()
    finally:
        disarm()
    assert note.read_text() == "epoch 2 after commit 1\n"
    assert seq_of(tmp_path / "s.zarr") == 1


@pytest.mark.parametrize("mode", PROGRESS_MODES)
@pytest.mark.parametrize("finished", [False, True])
def test_progress_kill_waits_at_most_its_window(tmp_path, mode, finished):
    """Without its events a progress kill lands inside the commit after its window, or inside 'finished'."""
    from harness.kill_points import arm

    note = tmp_path / "note"
    disarm = arm(1, mode, 3, kill=_raise_killed, note=note)
    last = 2 if finished else 2 + WINDOW[mode]
    try:
        store = _store_with_water(tmp_path / "s.zarr", 1)
        for n in range(1, last):
            store.commit(phase=f"p{n}")
        with pytest.raises(_Killed):
            store.commit(phase="finished" if finished else f"p{last}")
        store.close()
    finally:
        disarm()
    assert note.read_text() == f"inside commit {last}\n"
    assert seq_of(tmp_path / "s.zarr") == last - 1


def _raise_killed() -> None:
    raise _Killed


def test_campaign_survives_sigkills_at_each_kind_of_kill_point(tmp_path):
    """Three kills, one of each kind (after, inside and during a commit), through two cycles of GFN2-xTB (tblite)
    cheap labels and HF/STO-3G expensive ones; the asynchronous test below and the slow variants (15 kills) label
    with PySCF at both levels."""
    _kill_and_resume(tmp_path, n_kills=len(MODES), n_cycles=2, seed=11, cheap="gfn2-xtb", expensive="hf-sto3g")


def test_asynchronous_campaign_survives_sigkills_at_each_kind_of_kill_point(tmp_path):
    """Asynchronous mode: kills may land while a cycle's training is in flight and the next cycle explores (one of
    each kind here, 15 in the slow variant)."""
    _kill_and_resume(tmp_path, n_kills=len(MODES), n_cycles=2, seed=13, mode="asynchronous")


def test_kill_in_the_last_cycles_training_after_the_budget_is_spent(tmp_path):
    """The last cycle's labels spend the cheap label limit, then a kill lands in its training: the resume trains
    that cycle (it once read the spent budget as cycle 0's stop reason and finished without it)."""
    import sys

    yaml = write_tiny(tmp_path, cycles=2, min_cheap=4, max_cheap=14)  # bootstrap 6 + 4 + 4 cheap labels
    run_dir, stderr, note = tmp_path / "run", tmp_path / "campaign.stderr", tmp_path / "kills.txt"
    kill = [sys.executable, "-m", "harness.kill_points", "0", "epoch", "1", "--note", str(note),
            "--from", "1:labelled-expensive", "--", "run", str(yaml), "--dir", str(run_dir), "--no-progress"]
    assert run_group(kill, stderr) == -signal.SIGKILL, tail(stderr)
    assert note.read_text().startswith("epoch 1 after commit"), note.read_text()
    assert (1, "labelled-expensive") in committed_phases(run_dir)
    assert (1, "trained") not in committed_phases(run_dir)
    before = committed_labels(run_dir)
    resumed = tmp_path / "resume.stderr"
    code = run_group(campaign_command(yaml, run_dir, None), resumed)
    assert code == 0, tail(resumed)
    # the driver unsubscribes from the scheduler's events before its client closes (no CRITICAL traceback at the end)
    assert "CRITICAL" not in resumed.read_text(), tail(resumed)
    out = check_invariants(run_dir, n_cycles=2)  # cycle 1 trained
    check_nothing_lost(before, out["labels"])
    with CampaignStore.open(run_dir / "store.zarr") as store:
        cheap = next(h for h, info in store.fidelities().items() if info["name"] == "hf-sto3g")
    assert sum(1 for (_, h) in out["labels"] if h == cheap) == 14  # the limit was reached in cycle 1
    assert "campaign finished: 2 cycles done" in (run_dir / "campaign.log").read_text()


@pytest.mark.slow
def test_campaign_survives_many_sigkills(tmp_path):
    _kill_and_resume(tmp_path, n_kills=15, n_cycles=3, seed=12)


@pytest.mark.slow
def test_asynchronous_campaign_survives_many_sigkills(tmp_path):
    _kill_and_resume(tmp_path, n_kills=15, n_cycles=3, seed=14, mode="asynchronous")
