"""Bounded, seeded samples of a store's frames: what a long campaign's per-cycle work reads in place of every frame.

A campaign's labelled set grows every cycle; the work that reads it every cycle (a warm-started training, the
selection's memory of labelled frames, the report's parity plot) reads at most a fixed number of its frames
instead: every frame that must be there (e.g. the newest labels), the rest a uniform draw without replacement
from the others, seeded, so the same store and seed give the same sample. Below the bound nothing is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bounded_sample(frame_ids: np.ndarray, cap: int | None, seed: int | Sequence[int],
                   keep: np.ndarray | None = None) -> np.ndarray:
    """Ascending indices into ``frame_ids`` of at most ``cap`` of them: all when ``cap`` is None or not exceeded;
    else every one ``keep`` marks (the highest frame ids of them when they alone exceed ``cap``) and, for the rest
    of ``cap``, a uniform draw without replacement of the others, seeded by ``seed``."""
    frame_ids = np.asarray(frame_ids)
    n = frame_ids.size
    if cap is None or n <= cap:
        return np.arange(n)
    if cap < 0:
        raise ValueError(f"a sample holds at least 0 frames, got cap {cap}")
    marked = np.zeros(n, bool) if keep is None else np.asarray(keep, bool)
    must = np.flatnonzero(marked)
    if must.size >= cap:
        newest = must[np.argsort(frame_ids[must], kind="stable")[::-1][:cap]]
        return np.sort(newest)
    entropy = [int(s) % 2**63 for s in np.atleast_1d(seed)]  # a cycle may be -1 (the bootstrap)
    drawn = np.random.default_rng(entropy).choice(np.flatnonzero(~marked), size=cap - must.size, replace=False)
    return np.sort(np.concatenate([must, drawn]))
