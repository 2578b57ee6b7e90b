"""Crash test: SIGKILL a store writer at random moments; every commit survives, nothing else shows.

The writer (store_writer.run) is a separate process forked from the test process's forkserver,
which has imported it once (``FORKSERVER_PRELOAD`` in ``tests/conftest.py``), so each of the many
kills costs milliseconds of start-up instead of seconds of imports.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import store_writer as w
import zarr

from alloop.labeling.result import STATUS_CODES
from alloop.store import CampaignStore, FrameFlag

CTX = multiprocessing.get_context("forkserver")  # its preload (store_writer among them): tests/conftest.py


def _log_lines(log: Path) -> list[str]:
    text = log.read_text() if log.exists() else ""
    return text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]


#: a safety net against a hung writer; never what decides where a kill lands
TIMEOUT_S = 600.0


def _wait_for(log: Path, prefix: str, count: int, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while sum(line.startswith(prefix) for line in _log_lines(log)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"writer never logged {count} x '{prefix}' in {timeout:.0f} s: {_log_lines(log)[-3:]}")
        time.sleep(0.002)


def _count(log: Path, prefix: str) -> int:
    return sum(line.startswith(prefix) for line in _log_lines(log))


def _run_and_kill(path: Path, mode: str, run: int, log: Path, rng: np.random.Generator, how: str) -> tuple[int, bool]:
    """Start a writer, kill it with SIGKILL at a random moment; returns the last sequence number it reported and
    whether the kill waited for a new commit of this run (then the run added frames, whatever the machine's speed)."""
    commits_before = _count(log, "committed")
    process = CTX.Process(target=w.run, args=(str(path), mode, run, str(log)))
    process.start()
    new_commit = False
    if how == "early":  # during start-up, open/create or the first batch
        time.sleep(float(rng.uniform(0.0, 0.05)))
    else:
        _wait_for(log, "ready", run + 1)
        new_commit = bool(rng.integers(0, 2))
        _wait_for(log, "committed", commits_before + int(new_commit))
        if how == "checkpoint":  # while a multi-MB checkpoint is being written
            _wait_for(log, "checkpoint", _count(log, "checkpoint") + 1)
            time.sleep(float(rng.uniform(0.0, 0.03)))
        else:  # anywhere in a batch: adding, flushing, fsyncing, replacing the record
            time.sleep(float(rng.uniform(0.0, 0.25)))
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    assert process.exitcode in (-signal.SIGKILL, 0), f"writer failed with exit code {process.exitcode}"
    if _count(log, "ready") < run + 1:
        with log.open("a") as fh:  # keep one "ready" line per run
            fh.write("ready (killed before)\n")
    reported = [int(line.split()[1]) for line in _log_lines(log) if line.startswith("committed")]
    return max(reported, default=0), new_commit


def _verify(path: Path, mode: str, reported_seq: int) -> int:
    """Everything the record counts reads back exactly as the writer generated it; returns the frame count."""
    _, per_checkpoint, size = w.MODES[mode]
    with CampaignStore.open(path) as store:
        record = store.record
        assert record["seq"] >= reported_seq, "a commit the writer saw return is missing"
        n = store.n_frames
        assert n == store.committed_frames == record.get("frames", {}).get("rows", 0)
        frames = store.get_frames()
        for k, atoms in enumerate(frames):
            expected = w.frame(k)
            assert np.array_equal(atoms.numbers, expected.numbers)
            assert np.array_equal(atoms.positions, expected.positions)
        meta, expected_meta = store.frame_meta(), w.meta(range(n))
        for key in ("replica", "md_step", "q_score"):
            assert np.array_equal(meta[key], expected_meta[key], equal_nan=True), key
        selected = np.isin(np.arange(n), w.cheap_due(n)) * int(FrameFlag.SELECTED_CHEAP)
        assert np.array_equal(meta["flags"], expected_meta["flags"] | selected)
        for fidelity, due, expensive in ((w.CHEAP, w.cheap_due(n), False), (w.EXPENSIVE, w.expensive_due(n), True)):
            table = store.labels(fidelity)
            assert sorted(table.frame_id.tolist()) == due  # exactly the due labels, each once
            for row, k in enumerate(table.frame_id.tolist()):
                expected = w.label(k, expensive)
                assert table.energy[row].tobytes() == np.float64(expected.energy_eV).tobytes()
                assert table.frame_forces(row).tobytes() == expected.forces_eV_per_A.tobytes()
                assert table.status[row] == STATUS_CODES[expected.status] and table.reason[row] == expected.reason
                assert table.cpu_seconds[row] == expected.cpu_seconds and table.scf_cycles[row] == expected.scf_cycles
        if n > w.CHEAP_LAG:
            bias = store.table("bias")
            assert sorted(bias["frame_id"].tolist()) == w.cheap_due(n)
            assert np.array_equal(bias["B"], w.bias(bias["frame_id"]))
        if n:
            assert store.get_blob("replica-0") == w.replica_state(n)
        assert len(store.checkpoints()) == n // per_checkpoint
        for version in range(n // per_checkpoint):
            blob, info = store.checkpoint(version)
            assert blob == w.checkpoint_blob(version, size) and info["version"] == version
    group = zarr.open_group(path, mode="r")  # plain zarr agrees with the record; arrays may be longer
    assert group.attrs["commit"] == record
    if n:
        assert group["frames/n_atoms"].shape[0] >= n
        assert np.array_equal(group["frames/md_step"][:n], 10 * np.arange(n))
    return n


@pytest.mark.parametrize(
    ("mode", "kills"),
    [
        ("frames", 12),
        ("checkpoints", 8),
        pytest.param("frames", 60, marks=pytest.mark.slow),
        pytest.param("checkpoints", 30, marks=pytest.mark.slow),
    ],
)
def test_sigkill_at_random_moments_loses_no_commit(tmp_path, mode, kills):
    rng = np.random.default_rng(kills + (2024 if mode == "frames" else 4048))
    path, log = tmp_path / "store.zarr", tmp_path / "writer.log"
    counts, forward = [0], 0
    for run in range(kills):
        how = "early" if run % 5 == 1 else ("checkpoint" if mode == "checkpoints" and run % 5 != 0 else "random")
        reported, new_commit = _run_and_kill(path, mode, run, log, rng, how)
        if not (path / "zarr.json").exists():
            assert reported == 0  # killed before the store existed
            continue
        counts.append(_verify(path, mode, reported))
        assert counts[-1] >= counts[-2]
        if new_commit:  # appending resumed after the previous kill: the run's own commit added frames
            assert counts[-1] > counts[-2], f"run {run} committed but the store did not grow"
            forward += 1
    assert forward >= kills // 4  # fixed by the seed: the rng decides which kills wait for a commit
    # a final writer resumes from the last commit and finishes cleanly
    process = CTX.Process(target=w.run, args=(str(path), mode, kills, str(log), counts[-1] + 12))
    process.start()
    process.join(TIMEOUT_S)
    assert process.exitcode == 0 and _log_lines(log)[-1] == "done", f"final writer: exit code {process.exitcode}"
    assert _verify(path, mode, 0) == counts[-1] + 12
