"""The table of ``train_memory.py`` from its result (``benchmarks/results/train-memory.json``): peak memory and
time of one training step per batch of water boxes, in one pass or in pieces."""

from __future__ import annotations

from typing import Any

from lib.common import markdown_table


def train_memory_table(result: dict[str, Any]) -> str:
    """One row per measured step: frames, atoms, estimated pairs, passes, peak RSS growth, step seconds."""
    rows = [[str(r["frames"]), str(r["atoms"]), f"{r['pairs']:,}", "pieces" if r["pieces"] else "one pass",
             str(r["passes"]), f"{r['peak_gb']:.2f}", f"{r['growth_gb']:.2f}", f"{r['step_s']:.1f}"]
            for r in result["rows"]]
    return markdown_table(["frames", "atoms", "estimated pairs", "mode", "passes", "peak RSS (GB)",
                           "growth in the step (GB)", "step s"], rows)
