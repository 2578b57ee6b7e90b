"""The table of ``asteroid_toy.py``: per number of accurate points, each method's test MAE (mean +- std over seeds),
ASTEROID's gain over standard training, the gamma chosen and the correlation of the bias B with the true offset."""

from __future__ import annotations

from typing import Any

import numpy as np

#: the methods (keys of a run) and their columns
METHODS = {"standard": "standard", "biased only": "biased only", "pretrain+finetune": "pretrain + fine-tune (w = 1)",
           "ASTEROID": "ASTEROID"}


def toy_table(result: dict[str, Any]) -> list[str]:
    """Markdown lines of the result file's table, one row per size."""
    lines = ["| accurate N | " + " | ".join(METHODS.values()) + " | ASTEROID vs standard | chosen gamma / median B "
             "| corr(B, b) |", "|---:|" + "---|" * len(METHODS) + "---:|---|---:|"]
    for size, runs in sorted(result["runs"].items(), key=lambda kv: int(kv[0])):
        cells = []
        for key in METHODS:
            v = np.array([r[key] for r in runs])
            cells.append(f"{v.mean():.3f} +- {v.std(ddof=1) if v.size > 1 else 0.0:.3f}")
        gain = 100.0 * (np.mean([r["ASTEROID"] for r in runs]) / np.mean([r["standard"] for r in runs]) - 1)
        gammas = ", ".join(f"{r['gamma/median B']:g}" for r in runs)
        corr = np.mean([r["bias corr"] for r in runs])
        lines.append(f"| {size} | " + " | ".join(cells) + f" | {gain:+.0f}% | {gammas} | {corr:.2f} |")
    return lines
