"""The label-cost plan of the ASTEROID benchmark on ethanol: which pool frames each training method buys for a budget."""

from __future__ import annotations

from typing import Any

import numpy as np

#: the training methods compared
METHODS = ("standard", "asteroid-no-weights", "asteroid", "score-matching")


def plan(budget: float, seed: int, cheap_cost: np.ndarray, exp_cost: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per method: the pool frames given expensive labels, whether cheap labels are used, and the cost charged."""
    order = np.random.default_rng(seed).permutation(len(exp_cost))
    cum = np.cumsum(exp_cost[order])

    def buy(amount: float) -> np.ndarray:
        return np.sort(order[: int(np.searchsorted(cum, amount, side="right"))])

    all_cheap = float(cheap_cost.sum())
    out = {}
    for method in METHODS:
        uses_cheap = method in ("asteroid", "asteroid-no-weights")
        spent_cheap = all_cheap if uses_cheap else 0.0
        idx = buy(budget - spent_cheap)
        out[method] = {
            "expensive_idx": idx,
            "n_cheap": len(cheap_cost) if uses_cheap else 0,
            "n_unlabelled": len(cheap_cost) if method == "score-matching" else 0,
            "cost": spent_cheap + float(exp_cost[idx].sum()),
        }
    return out
