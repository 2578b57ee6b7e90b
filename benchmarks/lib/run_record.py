"""What a benchmark's result file records about its run besides the numbers: the command, the UTC date and start and
end times, the git commit, the machine's cores, the versions of the codes timed, the 1-minute load average at the
start and the end (under load, timings are upper bounds) and the CPU seconds the run cost.

A record as :func:`start_record` and :func:`finish_record` write it::

    {"command": "python benchmarks/md_bench.py --steps 100", "date": "2026-11-29", "started_utc": "13:13",
     "git": {"commit": "<40 hex digits>", "dirty": false}, "cores": 2, "versions": {"torch": "2.13.0"},
     "load_average": {"start": 7.12, "end": 6.38}, "finished_utc": "13:16", "cpu_s": 130.1}

Result files written before this module have one of two older records (``md_bench.py``, ``allocator_bench.py``:
``commit`` a string ``abc1234`` or ``abc1234+changes``, ``load_average_start`` and ``load_average_end``, no cores;
the label-cost scripts: no times or CPU seconds); read a record with :func:`read_record`, which takes all three.
"""

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

from lib.common import ROOT, cpu_seconds


def git_commit(root: Path = ROOT) -> dict[str, Any]:
    """``root``'s HEAD and whether tracked files differ from it (``dirty``); None values outside git."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        except OSError:
            return None
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


def command_line(script: str, argv: Sequence[str] | None = None) -> str:
    """``python benchmarks/SCRIPT ARGS``: ``argv`` the arguments after the script's (default ``sys.argv[1:]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["python", f"benchmarks/{Path(script).name}", *args])


def start_record(script: str, argv: Sequence[str] | None = None, packages: Sequence[str] = ()) -> dict[str, Any]:
    """The record of a run starting now: ``command``, UTC ``date`` and ``started_utc``, ``git``, the machine's
    ``cores``, the ``versions`` of ``packages`` and the load average at the start (and, for :func:`finish_record`,
    this process's CPU seconds so far)."""
    return {"command": command_line(script, argv), "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "started_utc": time.strftime("%H:%M", time.gmtime()), "git": git_commit(),
            "cores": len(os.sched_getaffinity(0)), "versions": versions(packages),
            "load_average": {"start": round(os.getloadavg()[0], 2)}, "_cpu0": cpu_seconds()}


def finish_record(record: dict[str, Any], children_cpu_s: float = 0.0) -> dict[str, Any]:
    """``record`` of :func:`start_record` completed now (it may be completed again later): ``finished_utc``, the
    load average at the end, and ``cpu_s``, this process's CPU seconds since the start plus ``children_cpu_s``
    (work done in subprocesses)."""
    out = {k: v for k, v in record.items() if k != "_cpu0"}
    return {**out, "finished_utc": time.strftime("%H:%M", time.gmtime()),
            "load_average": {**record["load_average"], "end": round(os.getloadavg()[0], 2)},
            "cpu_s": round(cpu_seconds() - record["_cpu0"] + children_cpu_s, 1)}


def _old_commit(commit: str | None) -> dict[str, Any]:
    """``abc1234`` or ``abc1234+changes`` (``unknown`` outside git) as ``{"commit", "dirty"}``."""
    if commit is None or commit == "unknown":
        return {"commit": None, "dirty": None}
    return {"commit": commit.removesuffix("+changes"), "dirty": commit.endswith("+changes")}


def read_record(result: dict[str, Any]) -> dict[str, Any]:
    """The run record of a result file in the current form, whichever of the three formats wrote it: ``git``
    (``commit``, ``dirty``), ``load_average`` (``start``, ``end``), and ``command``, ``date``, ``cores``,
    ``versions``, ``started_utc``, ``finished_utc`` and ``cpu_s``, None where the file has none."""
    git = result.get("git") or _old_commit(result.get("commit"))
    load = result.get("load_average") or {"start": result.get("load_average_start"),
                                          "end": result.get("load_average_end")}
    plain = ("command", "date", "started_utc", "cores", "versions", "finished_utc", "cpu_s")
    return {"git": git, "load_average": load, **{key: result.get(key) for key in plain}}


def load_text(result: dict[str, Any]) -> str:
    """``2 cores; 1-min load average 2.10 at the start, 2.90 at the end`` of a finished run (any format; without
    the cores where the record has none)."""
    record = read_record(result)
    load = record["load_average"]
    cores = f"{record['cores']} cores; " if record["cores"] is not None else ""
    return f"{cores}1-min load average {load['start']:.2f} at the start, {load['end']:.2f} at the end"
