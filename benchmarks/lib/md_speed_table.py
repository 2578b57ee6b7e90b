"""The table of ``md_bench.py``: batched MD (one model call per step for all replicas) against one ASE Langevin run
per replica, from its result files (each repeat's wall and model seconds; the best repeat of each side is shown)."""

from __future__ import annotations

from typing import Any

HEADER = ["model", "replicas", "batched replica-steps/s", "one ASE run per replica", "speed-up",
          "batched: time outside the model", "ASE: time outside the model",
          "model calls per step (structures per call), batched / ASE"]
BASELINE_HEADER = ["batched: baseline ms per MD step", "batched: baseline share of the wall",
                   "baseline SCC cycles per structure"]


def best(side: dict[str, Any]) -> int:
    """The index of the repeat with the shortest wall time (the machine is shared: less load, closer to the truth)."""
    return min(range(len(side["wall_s"])), key=side["wall_s"].__getitem__)


def calls_cell(side: dict[str, Any], steps: int) -> str:
    """``calls per step (structures per call)``, the initial force evaluation counted as a step."""
    per_call = side["structures"] / side["calls"]
    return f"{side['calls'] / (steps + 1):.3g} ({per_call:.3g} structure{'s' * (per_call != 1)})"


def row(result: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    """One table row: a replica count of one result file, each side at its best repeat."""
    b, a = entry["batched"], entry["ase"]
    ib, ia = best(b), best(a)
    steps, n = result["steps"], entry["replicas"]
    batched, ase = n * steps / b["wall_s"][ib], n * steps / a["wall_s"][ia]
    cells = [result["model"], str(n), f"{batched:.0f}", f"{ase:.0f}", f"{batched / ase:.1f}x",
             f"{100 * (1 - b['model_s'][ib] / b['wall_s'][ib]):.0f}%",
             f"{100 * (1 - a['model_s'][ia] / a['wall_s'][ia]):.0f}%",
             f"{calls_cell(b, steps)} / {calls_cell(a, steps)}"]
    if result.get("baseline"):
        cells += [f"{1000 * b['baseline_s'][ib] / (steps + 1):.1f}", f"{100 * b['baseline_s'][ib] / b['wall_s'][ib]:.0f}%",
                  f"{b['scc_cycles_per_structure'][ib]:.1f}"]
    return cells


def md_speed_lines(results: list[dict[str, Any]]) -> list[str]:
    """One row per result file and replica count; the baseline's columns when any file timed a Delta model."""
    header = HEADER + (BASELINE_HEADER if any(r.get("baseline") for r in results) else [])
    rows = [row(r, e) for r in results for e in r["rows"]]
    rows = [cells + [""] * (len(header) - len(cells)) for cells in rows]
    align = ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---"] + ["---:"] * (len(header) - len(HEADER))
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|", *("| " + " | ".join(c) + " |" for c in rows)]


def _span(values: list[float], fmt: str) -> str:
    """The values formatted, ``low-high`` when they differ at that precision."""
    shown = sorted({fmt.format(v) for v in values}, key=float)
    return shown[0] if len(shown) == 1 else f"{shown[0]}-{shown[-1]}"


def baseline_lines(results: list[dict[str, Any]]) -> list[str]:
    """The Delta model's baseline in batched MD, afresh every step (``--cold-baseline``) against the wavefunction
    carried, per replica count: SCC cycles per structure, the baseline's ms per MD step of each run (result file,
    at its best repeat) and its share of the MD wall."""
    runs: dict[tuple[int, bool], list[tuple[float, float, float]]] = {}
    for r in results:
        for e in r["rows"]:
            b, i = e["batched"], best(e["batched"])
            runs.setdefault((e["replicas"], r["cold_baseline"]), []).append(
                (b["scc_cycles_per_structure"][i], 1000 * b["baseline_s"][i] / (r["steps"] + 1),
                 100 * b["baseline_s"][i] / b["wall_s"][i]))
    lines = ["| replicas | baseline | SCC cycles per structure | baseline ms per MD step (each run) "
             "| baseline share of the MD wall |", "|---:|---|---:|---|---:|"]
    for (n, cold), got in sorted(runs.items(), key=lambda kv: (kv[0][0], not kv[0][1])):
        scc, ms, share = zip(*got, strict=True)
        lines.append(f"| {n} | {'afresh every step' if cold else 'wavefunction carried'} | {_span(scc, '{:.1f}')} | "
                     f"{', '.join(f'{v:.1f}' for v in ms)} | {_span(share, '{:.0f}')} % |")
    return lines
