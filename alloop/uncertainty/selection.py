"""Which frames to label: flagged and unstable frames, within budget, spread out in time and feature space.

Cheap fidelity (:func:`select_frames`): candidates are frames whose score
exceeds the limit (score > 1, the normalisation of qresidual.FrameScores)
plus frames flagged unstable by the MD guards. Unstable frames come first
(they mark where the model fails), then the highest-scoring flagged frame,
then farthest-point sampling (FPS) on frame descriptors: each next pick is the
candidate farthest (Euclidean) from everything already picked. A pick removes
the candidates of the same replica less than ``min_spacing_steps`` steps
away, so no run of consecutive frames is labelled. Deterministic: ties go to
the lower index (no random start is needed, the highest score is the seed).

Expensive fidelity (:func:`select_expensive`): among cheap-labelled frames,
the top-``budget`` by bias B.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from alloop.errors import AlloopError


@dataclass
class Selection:
    """Selected frame indices (in order of choice) and a one-line reason for each."""

    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.indices.size)


def frame_descriptors(
    numbers: np.ndarray, features: np.ndarray, ptr: np.ndarray, elements: Sequence[int]
) -> np.ndarray:
    """Per frame, the mean latent feature of each element, concatenated: [M, len(elements) * F].

    An element absent from a frame contributes zeros.
    """
    numbers, features, ptr = np.asarray(numbers), np.asarray(features, dtype=np.float64), np.asarray(ptr)
    n_frames, width = ptr.size - 1, features.shape[1]
    out = np.zeros((n_frames, len(elements), width))
    frame_of_atom = np.repeat(np.arange(n_frames), np.diff(ptr))
    for e, z in enumerate(elements):
        rows = numbers == z
        counts = np.bincount(frame_of_atom[rows], minlength=n_frames)
        sums = np.zeros((n_frames, width))
        np.add.at(sums, frame_of_atom[rows], features[rows])
        out[:, e] = sums / np.maximum(counts, 1)[:, None]
    return out.reshape(n_frames, -1)


def _check_lengths(n: int, **arrays: np.ndarray | None) -> None:
    for name, arr in arrays.items():
        if arr is not None and len(arr) != n:
            raise AlloopError(f"{name} has {len(arr)} entries, expected {n} (one per frame)")


def select_frames(
    scores: np.ndarray,
    descriptors: np.ndarray,
    replica: np.ndarray,
    step: np.ndarray,
    budget: int,
    *,
    unstable: np.ndarray | None = None,
    min_spacing_steps: int = 0,
    limit: float = 1.0,
    fill_to: int = 0,
) -> Selection:
    """Pick up to ``budget`` frames among those with ``scores > limit`` or ``unstable``.

    ``scores`` [M] (NaN counts as not flagged), ``descriptors`` [M, D], ``replica`` and ``step`` [M]
    identify each frame's trajectory and absolute MD step. When fewer than ``fill_to`` frames are
    flagged, the selection is filled up to ``min(fill_to, budget)`` with the highest-scoring frames
    below the limit (same step spacing), so a cycle whose frames all look familiar still labels some.
    """
    scores = np.asarray(scores, dtype=np.float64)
    m = scores.size
    descriptors = np.asarray(descriptors, dtype=np.float64).reshape(m, -1)
    replica, step = np.asarray(replica), np.asarray(step)
    unstable = np.zeros(m, dtype=bool) if unstable is None else np.asarray(unstable, dtype=bool)
    _check_lengths(m, descriptors=descriptors, replica=replica, step=step, unstable=unstable)
    if budget < 0 or min_spacing_steps < 0 or fill_to < 0:
        raise AlloopError(f"budget, min_spacing_steps and fill_to must be >= 0, got {budget}, {min_spacing_steps}, {fill_to}")
    ranked = np.nan_to_num(scores, nan=-np.inf)
    flagged = ranked > limit
    blocked = np.zeros(m, dtype=bool)  # chosen, or within the step spacing of a chosen frame
    chosen: list[int] = []
    reasons: list[str] = []
    nearest = np.full(m, np.inf)  # distance of each frame to the nearest chosen one

    def take(i: int, reason: str) -> None:
        chosen.append(i)
        reasons.append(reason)
        blocked[i] = True
        if min_spacing_steps > 0:
            blocked[(replica == replica[i]) & (np.abs(step - step[i]) < min_spacing_steps)] = True
        np.minimum(nearest, np.linalg.norm(descriptors - descriptors[i], axis=1), out=nearest)

    for i in np.flatnonzero(unstable):
        if len(chosen) < budget and not blocked[i]:
            take(int(i), f"unstable (guard stop), score {scores[i]:.3g}")
    open_ = (flagged | unstable) & ~blocked
    if len(chosen) < budget and not chosen and open_.any():
        i = int(np.argmax(np.where(open_, ranked, -np.inf)))
        take(i, f"score {scores[i]:.3g} > {limit:g} (highest)")
    while len(chosen) < budget and ((flagged | unstable) & ~blocked).any():
        open_ = (flagged | unstable) & ~blocked
        i = int(np.argmax(np.where(open_, nearest, -np.inf)))
        take(i, f"score {scores[i]:.3g} > {limit:g}, farthest point (distance {nearest[i]:.3g})")
    target = min(fill_to, budget)
    while len(chosen) < target and (~blocked & np.isfinite(ranked)).any():
        i = int(np.argmax(np.where(~blocked, ranked, -np.inf)))
        take(i, f"score {scores[i]:.3g} <= {limit:g}, filled (fewer than {fill_to} frames flagged)")
    return Selection(np.array(chosen, dtype=np.int64), reasons)


def farthest_point_sampling(descriptors: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """Plain FPS: ``n`` row indices of ``descriptors`` [M, D], starting from row ``start``."""
    x = np.asarray(descriptors, dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    if not 0 <= start < x.shape[0]:
        raise AlloopError(f"start {start} is not a row of {x.shape[0]} descriptors")
    n = min(n, x.shape[0])
    chosen = [start]
    nearest = np.linalg.norm(x - x[start], axis=1)
    nearest[start] = -np.inf
    while len(chosen) < n:
        i = int(np.argmax(nearest))
        chosen.append(i)
        np.minimum(nearest, np.linalg.norm(x - x[i], axis=1), out=nearest)
        nearest[i] = -np.inf
    return np.array(chosen, dtype=np.int64)


def select_expensive(bias: np.ndarray, budget: int) -> Selection:
    """The top-``budget`` frames by bias B (NaN, e.g. a failed cheap label, is never selected)."""
    bias = np.asarray(bias, dtype=np.float64)
    if budget < 0:
        raise AlloopError(f"budget must be >= 0, got {budget}")
    valid = np.flatnonzero(np.isfinite(bias))
    order = valid[np.argsort(-bias[valid], kind="stable")][:budget]
    reasons = [f"bias B = {bias[i]:.3g} eV/A (rank {k + 1} of {valid.size})" for k, i in enumerate(order)]
    return Selection(order.astype(np.int64), reasons)
