"""Run the alloop CLI and SIGKILL its whole process group at a point defined by the campaign's progress.

The kill point is counted in the store's commits (the driver is the only
writer; every phase and every batch of labels ends in one commit). With
``COMMITS = k`` the run completes exactly k commits and is killed

- ``after``:  right after commit k's record is durable;
- ``inside``: inside commit k+1, after its data is written and fsync'd but
  before its record replaces the previous one (so commit k+1 never happened);
- ``during``: at a moment between the two: ``DELAY`` seconds after commit k,
  or inside commit k+1 if that comes first.

So what a kill leaves committed, and how many kills a campaign can take, do
not depend on the machine's speed; the clock only moves a ``during`` kill
within its interval (into an MD segment, a training or a labelling batch).
Store creation (sequence number 0) is not a commit; a run never kills after
the commit that marks the campaign finished (it would cut the log line that
follows it).

    python kill_points.py COMMITS MODE DELAY -- ALLOOP_ARGS...
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

MODES = ("after", "inside", "during")


def _kill() -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)


def arm(commits: int, mode: str, delay_s: float, kill: Callable[[], None] = _kill) -> Callable[[], None]:
    """Wrap the store's commit-record writer so that this process group dies at the kill point.

    Returns ``disarm``: restores the writer and cancels a pending ``during`` timer.
    """
    from alloop.store import campaign as store_module

    if commits < 1 or mode not in MODES:
        raise ValueError(f"need COMMITS >= 1 and MODE in {MODES}, got {commits}, {mode!r}")
    write_record = store_module.atomic_write_json
    seen = 0
    timers: list[threading.Timer] = []

    def write(path: Path, data: Any, **kwargs: Any) -> None:
        nonlocal seen
        attributes = data.get("attributes", {}) if isinstance(data, dict) and Path(path).name == "zarr.json" else {}
        record = attributes.get("commit")
        if not isinstance(record, dict) or int(record.get("seq", 0)) == 0:
            write_record(path, data, **kwargs)
            return
        seen += 1
        if seen > commits:  # commit k+1: its data is on disk, its record is not
            kill()
        write_record(path, data, **kwargs)
        if seen < commits or record.get("phase") == "finished":
            return
        if mode == "after":
            kill()
        elif mode == "during":
            timer = threading.Timer(delay_s, kill)
            timer.daemon = True  # a run that fails before the kill exits with its own error
            timers.append(timer)
            timer.start()

    def disarm() -> None:
        for timer in timers:
            timer.cancel()
        store_module.atomic_write_json = write_record

    store_module.atomic_write_json = write
    return disarm


def main(argv: list[str]) -> int:
    commits, mode, delay, sep, *cli_args = argv
    if sep != "--":
        raise SystemExit(__doc__.splitlines()[-1])
    arm(int(commits), mode, float(delay))
    from alloop.cli import main as alloop_main

    return alloop_main(cli_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
