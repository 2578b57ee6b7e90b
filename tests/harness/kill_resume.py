"""Kill a campaign at planned points of its progress and resume it: the plan, the runs, the checks' readings.

Shared by the crash tests (``test_campaign_crash.py``) and the kill soak
(``benchmarks/kill_soak.py``). Each run of the campaign goes through
``harness.kill_points``, which SIGKILLs the whole process group (driver, scheduler,
workers) once the run has completed exactly the planned number of new commits
(at least one, so every resume moves forward), after the last of them, inside
the next one, in between, or at a label result or a training epoch after it
(these two may wait through up to ``WINDOW[mode]`` further commits).

The tiny campaign is fixed in work: the bootstrap commits 3 phases and every
cycle 5 (each phase exactly once), then 'finished'; labelling batches add
commits on top. A plan whose kill points add up to at most
``phase_commits(n_cycles)`` commits (a progress kill counted with its window)
therefore gets exactly its kills on any machine. The only clock is a safety
net against a hung run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from alloop.store.campaign import CampaignStore
from alloop.store.resolve import is_store, store_path
from harness.campaigns import tail
from harness.kill_points import MODES, WINDOW

#: the folder that holds the ``harness`` package (``tests/``): put on the runs' PYTHONPATH, since the harness is not
#: installed with alloop and ``python -m harness.kill_points`` must find it in the run's own interpreter
HARNESS_PATH = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 600  # a safety net against a hung run; never a kill trigger
MAX_DELAY_S = 3.0  # a 'during' kill lands at most this long after its commit (or at the next commit)
#: a 'label' / 'epoch' kill lands at the n-th label result / training epoch after its commit, n up to this
MAX_COUNT = {"label": 3, "epoch": 4}

KillPoint = tuple[int, str, float]  # (new commits to complete, mode, 'during': delay in s, 'label'/'epoch': count)


class RunHung(RuntimeError):
    """A campaign run did not exit within the safety timeout."""


def phase_commits(n_cycles: int) -> int:
    """Commits the tiny campaign makes at least before 'finished': one per phase (bootstrap 3, 5 per cycle)."""
    return 3 + 5 * n_cycles


def _at(mode: str, rng: random.Random) -> float:
    """A kill point's position within its interval: a delay for 'during', a count for 'label'/'epoch'."""
    if mode == "during":
        return round(rng.uniform(0.0, MAX_DELAY_S), 2)
    if mode in MAX_COUNT:
        return float(rng.randint(1, MAX_COUNT[mode]))
    return 0.0


def kill_plan(n_kills: int, max_commits: int, rng: random.Random, modes: tuple[str, ...] = MODES) -> list[KillPoint]:
    """``n_kills`` kill points of 1 to 3 new commits each, adding up to at most ``max_commits`` with the windows of
    the progress kills (:func:`plan_cost`); every mode of ``modes`` is used (in a shuffled rotation) once there
    are as many kills as modes."""
    order = rng.sample(modes, len(modes))
    need = sum(1 + WINDOW.get(order[i % len(order)], 0) for i in range(n_kills))
    spare = max_commits - need
    assert spare >= 0, (f"{n_kills} kills need a campaign of at least {need} commits, "
                        f"this one guarantees {max_commits}")
    plan = []
    for i in range(n_kills):
        extra = rng.randint(0, min(2, spare))
        spare -= extra
        mode = order[i % len(order)]
        plan.append((1 + extra, mode, _at(mode, rng)))
    return plan


def plan_cost(plan: list[KillPoint]) -> int:
    """The most commits ``plan`` can consume: its kill points' commits plus the progress kills' windows."""
    return sum(commits + WINDOW.get(mode, 0) for commits, mode, _ in plan)


def campaign_command(yaml: Path, run_dir: Path, point: KillPoint | None, note: Path | None = None) -> list[str]:
    """``alloop run`` (or ``resume`` once ``run_dir`` holds a store), through the killer when ``point`` is given."""
    if is_store(run_dir):
        cli = ["resume", str(run_dir), "--no-progress"]
    else:
        cli = ["run", str(yaml), "--dir", str(run_dir), "--no-progress"]
    if point is None:
        return [sys.executable, "-m", "alloop.cli", *cli]
    commits, mode, at = point
    noted = ["--note", str(note)] if note is not None else []
    return [sys.executable, "-m", "harness.kill_points", str(commits), mode, str(at), *noted, "--", *cli]


def run_group(command: list[str], stderr: Path, timeout_s: float = RUN_TIMEOUT_S) -> int:
    """Run ``command`` in its own process group (``tests/`` on its PYTHONPATH, for the killer); its exit code
    (negative: killed by that signal).
    RunHung (after killing the group) if it does not exit within ``timeout_s``."""
    paths = [*filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)), str(HARNESS_PATH)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(paths)}
    with stderr.open("ab") as err:
        proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RunHung(f"{' '.join(command[1:])} hung: no exit within {timeout_s} s\n{tail(stderr)}") from None


def seq_of(path: Path) -> int:
    """The committed sequence number of the store at ``path``, from its commit record (takes no lock)."""
    return int(json.loads((path / "zarr.json").read_text())["attributes"]["commit"]["seq"])


def committed_seq(run_dir: Path) -> int:
    """The committed sequence number of the campaign in ``run_dir``."""
    return seq_of(store_path(run_dir))


def committed_phases(run_dir: Path) -> list[tuple[int, str]]:
    """The (cycle, phase) rows of the campaign's progress table, in commit order."""
    with CampaignStore.open(store_path(run_dir)) as store:
        progress = store.table("progress")
    return list(zip(progress["cycle"].tolist(), progress["phase"].tolist(), strict=True))
