"""Where a campaign's MD seconds went (the ``md_timing`` table, one row per MD task): replica steps, the tasks'
wall seconds, the model calls' share of them, a Delta model's GFN-xTB baseline's share of the model calls, and the
scoring of the recorded frames. The explore phase logs it per cycle; ``alloop status`` prints it over the campaign
and for its last cycle (stores written before the table have none)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alloop.store import tables
from alloop.store.campaign import CampaignStore

#: the ``md_timing`` columns summed over tasks
SUMMED = ("replica_steps", "seconds", "model_seconds", "baseline_seconds", "scoring_seconds")


def md_cost_line(rows: Mapping[str, Sequence[float] | np.ndarray]) -> str:
    """'N replica steps in T task s (ms per replica step; the model calls' share, of them the baseline's, and the
    scoring's)', from ``md_timing`` columns (one entry per task)."""
    total, n = float(np.sum(rows["seconds"])), int(np.sum(rows["replica_steps"]))

    def share(column: str, whole: float = total) -> str:
        return f"{float(np.sum(rows[column])) / whole:.0%}" if whole > 0 else "-"

    per_step = f"{1e3 * total / n:.2f} ms per replica step; " if n else ""
    model = float(np.sum(rows["model_seconds"]))
    base = f" (the baseline {share('baseline_seconds', model)} of them)" if np.sum(rows["baseline_seconds"]) > 0 else ""
    return (f"{n} replica steps in {total:.1f} task s ({per_step}model calls {share('model_seconds')}{base}, "
            f"scoring of the recorded frames {share('scoring_seconds')})")


def md_cost_status(store: CampaignStore) -> dict[str, Any] | None:
    """``{"total": {column: sum}, "last_cycle": cycle, "last": {column: sum}, "tasks": n}`` over the committed
    ``md_timing`` rows; None when there are none."""
    rows = tables.read(store, tables.MD_TIMING)
    if not rows or rows["cycle"].size == 0:
        return None
    last = int(rows["cycle"].max())
    mine = rows["cycle"] == last
    return {"tasks": int(rows["cycle"].size), "last_cycle": last,
            "total": {k: float(np.sum(rows[k])) for k in SUMMED},
            "last": {k: float(np.sum(rows[k][mine])) for k in SUMMED}}


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole > 0 else "-"


def md_cost_table(store: CampaignStore) -> list[str]:
    """A Markdown table of the MD's cost per cycle (``alloop report``); [] without a timed MD task."""
    rows = tables.read(store, tables.MD_TIMING)
    if not rows or rows["cycle"].size == 0:
        return []
    lines = ["", "MD cost per cycle (task seconds; the baseline's share is of the model calls):", "",
             "| cycle | MD tasks | replica steps | task s | ms per replica step | model calls | baseline | scoring |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cycle in np.unique(rows["cycle"]):
        mine = rows["cycle"] == cycle
        sums = {k: float(np.sum(rows[k][mine])) for k in SUMMED}
        total, model = sums["seconds"], sums["model_seconds"]
        per_step = f"{1e3 * total / sums['replica_steps']:.2f}" if sums["replica_steps"] else "-"
        lines.append(f"| {int(cycle)} | {int(mine.sum())} | {sums['replica_steps']:.0f} | {total:.1f} | {per_step} | "
                     f"{_pct(model, total)} | {_pct(sums['baseline_seconds'], model)} | "
                     f"{_pct(sums['scoring_seconds'], total)} |")
    return lines


def format_md_cost(status: dict[str, Any] | None) -> list[str]:
    """The status lines: the campaign's MD in all and its last cycle's ([] without a timed MD task)."""
    if not status:
        return []
    return [f"MD           {md_cost_line({k: [v] for k, v in status['total'].items()})}",
            f"  cycle {status['last_cycle']}    {md_cost_line({k: [v] for k, v in status['last'].items()})}"]
