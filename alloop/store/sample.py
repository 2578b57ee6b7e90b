"""Bounded, seeded samples of a store's frames: what a long campaign's per-cycle work reads in place of every frame.

A campaign's labelled set grows every cycle; the work that reads it every cycle (a warm-started training, the
selection's memory of labelled frames, the report's parity plot) reads at most a fixed number of its frames
instead: every frame that must be there (e.g. the newest labels), the rest a uniform draw without replacement
from the others, seeded, so the same store and seed give the same sample. Below the bound nothing is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from alloop.store.campaign import CampaignStore


def bounded_sample(frame_ids: np.ndarray, cap: int | None, seed: int | Sequence[int],
                   keep: np.ndarray | None = None) -> np.ndarray:
    """Ascending indices into ``frame_ids`` (distinct) of at most ``cap`` of them: all when ``cap`` is None or not
    exceeded; else every one ``keep`` marks (the highest frame ids of them when they alone exceed ``cap``) and, for
    the rest of ``cap``, a uniform draw without replacement of the others, seeded by ``seed``. The frames chosen
    depend on the frame ids and marks, not on their order (labels are stored in the order they finished)."""
    frame_ids = np.asarray(frame_ids)
    n = frame_ids.size
    if cap is None or n <= cap:
        return np.arange(n)
    if cap < 0:
        raise ValueError(f"a sample holds at least 0 frames, got cap {cap}")
    order = np.argsort(frame_ids, kind="stable")
    marked = (np.zeros(n, bool) if keep is None else np.asarray(keep, bool))[order]
    must = np.flatnonzero(marked)
    if must.size >= cap:
        return np.sort(order[must[must.size - cap:]])  # the highest frame ids
    entropy = [int(s) % 2**63 for s in np.atleast_1d(seed)]  # a cycle may be -1 (the bootstrap)
    drawn = np.random.default_rng(entropy).choice(np.flatnonzero(~marked), size=cap - must.size, replace=False)
    return np.sort(order[np.concatenate([must, drawn])])


def recent_sample(store: CampaignStore, frame_ids: np.ndarray, cap: int | None, cycle: int,
                  seed: int | Sequence[int]) -> np.ndarray:
    """Ascending indices into ``frame_ids`` (frames of ``store``) of at most ``cap`` of them: every frame explored
    in ``cycle`` or the one before (the newest labels), the rest a sample of the older ones seeded by ``seed`` and
    ``cycle`` (:func:`bounded_sample`)."""
    frame_ids = np.asarray(frame_ids, dtype=np.int64)
    if cap is None or frame_ids.size <= cap:
        return np.arange(frame_ids.size)
    recent = store.frame_meta(frame_ids)["cycle"] >= cycle - 1
    return bounded_sample(frame_ids, cap, [*np.atleast_1d(seed).tolist(), cycle + 1], keep=recent)


def reservoir_step(size: int, n_seen: int, n_new: int, cap: int, seed: int | Sequence[int]) -> np.ndarray:
    """A reservoir sample (Algorithm R) of at most ``cap`` items after ``n_new`` more arrive: the reservoir's slots
    afterwards, as item numbers (0..size-1: the ``size`` items it held, in slot order; size + j: the j-th new item).

    ``n_seen`` items arrived before (the reservoir holds a uniform sample of them); afterwards it holds a uniform
    sample of all ``n_seen + n_new``, and a reservoir that held every item so far keeps them. Seeded by ``seed``.
    """
    if cap < 1 or size > cap or size > n_seen or n_new < 0:
        raise ValueError(f"a reservoir of {size} items of {n_seen} seen cannot take {n_new} more at cap {cap}")
    slots = list(range(size))
    entropy = [int(s) % 2**63 for s in np.atleast_1d(seed)]
    rng = np.random.default_rng(entropy)
    for j in range(n_new):
        if len(slots) < cap:
            slots.append(size + j)
            continue
        r = int(rng.integers(0, n_seen + j + 1))  # the new item is the (n_seen + j + 1)-th seen
        if r < cap:
            slots[r] = size + j
    return np.array(slots, dtype=np.int64)
