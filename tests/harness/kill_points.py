"""Run the alloop CLI and SIGKILL its whole process group at a point defined by the campaign's progress.

The kill point is counted in the store's commits (the driver is the only
writer; every phase and every batch of labels ends in one commit). With
``COMMITS = k`` the run completes exactly k commits and is killed

- ``after``:  right after commit k's record is durable;
- ``inside``: inside commit k+1, after its data is written and fsync'd but
  before its record replaces the previous one (so commit k+1 never happened);
- ``during``: at a moment between the two: ``AT`` seconds after commit k,
  or inside commit k+1 if that comes first;
- ``label``:  when the driver has received the ``AT``-th label result after
  commit k (written to the store, not committed);
- ``epoch``:  when the driver is told of the ``AT``-th training epoch after
  commit k (a training in flight).

Labels and trainings come only after some phases, so ``label`` and ``epoch``
count their events across the commits that follow commit k, up to
``WINDOW[mode]`` of them (a cycle's worth), and kill inside the commit after
those (or inside 'finished') if the events have not come: such a run completes
between k and k + ``WINDOW[mode]`` commits.

So what a kill leaves committed, and how many kills a campaign can take, do
not depend on the machine's speed; the clock only moves a ``during`` kill
within its interval (into an MD segment, a training or a labelling batch), and
``label``/``epoch`` place it by the campaign's own progress within it.
Store creation (sequence number 0) is not a commit; a run never kills after
the commit that marks the campaign finished (it would cut the log line that
follows it). With ``--note FILE`` the killer appends one line to FILE saying
where the kill landed, with the store's sequence numbers (e.g. ``label 2 after
commit 7``, ``inside commit 8``). With ``--from CYCLE:PHASE`` the commits are
counted from the one that marks that phase (``0 epoch 1 --from 1:labelled-expensive``:
the first epoch of cycle 1's training), whatever came before it.

The killer wraps, in its own process only, three private parts of alloop (the
store's commit-record writer ``alloop.store.campaign.atomic_write_json``,
``CampaignStore.add_labels`` and the runner's log ``alloop.campaign.loop.runner._logger``):
alloop itself holds no kill hook, and this harness lives with the tests, outside
the wheel (run from the repository root with ``tests`` on the path).

    PYTHONPATH=tests python -m harness.kill_points COMMITS MODE AT [--note FILE] [--from CYCLE:PHASE] -- ALLOOP_ARGS...
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: kill points placed by commits and, for ``during``, by a delay
MODES = ("after", "inside", "during")
#: kill points placed by progress counted after commit k: label results received, training epochs reported
PROGRESS_MODES = ("label", "epoch")
#: further commits a progress kill may wait through for its events: labels follow a cycle's 'explored' (or
#: 'selected-expensive'), at most 5 commits away; a training follows 'labelled-expensive', at most 6 away
WINDOW = {"label": 5, "epoch": 6}
ALL_MODES = MODES + PROGRESS_MODES
#: a training progress line reporting a finished epoch (``stage1 epoch    3  train loss ...``; epoch 0 is the
#: evaluation before the first epoch)
EPOCH_LINE = re.compile(r"\bepoch +[1-9]\d* ")


def _kill() -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)


class _Trigger:
    """The kill point's state: commits completed, progress events counted since commit k, the pending timer."""

    def __init__(self, commits: int, mode: str, at: float, kill: Callable[[], None], note: Path | None,
                 start: tuple[int, str] | None = None) -> None:
        self.commits, self.mode, self.at, self.kill, self.note = commits, mode, at, kill, note
        self.start = start  # (cycle, phase): commits count from the one marking it (None: from the run's start)
        self.seen = 0
        self.seq = 0  # the store's sequence number of the last commit record written
        self.events = 0
        self.timers: list[threading.Timer] = []

    def fire(self, where: str) -> None:
        """Note where the kill lands (if asked to), then kill."""
        if self.note is not None:
            with self.note.open("a") as fh:
                fh.write(where + "\n")
        self.kill()

    def record(self, write: Callable[[], None], record: dict[str, Any]) -> None:
        """Write a commit record (``write``), killing before it (commit k+1) or after it (commit k) as planned."""
        if self.start is not None:
            write()
            self.seq = int(record["seq"])
            if (record.get("cycle"), record.get("phase")) == self.start:
                self.start = None  # commit 0 of the count
            return
        self.seen += 1
        waiting = self.mode in PROGRESS_MODES and self.seen > self.commits
        if self.seen > self.commits + WINDOW.get(self.mode, 0) or (waiting and record.get("phase") == "finished"):
            self.fire(f"inside commit {int(record['seq'])}")  # its data is on disk, its record is not
        write()
        self.seq = int(record["seq"])
        if self.seen < self.commits or record.get("phase") == "finished":
            return
        if self.mode == "after":
            self.fire(f"after commit {self.seq}")
        elif self.mode == "during":
            timer = threading.Timer(self.at, self.fire, (f"during: {self.at:g} s after commit {self.seq}",))
            timer.daemon = True  # a run that fails before the kill exits with its own error
            self.timers.append(timer)
            timer.start()

    def progress(self, kind: str) -> None:
        """One progress event of ``kind`` ('label' or 'epoch'); kills at the planned one after commit k."""
        if self.mode != kind or self.start is not None or self.seen < self.commits:
            return
        self.events += 1
        if self.events == int(self.at):
            self.fire(f"{kind} {self.events} after commit {self.seq}")


