"""The table of ``foundation_models.py``: its result folders, one per model (filled by whichever environment has
the model's package), merged into one table of force errors and costs.

A model's folder (``<results>/<model>/``) holds ``learning_curves.py``-format entries ``METHOD-NN-seedS.json``
(methods ``zero-shot``, ``random``, ``loop``; each with ``scores`` per test file) and ``cost.json`` (inference ms
per MD step). Cells: mean +- sample std over the seeds found; "-" where nothing was measured.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lib.common import mean_std
from lib.learning_curves_tables import load_entries

#: the methods in the table's order
METHODS = ("zero-shot", "random", "loop")
#: the training seconds of an entry, by method: the process's CPU (zero-shot: the re-referencing) or the loop's
#: training wall seconds summed over its cycles (the store's ``train_seconds``)
TRAIN_KEY = {"zero-shot": "train_cpu_s", "random": "train_cpu_s", "loop": "train_s"}

Entries = dict[tuple[str, str, int, int], dict[str, Any]]


def load_results(root: Path) -> tuple[Entries, dict[str, dict[str, Any]]]:
    """Every model folder of ``root``: entries keyed by (model, method, N, seed), and each model's ``cost.json``."""
    entries: Entries = {}
    costs: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        for (method, n, seed), entry in load_entries(folder).items():
            entries[(folder.name, method, n, seed)] = entry
        if (folder / "cost.json").is_file():
            costs[folder.name] = json.loads((folder / "cost.json").read_text())
    return entries, costs


def header(tests: dict[str, str]) -> list[str]:
    """The table's two header lines; ``tests``: test file name -> its label in the columns."""
    sets = "".join(f" {label} mean | {label} p95 |" for label in tests.values())
    return ["| model | method | N | seeds |" + sets + " training s | ms/step | ms/step + baseline |",
            "|---|---|---:|---:|" + "---:|" * (2 * len(tests) + 3)]


def _cell(values: list[float], digits: int) -> str:
    return mean_std(values, digits) if values else "-"


def rows(entries: Entries, costs: dict[str, dict[str, Any]], tests: dict[str, str],
         models: Iterable[str] = ()) -> list[str]:
    """One row per model, method and N with entries: per test set the mean and p95 of the per-frame force MAE
    (eV/A), the training seconds (:data:`TRAIN_KEY`) and the model's inference ms per MD step, the network alone
    and with its baseline. ``models`` first in that order, then any other model found, by name."""
    found = list(dict.fromkeys(m for m, _, _, _ in entries))
    order = [m for m in models if m in found] + sorted(m for m in found if m not in models)
    out = []
    for model in order:
        cost = costs.get(model, {})
        ms = [f"{cost[k]:.1f}" if cost.get(k) is not None else "-" for k in ("network_ms", "with_baseline_ms")]
        for method in METHODS:
            for n in sorted({k[2] for k in entries if k[:2] == (model, method)}):
                got = [e for k, e in sorted(entries.items()) if k[:3] == (model, method, n)]
                cells = []
                for test in tests:
                    scored = [e["scores"][test] for e in got if test in e.get("scores", {})]
                    cells += [_cell([s["mean"] for s in scored], 4), _cell([s["p95"] for s in scored], 4)]
                train = [float(e[TRAIN_KEY[method]]) for e in got if e.get(TRAIN_KEY[method]) is not None]
                out.append(f"| {model} | {method} | {n} | {len(got)} | " + " | ".join(cells)
                           + f" | {_cell(train, 0)} | {ms[0]} | {ms[1]} |")
    return out


def table(root: Path, tests: dict[str, str], models: Iterable[str] = ()) -> list[str]:
    """The merged table of every model folder under ``root`` (header and rows)."""
    entries, costs = load_results(root)
    return header(tests) + rows(entries, costs, tests, models)
