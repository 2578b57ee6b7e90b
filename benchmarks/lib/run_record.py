"""What a benchmark's result file records about its run besides the numbers: the command, when, at which commit, the
machine's load at the start and the end, and the CPU seconds the run cost."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lib.common import ROOT, cpu_seconds


def git_commit(root: Path = ROOT) -> str:
    """The short commit of ``root``'s checkout, ``+changes`` when tracked files differ from it; ``unknown`` outside
    git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command_line(argv: list[str] | None = None) -> str:
    """``python benchmarks/<script> ARGS`` of this process (``argv`` defaults to ``sys.argv``)."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    shown = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else argv[0]
    return shlex.join(["python", shown, *argv[1:]])


def start_record(threads: int, argv: list[str] | None = None) -> dict[str, Any]:
    """The run's record before its work: command, UTC date and start time, commit, 1-min load average, threads."""
    return {"command": command_line(argv), "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "started_utc": time.strftime("%H:%M", time.gmtime()), "commit": git_commit(), "threads": threads,
            "load_average_start": round(os.getloadavg()[0], 2), "_cpu0": cpu_seconds()}


def finish_record(record: dict[str, Any], children_cpu_s: float = 0.0) -> dict[str, Any]:
    """The record completed after the work: end time, 1-min load average, and the CPU seconds of this process
    since :func:`start_record` plus ``children_cpu_s`` (work done in subprocesses)."""
    out = {k: v for k, v in record.items() if k != "_cpu0"}
    return {**out, "finished_utc": time.strftime("%H:%M", time.gmtime()),
            "load_average_end": round(os.getloadavg()[0], 2),
            "cpu_s": round(cpu_seconds() - record["_cpu0"] + children_cpu_s, 1)}


def load_text(record: dict[str, Any]) -> str:
    """``load average 2.1 at the start, 2.9 at the end`` (1 min) of a finished record."""
    return f"load average {record['load_average_start']:.1f} at the start, {record['load_average_end']:.1f} at the end"
