"""The table of the molecules benchmark (``molecules.py``): per molecule and arm, the per-frame force MAE's mean and
95th percentile on the molecule's sets at the campaign temperature and hotter, the labels and their CPU, the loop's
wall time; and per molecule what its sets cost.

A molecule's folder (``benchmarks/results/molecules/<molecule>/``) holds ``sets.json`` (the test files' names per
temperature, their frames and cost) and the ``ARM-NN-seedS.json`` entries of ``learning_curves.py`` (``random``,
``loop``) and of ``molecules.py`` (``zero-shot``), in the same format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lib.common import mean_std
from lib.learning_curves_tables import load_entries
from lib.molecules import MOLECULES

#: the arms in the table's order, with their labels
ARMS = {"loop": "loop", "random": "random GFN2-xTB frames", "zero-shot": "SevenNet-0 zero-shot"}
HEADER = ["| molecule | arm | N | seeds | label CPU s | loop wall s | {cold} mean | {cold} p95 | {hot} mean | {hot} p95 |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
COST_HEADER = ["| molecule | charge | 2S | expensive level | set | frames | MD CPU s | label CPU s |",
               "|---|---:|---:|---|---|---:|---:|---:|"]


def _cell(entries: list[dict[str, Any]], test: str, metric: str) -> str:
    values = [e["scores"][test][metric] for e in entries if test in e.get("scores", {})]
    return mean_std(values, 1, scale=1000.0) if values else "-"


def arm_rows(name: str, folder: Path, sets: dict[str, Any]) -> list[str]:
    """One row per arm and N that has entries: force MAE mean and p95 (meV/A, mean +- std over seeds) per set."""
    entries = load_entries(folder)
    cold, hot = sets["tests"]["campaign"], sets["tests"]["hot"]
    rows = []
    for arm, label in ARMS.items():
        for n in sorted({k[1] for k in entries if k[0] == arm}):
            got = [e for (a, m, _), e in sorted(entries.items()) if a == arm and m == n]
            wall = mean_std([e["wall_s"] for e in got], 0) if arm == "loop" else "-"
            rows.append(f"| {name} | {label} | {n} | {len(got)} | {mean_std([e['label_cpu_s'] for e in got], 0)} | "
                        f"{wall} | {_cell(got, cold, 'mean')} | {_cell(got, cold, 'p95')} | {_cell(got, hot, 'mean')} | "
                        f"{_cell(got, hot, 'p95')} |")
    return rows


def cost_rows(name: str, sets: dict[str, Any]) -> list[str]:
    return [f"| {name} | {sets['charge']} | {sets['spin']} | {sets['fidelity']} | {key} | {s['frames']} | "
            f"{s['md_cpu_s']:.0f} | {s['label_cpu_s']:.0f} |" for key, s in sets["files"].items()]


def molecules_table(results: Path) -> list[str]:
    """The Markdown lines of both tables from the results folder; a molecule of the table with no results yet has a
    row that says so."""
    rows, costs = [], []
    temps: tuple[str, str] | None = None
    for name in MOLECULES:
        path = results / name / "sets.json"
        if not path.is_file():
            rows.append(f"| {name} | not run yet | | | | | | | | |")
            continue
        sets = json.loads(path.read_text())
        temps = temps or (sets["temperatures"]["campaign"], sets["temperatures"]["hot"])
        arms = arm_rows(name, results / name, sets)
        rows += arms or [f"| {name} | sets made, arms not run yet | | | | | | | | |"]
        costs += cost_rows(name, sets)
    cold, hot = temps or ("500 K", "900 K")
    header = [HEADER[0].format(cold=cold, hot=hot), HEADER[1]]
    out = header + rows + ["", "Force MAE per frame, mean and 95th percentile over the set's frames (meV/A), mean +- "
                                "sample std over seeds."]
    return out + (["", *COST_HEADER, *costs] if costs else [])
