"""``alloop dashboard`` run as its own process for the tests: started on a free localhost port, its URL read from
the line it prints, stopped with SIGTERM as a user's ``kill`` would."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass
class Dashboard:
    """A dashboard process, the URL it printed and, once stopped, its exit status and stderr."""

    process: subprocess.Popen[str]
    url: str = ""
    returncode: int | None = None
    stderr: str = ""


def _lines_into(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@contextmanager
def running_dashboard(run_dir: str | Path, *args: str, start_timeout_s: float = 300.0) -> Iterator[Dashboard]:
    """``alloop dashboard RUN_DIR --port 0 ARGS...`` in a new process, with the URL it printed (``start_timeout_s``:
    a guard against a server that never says where it listens); stopped by SIGTERM on exit (a clean stop exits
    with 143)."""
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "alloop.cli", "dashboard", str(run_dir), "--port", "0",
                                    *args], stdout=subprocess.PIPE, stderr=stderr, text=True)
        dashboard = Dashboard(process)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_lines_into, args=(process.stdout, lines), daemon=True).start()
        try:
            try:
                dashboard.url = _url(lines, start_timeout_s)
            except RuntimeError as exc:
                _stop(dashboard, stderr)
                raise RuntimeError(f"{exc} (exit status {dashboard.returncode}; stderr: {dashboard.stderr})") from None
            yield dashboard
        finally:
            _stop(dashboard, stderr)


def _stop(dashboard: Dashboard, stderr: IO[str]) -> None:
    """SIGTERM the process unless it has ended; record its exit status and stderr."""
    process = dashboard.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        dashboard.returncode = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        dashboard.returncode = process.wait()
    stderr.seek(0)
    dashboard.stderr = stderr.read()


def _url(lines: queue.Queue[str | None], timeout_s: float) -> str:
    """The URL in the first line printed; RuntimeError if the process prints another line, exits or stays silent."""
    try:
        line = lines.get(timeout=timeout_s)
    except queue.Empty:
        raise RuntimeError(f"alloop dashboard printed no URL within {timeout_s:g} s") from None
    found = re.search(r"http://\S+", line or "")
    if found is None:
        raise RuntimeError(f"alloop dashboard printed no URL: {line!r}")
    return found.group(0)
