"""Run a campaign for a benchmark as a user would (``alloop run``, or ``alloop resume`` after an interruption).

Shared by the benchmarks that compare whole campaigns (``quickstart_seeds.py``, ``naive_vs_periodic.py``,
``al_vs_random.py``, ``learning_curves.py``), with the labels a finished run bought. A finished run leaves a
marker JSON in its directory with its wall time and the load average, so a rerun of the benchmark reuses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def run_campaign(campaign: Path, run_dir: Path, seed: int, overrides: list[str], marker: str, log: Path) -> float:
    """Run (or resume) one campaign with ``seed`` and ``--set`` ``overrides``; returns its wall seconds.

    ``marker`` names the JSON left in ``run_dir`` when the run finishes; when it is there, the stored wall
    time is returned and nothing runs; a finished run without it (run by hand) returns NaN. Output is
    appended to ``log``.
    """
    done = run_dir / marker
    if done.is_file():
        return json.loads(done.read_text())["wall_seconds"]
    if is_finished(run_dir):
        return float("nan")
    cmd = [sys.executable, "-m", "alloop.cli", "run", str(campaign), "--dir", str(run_dir), "--no-progress"]
    for item in (f"seed={seed}", *overrides):
        cmd += ["--set", item]
    if run_dir.exists():
        cmd = [sys.executable, "-m", "alloop.cli", "resume", str(run_dir), "--no-progress"]
    t0 = time.perf_counter()
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - t0
    done.write_text(json.dumps({"wall_seconds": wall, "load_average": os.getloadavg()}))
    return wall


def is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a campaign store whose progress table records the phase 'finished'."""
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import is_store, store_path

    if not is_store(run_dir):
        return False
    with CampaignStore.open(store_path(run_dir)) as store:
        return bool(store.table_names()) and "finished" in set(map(str, store.table("progress")["phase"]))


def loop_numbers(run_dir: Path) -> dict[str, Any]:
    """Labels and labelling CPU of a finished campaign (its cycles table's last row), its training seconds (wall,
    every cycle's ``train_seconds``) and its number of cycles."""
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    with CampaignStore.open(store_path(run_dir)) as store:
        rows = store.table("cycles")
    return {"labels": int(rows["labels_expensive"][-1]), "labels_cheap": int(rows["labels_cheap"][-1]),
            "cpu_cheap_s": float(rows["cpu_cheap_s"][-1]), "cpu_expensive_s": float(rows["cpu_expensive_s"][-1]),
            "label_cpu_s": float(rows["cpu_cheap_s"][-1] + rows["cpu_expensive_s"][-1]),
            "train_s": float(np.sum(rows["train_seconds"])) if "train_seconds" in rows else float("nan"),
            "cycles": int(max(rows["cycle"])) + 1}
