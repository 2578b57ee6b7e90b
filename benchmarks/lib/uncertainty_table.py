"""The table of ``uncertainty_vs_error.py`` from its result file: per test set and uncertainty signal, how it ranks
a model's per-frame force error and how its calibrated prediction compares with the measured error."""

from __future__ import annotations

from typing import Any

import numpy as np

from lib.common import mean_std

#: the signals' names in the table
SIGNAL_NAMES = {"q-residual": "Q-residual (the loop's)", "latent-mean": "latent distance, mean over atoms",
                "latent-max": "latent distance, max over atoms", "committee": "committee of {n} (force std)",
                "xtb-distance": "distance to GFN2-xTB forces"}
#: the signal the loop uses, in bold
USED = "latent-mean"


def uncertainty_lines(result: dict[str, Any], model: str) -> list[str]:
    """One row per set and signal of ``model``: Spearman rho, the worst 10 % found in the signal's top 10 %, the
    predicted and measured MAE (eV/A) and the 90 % bound's coverage, mean +- sample std over seeds."""
    lines = ["| set | signal | Spearman rho | worst 10 % in the top 10 % | predicted MAE | measured MAE | coverage "
             "of the 90 % bound |", "|---|---|---:|---:|---:|---:|---:|"]
    for row in result["models"][model]:
        a = np.array(row["per_seed"], dtype=float)
        bold = "**" if row["signal"] == USED else ""
        name = SIGNAL_NAMES.get(row["signal"], row["signal"]).format(n=len(result["seeds"]))
        pred = mean_std(a[:, 2], 4) if np.all(np.isfinite(a[:, 2])) else "-"
        cover = mean_std(a[:, 4], 2) if np.all(np.isfinite(a[:, 4])) else "-"
        lines.append(f"| {row['set']} | {name} | {bold}{mean_std(a[:, 0], 2)}{bold} | {mean_std(a[:, 1], 2)} | "
                     f"{pred} | {mean_std(a[:, 3], 4)} | {cover} |")
    return lines
