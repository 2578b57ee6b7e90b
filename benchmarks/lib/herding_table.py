"""The table of ``herding_bench.py`` from its result (``benchmarks/results/herding.json``): each selection's squared
MMD to the pool and the H-O-C-C dihedral's basin shares of its frames."""

from __future__ import annotations

from typing import Any

from lib.common import markdown_table

BASINS = ("trans", "gauche+", "gauche-")


def herding_table(result: dict[str, Any]) -> str:
    """Herding, farthest-point sampling, random draws (mean and 5-95 %) and the pool itself, as Markdown."""
    m, pops, n = result["mmd2"], result["populations"], result["n"]
    return markdown_table(["selection", "MMD^2 to the pool", *BASINS], [
        [f"herding ({n})", f"{m['herding']:.5f}", *(f"{v:.0%}" for v in pops["herding"].values())],
        [f"farthest point ({n})", f"{m['fps']:.5f}", *(f"{v:.0%}" for v in pops["fps"].values())],
        [f"random ({n}, {result['draws']} draws)", f"{m['random_mean']:.5f} (5-95 %: {m['random_p5']:.5f}-"
         f"{m['random_p95']:.5f})", *(f"{v:.0%}" for v in pops["random_mean"].values())],
        ["pool", "0", *(f"{v:.0%}" for v in pops["pool"].values())],
    ])
