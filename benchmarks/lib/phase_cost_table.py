"""The tables of ``phase_cost.py`` from its result files (one per system): the campaign's wall time per phase kind,
and where the MD's seconds went."""

from __future__ import annotations

from typing import Any

from lib.phase_cost import PHASE_KINDS


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole > 0 else "-"


def cost_lines(results: list[dict[str, Any]]) -> list[str]:
    """Per system: atoms, the campaign's wall seconds, each phase kind's seconds and share, the labels (count and
    CPU seconds per label per fidelity) and the trainings' seconds."""
    kinds = [k for k in PHASE_KINDS if k != "finish"]
    head = "| system | atoms | wall s | " + " | ".join(kinds) + " | labels: n, CPU s each | trainings s |"
    lines = [head, "|---|---:|---:|" + "---:|" * len(kinds) + "---|---|"]
    for r in results:
        wall, phases = r["wall_s"], r["phases"]
        cells = [f"{phases[k]:.0f} ({_pct(phases[k], wall)})" for k in kinds]
        labels = "; ".join(f"{name} {v['n']}, {v['cpu_s'] / max(1, v['n']):.2f}" for name, v in r["labels"].items())
        trainings = " + ".join(f"{s:.0f}" for s in r["train_s"])
        lines.append(f"| {r['system']} | {r['atoms']} | {wall:.0f} | " + " | ".join(cells) + f" | {labels} | "
                     f"{trainings} |")
    return lines


def md_lines(results: list[dict[str, Any]]) -> list[str]:
    """Per system: the MD tasks, replica steps, milliseconds per replica step, and the shares of the task time spent
    in the model calls, in the GFN-xTB baseline (inside them) and in scoring the recorded frames."""
    lines = ["| system | atoms | MD tasks | replica steps | task s | ms per replica step | model calls | of them the "
             "baseline | baseline share of the task time | scoring |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        md = r["md"]
        per_step = 1e3 * md["seconds"] / md["replica_steps"] if md["replica_steps"] else float("nan")
        lines.append(f"| {r['system']} | {r['atoms']} | {md['tasks']} | {md['replica_steps']:.0f} | {md['seconds']:.0f} "
                     f"| {per_step:.1f} | {_pct(md['model_seconds'], md['seconds'])} | "
                     f"{_pct(md['baseline_seconds'], md['model_seconds'])} | "
                     f"{_pct(md['baseline_seconds'], md['seconds'])} | {_pct(md['scoring_seconds'], md['seconds'])} |")
    return lines
