"""Worker deaths during a long campaign: SIGKILL one Dask worker process at chosen commits, check nothing is lost.

Used by ``long_campaign.py --kill-workers N``. The campaign's driver (``alloop run``) hosts the Dask scheduler and
the nannies; the workers are its child processes (started by multiprocessing's spawn), and a nanny restarts a worker
that dies. N cycles are drawn (seeded) among the warm cycles; at the commit that opens a labelling phase of each
(``explored``: the cheap labels follow; ``selected-expensive``: the expensive ones; alternately), a random worker is
SIGKILLed as soon as the commit is seen, so it dies with labels in flight or queued. Just before, the committed
labels are read (read-only); at the end every one of them must still be there, bit-identical, and no (frame,
fidelity) may be stored twice. The store's ``worker_losses`` table holds the losses the campaign recorded.
"""

from __future__ import annotations

import os
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: the commits after which labels run, alternated over the kills
LABEL_PHASES = ("explored", "selected-expensive")


def worker_pids(driver_pid: int) -> list[int]:
    """The Dask worker processes of the driver: its children started by multiprocessing's spawn, not its resource
    tracker."""
    import psutil

    out = []
    try:
        children = psutil.Process(driver_pid).children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in cmd and "resource_tracker" not in cmd:
            out.append(child.pid)
    return out


@dataclass
class WorkerKiller:
    """Kills one worker at the chosen (cycle, phase) commits; remembers what was committed before each kill."""

    run_dir: Path
    plan: dict[int, str]  # cycle -> the phase whose commit starts the kill
    rng: random.Random
    kills: list[dict[str, Any]] = field(default_factory=list)
    before: dict[tuple[int, str], tuple] = field(default_factory=dict)

    @classmethod
    def planned(cls, run_dir: Path, n_kills: int, n_cycles: int, seed: int = 0) -> WorkerKiller:
        """``n_kills`` distinct warm cycles (1 .. n_cycles - 2), drawn with ``seed``."""
        rng = random.Random(seed)
        cycles = sorted(rng.sample(range(1, max(2, n_cycles - 1)), min(n_kills, max(0, n_cycles - 2))))
        return cls(run_dir, {c: LABEL_PHASES[i % len(LABEL_PHASES)] for i, c in enumerate(cycles)}, rng)

    def on_commit(self, cycle: int | None, phase: str | None, driver_pid: int) -> None:
        if cycle is None or self.plan.get(cycle) != phase:
            return
        pids = worker_pids(driver_pid)
        if not pids:
            self.kills.append({"cycle": cycle, "phase": phase, "pid": None})
            return
        pid = self.rng.choice(pids)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pid = None
        self.kills.append({"cycle": cycle, "phase": phase, "pid": pid})
        self._remember()

    def _remember(self) -> None:
        """Add the labels committed now to ``before`` (after the kill: reading 10,000 labels takes a while, and the
        labels in flight must die first)."""
        from lib.kill_harness import committed_label_entries

        for key, value in committed_label_entries(self.run_dir):
            self.before.setdefault(key, value)

    def verdict(self) -> dict[str, Any]:
        """Kills done, committed labels lost or changed since a kill, labels stored twice, losses recorded."""
        from alloop.store import tables
        from alloop.store.campaign import CampaignStore
        from alloop.store.resolve import store_path
        from lib.kill_harness import committed_label_entries

        entries = committed_label_entries(self.run_dir)
        after: dict[tuple[int, str], tuple] = {}
        duplicates = 0
        for key, value in entries:
            duplicates += key in after
            after.setdefault(key, value)
        lost = sum(key not in after for key in self.before)
        changed = sum(key in after and after[key] != value for key, value in self.before.items())
        with CampaignStore.open(store_path(self.run_dir), "r") as store:
            losses = tables.read(store, tables.WORKER_LOSSES)
        return {"planned": len(self.plan), "killed": sum(k["pid"] is not None for k in self.kills),
                "labels_checked": len(self.before), "lost": lost, "changed": changed, "duplicates": duplicates,
                "losses_recorded": len(losses.get("worker", ())),
                "tasks_lost": int(np.sum(losses.get("n_tasks", 0)))}


def verdict_table(v: dict[str, Any]) -> str:
    """The worker kills' figures as a Markdown table."""
    rows = [("workers SIGKILLed", f"{v['killed']} of {v['planned']} planned"),
            ("labels committed before a kill, checked at the end", v["labels_checked"]),
            ("lost / changed / stored twice", f"{v['lost']} / {v['changed']} / {v['duplicates']}"),
            ("worker losses recorded (worker_losses table)", v["losses_recorded"]),
            ("tasks the lost workers held", v["tasks_lost"])]
    return "| figure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
