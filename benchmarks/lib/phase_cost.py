"""Where a finished campaign's wall time went, read from its store (``phase_cost.py``, issue 65).

The ``progress`` table's rows are committed as each phase ends, so the time between two rows is one phase's wall
time (the first phase's start is the run's start: its wall time from the benchmark's marker). Phases are summed by
kind; the ``md_timing`` table splits the MD tasks' seconds into model calls (of them the GFN-xTB baseline) and the
scoring of the recorded frames; the ``cycles`` table gives each training's wall seconds; the label tables the
labels' count and CPU seconds per fidelity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: phase kinds, in the order of a cycle: the ``progress`` phases each one sums
PHASE_KINDS = {
    "start-up and bootstrap sampling": ("sampled",),
    "labels": ("labelled", "labelled-cheap", "labelled-expensive"),
    "MD and the cheap pick": ("explored",),
    "expensive pick": ("selected-expensive",),
    "training": ("trained",),
    "finish": ("finished",),
}


def phase_seconds(progress: dict[str, np.ndarray], wall_s: float) -> dict[str, float]:
    """Wall seconds per phase kind: each ``progress`` row's time minus the previous row's (the first row's minus the
    run's start, ``wall_s`` before the last row)."""
    times = np.asarray(progress["time"], dtype=float)
    starts = np.concatenate([[times[-1] - wall_s], times[:-1]])
    spent = {kind: 0.0 for kind in PHASE_KINDS}
    for phase, start, end in zip(map(str, progress["phase"]), starts, times, strict=True):
        kind = next((k for k, phases in PHASE_KINDS.items() if phase in phases), None)
        if kind is None:
            raise ValueError(f"progress phase {phase!r} is of no kind in PHASE_KINDS")
        spent[kind] += float(end - start)
    return spent


def md_split(timing: dict[str, np.ndarray]) -> dict[str, float]:
    """The MD tasks' totals over the campaign (``md_timing``): replica steps, task seconds and the seconds of the
    model calls, of the baseline inside them and of the scoring."""
    keys = ("replica_steps", "seconds", "model_seconds", "baseline_seconds", "scoring_seconds")
    return {k: float(np.sum(timing[k])) for k in keys} | {"tasks": int(len(timing["seconds"]))}


def campaign_costs(run_dir: Path, wall_s: float) -> dict[str, Any]:
    """Everything the cost tables need from one finished campaign in ``run_dir``."""
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    with CampaignStore.open(store_path(run_dir)) as store:
        progress = store.table("progress")
        cycles = store.table("cycles")
        md = md_split(store.table("md_timing"))
        labels = {}
        for fidelity_hash, fidelity in store.fidelities().items():
            table = store.labels(fidelity_hash)
            labels[fidelity["name"]] = {"n": int(table.ok.sum()), "cpu_s": float(np.sum(table.cpu_seconds[table.ok]))}
        atoms = len(store.get_frames([0])[0])
    return {"wall_s": wall_s, "atoms": atoms, "phases": phase_seconds(progress, wall_s), "md": md, "labels": labels,
            "train_s": [float(s) for s in cycles["train_seconds"]], "cycles": [int(c) for c in cycles["cycle"]]}
