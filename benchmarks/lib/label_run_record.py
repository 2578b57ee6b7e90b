"""What the label-cost benchmarks' result files (``label_bench.py``, ``periodic_label_bench.py``) record about their
run besides its numbers: the command, date, git commit, the machine's cores and 1-minute load average at the start
and end (under load, timings are upper bounds), and the versions of the codes they timed."""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lib.common import ROOT


def git_commit() -> dict[str, Any]:
    """The repository's HEAD and whether tracked files differ from it (``dirty``); None values outside git."""
    def git(*args: str) -> str | None:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def versions(packages: Sequence[str]) -> dict[str, str | None]:
    """The installed version of each distribution in ``packages`` (None when it is not installed)."""
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def start_record(script: str, argv: Sequence[str] | None, packages: Sequence[str] = ("pyscf",)) -> dict[str, Any]:
    """The record of a run starting now: ``command`` (``python benchmarks/SCRIPT ARGS``), ``date``, ``git``, the
    machine's ``cores``, the ``versions`` of ``packages`` and the 1-min load average at the start."""
    args = list(sys.argv[1:] if argv is None else argv)
    return {"command": shlex.join(["python", f"benchmarks/{Path(script).name}", *args]),
            "date": time.strftime("%Y-%m-%d"), "git": git_commit(), "cores": len(os.sched_getaffinity(0)),
            "versions": versions(packages), "load_average": {"start": round(os.getloadavg()[0], 2)}}


def finish_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with the 1-min load average at the end."""
    return {**record, "load_average": {**record["load_average"], "end": round(os.getloadavg()[0], 2)}}


def load_line(record: dict[str, Any]) -> str:
    """``N cores; 1-min load average A at the start, B at the end`` of a finished record."""
    load = record["load_average"]
    return f"{record['cores']} cores; 1-min load average {load['start']:.2f} at the start, {load['end']:.2f} at the end"