def _set_method(cls: type, name: str, function: Callable[..., Any]) -> None:
    """Replace a method of ``cls`` (a monkeypatch: setattr, which a type checker allows, unlike assigning to a
    method)."""
    setattr(cls, name, function)


def arm(commits: int, mode: str, at: float, kill: Callable[[], None] = _kill, note: Path | None = None,
        start: tuple[int, str] | None = None) -> Callable[[], None]:
    """Wrap the store's commit-record writer (and, for the progress modes, the driver's label intake or its log)
    so that this process group dies at the kill point; ``at`` is the delay (s) of ``during``, the count of
    ``label``/``epoch``; ``start`` (cycle, phase): count the commits from the one that marks that phase (then a
    progress kill may count from it, ``commits`` 0). Returns ``disarm``: restores what was wrapped and cancels a
    pending ``during`` timer."""
    from alloop.campaign.loop import runner
    from alloop.store import campaign as store_module

    least = 0 if start is not None and mode in PROGRESS_MODES else 1
    if commits < least or mode not in ALL_MODES or (mode in PROGRESS_MODES and int(at) < 1):
        raise ValueError(f"need COMMITS >= 1, MODE in {ALL_MODES} (AT >= 1 for {PROGRESS_MODES}), "
                         f"got {commits}, {mode!r}, {at}")
    trigger = _Trigger(commits, mode, at, kill, note, start)
    write_record, logger = store_module.atomic_write_json, runner._logger
    add_labels = store_module.CampaignStore.add_labels

    def write(path: Path, data: Any, **kwargs: Any) -> None:
        attributes = data.get("attributes", {}) if isinstance(data, dict) and Path(path).name == "zarr.json" else {}
        record = attributes.get("commit")
        if not isinstance(record, dict) or int(record.get("seq", 0)) == 0:
            write_record(path, data, **kwargs)
        else:
            trigger.record(lambda: write_record(path, data, **kwargs), record)

    def counted_labels(self: Any, *args: Any, **kwargs: Any) -> Any:
        added = add_labels(self, *args, **kwargs)
        trigger.progress("label")
        return added

    def counted_logger(path: Path, echo: Any) -> Callable[[str], None]:
        log = logger(path, echo)

        def counted(text: str) -> None:
            log(text)
            if EPOCH_LINE.search(text):
                trigger.progress("epoch")

        return counted

    def disarm() -> None:
        for timer in trigger.timers:
            timer.cancel()
        store_module.atomic_write_json = write_record
        _set_method(store_module.CampaignStore, "add_labels", add_labels)
        runner._logger = logger

    store_module.atomic_write_json = write
    _set_method(store_module.CampaignStore, "add_labels", counted_labels)
    runner._logger = counted_logger
    return disarm


def main(argv: list[str]) -> int:
    """``COMMITS MODE AT [--note FILE] [--from CYCLE:PHASE] -- ALLOOP_ARGS...``: arm, then run the alloop CLI in
    this process."""
    if "--" not in argv:
        raise SystemExit(__doc__.splitlines()[-1])
    own, cli_args = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    options: dict[str, str] = {}
    while len(own) > 3 and own[-2] in ("--note", "--from"):
        options[own[-2]] = own[-1]
        del own[-2:]
    if len(own) != 3:
        raise SystemExit(__doc__.splitlines()[-1])
    commits, mode, at = own
    start = None
    if "--from" in options:
        cycle, _, phase = options["--from"].partition(":")
        start = (int(cycle), phase)
    note = Path(options["--note"]) if "--note" in options else None
    arm(int(commits), mode, float(at), note=note, start=start)
    from alloop.cli import main as alloop_main

    return alloop_main(cli_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
