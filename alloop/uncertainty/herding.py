"""Kernel herding: a representative set of frames, chosen greedily to match a target ensemble (minimum MMD).

Frames are compared by their descriptors (:func:`alloop.uncertainty.selection.frame_descriptors`, the model's mean
latent features per element) standardised column by column with the target's mean and standard deviation
(:func:`standardise`), under the RBF kernel ``k(x, y) = exp(-|x - y|^2 / (2 h^2))`` whose bandwidth ``h`` is the
median pairwise distance of the target's frames (the median heuristic, :func:`median_bandwidth`).

The squared maximum mean discrepancy between a set S and the target P is
``MMD^2 = mean_{s,s'} k(s, s') - 2 mean_{s, p} k(s, p) + mean_{p,p'} k(p, p')``. Herding adds, one at a time, the
candidate that lowers it most. With m frames in S (k(x, x) = 1), adding x lowers MMD^2 the most when it maximises
``mean_p k(x, p) - sum_s k(x, s) / (m + 1)``: close to where the target is dense, far from what S holds already.
The frames labelled already (``labelled``) start in S: the picks fill what the labelled set lacks, they do not
repeat it. A candidate closer than ``epsilon`` to a labelled or picked frame is never picked (a near-duplicate),
``epsilon`` by default :data:`NEAR_DUPLICATE_FRACTION` of the target's typical nearest-neighbour spacing.
Deterministic: ties go to the lower index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from alloop.errors import AlloopError

#: a candidate closer than this x the target's median nearest-neighbour distance to a labelled or picked frame is a
#: near-duplicate and never picked
NEAR_DUPLICATE_FRACTION = 0.5
#: the most frames the median heuristic and the spacing are measured on (an evenly spaced subset beyond it)
MAX_STATISTIC_ROWS = 1000


def representative_quota(exploration: float, cap: int) -> int:
    """How many of a pick of ``cap`` frames herding chooses: ``round((1 - exploration) * cap)``."""
    if not 0.0 <= exploration <= 1.0:
        raise AlloopError(f"exploration must be in [0, 1], got {exploration}")
    return int(round((1.0 - exploration) * cap))


def standardise(target: np.ndarray, *others: np.ndarray | None) -> list[np.ndarray | None]:
    """``target`` [P, D] and each of ``others`` [*, D] (None stays None) centred and scaled per column by the
    target's mean and standard deviation (a constant column keeps scale 1)."""
    x = _rows(target, "target")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-12 * max(1.0, float(scale.max(initial=0.0))), scale, 1.0)
    out: list[np.ndarray | None] = [(x - mean) / scale]
    for o in others:
        if o is None:
            out.append(None)
            continue
        y = _rows(o, "descriptors")
        if y.shape[1] != x.shape[1]:
            raise AlloopError(f"descriptors have width {y.shape[1]}, the target's {x.shape[1]}")
        out.append((y - mean) / scale)
    return out


def squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|x_i - y_j|^2 [len(x), len(y)] (never negative)."""
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d2, 0.0)


def _subset(x: np.ndarray) -> np.ndarray:
    """At most :data:`MAX_STATISTIC_ROWS` evenly spaced rows of ``x``."""
    if len(x) <= MAX_STATISTIC_ROWS:
        return x
    return x[np.linspace(0, len(x) - 1, MAX_STATISTIC_ROWS).astype(np.int64)]


def median_bandwidth(x: np.ndarray) -> float:
    """The median pairwise distance between distinct rows of ``x`` [P, D] (1 when all rows coincide)."""
    x = _subset(_rows(x, "target"))
    if len(x) < 2:
        return 1.0
    d2 = squared_distances(x, x)[np.triu_indices(len(x), k=1)]
    h = float(np.sqrt(np.median(d2)))
    return h if h > 0 else 1.0


def nearest_spacing(x: np.ndarray) -> float:
    """The median distance of each row of ``x`` [P, D] to its nearest other row (0 for fewer than 2 rows)."""
    x = _subset(_rows(x, "target"))
    if len(x) < 2:
        return 0.0
    d2 = squared_distances(x, x)
    np.fill_diagonal(d2, np.inf)
    return float(np.sqrt(np.median(d2.min(axis=1))))


def rbf(x: np.ndarray, y: np.ndarray, bandwidth: float) -> np.ndarray:
    """The RBF kernel matrix exp(-|x_i - y_j|^2 / (2 h^2))."""
    return np.exp(-squared_distances(x, y) / (2.0 * bandwidth * bandwidth))


def squared_mmd(sample: np.ndarray, target: np.ndarray, bandwidth: float) -> float:
    """The squared maximum mean discrepancy between the rows of ``sample`` and of ``target`` under the RBF kernel
    (the biased V-statistic: every pair, the diagonals included)."""
    s, t = _rows(sample, "sample"), _rows(target, "target")
    value = rbf(s, s, bandwidth).mean() - 2.0 * rbf(s, t, bandwidth).mean() + rbf(t, t, bandwidth).mean()
    return float(max(value, 0.0))


def information_density(candidates: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each candidate's density in the target ensemble (information density, Settles & Craven 2008): its mean RBF
    similarity to the target's frames (descriptors standardised by the target, median-heuristic bandwidth), divided
    by the largest among the candidates: 1 at the densest candidate, near 0 far from every target frame."""
    t, c = standardise(target, candidates)
    assert t is not None and c is not None
    density = rbf(c, t, median_bandwidth(t)).mean(axis=1)
    top = float(density.max(initial=0.0))
    return density / top if top > 0 else np.ones(len(c))


@dataclass(frozen=True)
class Herding:
    """The picked rows of the candidates (in order of choice), and the kernel's bandwidth and near-duplicate radius
    (standardised descriptor units)."""

    indices: np.ndarray
    bandwidth: float
    epsilon: float

    def reasons(self, target_name: str) -> list[str]:
        return [f"representative (kernel herding towards {target_name}, pick {k + 1} of {self.indices.size})"
                for k in range(self.indices.size)]


def kernel_herding(target: np.ndarray, n: int, *, candidates: np.ndarray | None = None,
                   labelled: np.ndarray | None = None, allowed: np.ndarray | None = None,
                   epsilon: float | None = None, blocks: Callable[[int], np.ndarray] | None = None) -> Herding:
    """Up to ``n`` rows of ``candidates`` [M, D] (default: the ``target`` [P, D] itself) that bring the picked set,
    with the ``labelled`` frames [K, D] in it from the start, closest in MMD to ``target``.

    Every array holds raw descriptors: they are standardised here by the target's statistics. ``allowed`` [M]
    (bool) marks the candidates that may be picked. ``epsilon`` (standardised units; default
    :data:`NEAR_DUPLICATE_FRACTION` x the target's median nearest-neighbour distance): no pick lies within it of a
    labelled or an earlier pick. ``blocks(i)``: a mask [M] of the candidates a pick of ``i`` rules out besides
    (e.g. the frames of its trajectory a few steps away). Fewer than ``n`` picks when the allowed candidates run out.
    """
    if n < 0:
        raise AlloopError(f"n must be >= 0, got {n}")
    if labelled is not None and len(labelled) == 0:
        labelled = None
    t, c, lab = standardise(target, target if candidates is None else candidates, labelled)
    assert t is not None and c is not None
    open_ = np.ones(len(c), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool).copy()
    if open_.shape != (len(c),):
        raise AlloopError(f"allowed has {open_.size} entries, expected {len(c)} (one per candidate)")
    h = median_bandwidth(t)
    eps = NEAR_DUPLICATE_FRACTION * nearest_spacing(t) if epsilon is None else float(epsilon)
    attraction = rbf(c, t, h).mean(axis=1)  # mean_p k(x, p)
    repulsion = np.zeros(len(c))  # sum over S of k(x, s)
    m = 0
    if lab is not None:
        repulsion += rbf(c, lab, h).sum(axis=1)
        m = len(lab)
        open_ &= np.sqrt(squared_distances(c, lab).min(axis=1)) >= eps
    chosen: list[int] = []
    while len(chosen) < n and open_.any():
        gain = np.where(open_, attraction - repulsion / (m + 1), -np.inf)
        i = int(np.argmax(gain))
        chosen.append(i)
        m += 1
        to_pick = squared_distances(c, c[i:i + 1])[:, 0]
        repulsion += np.exp(-to_pick / (2.0 * h * h))
        open_[i] = False
        open_ &= np.sqrt(to_pick) >= eps
        if blocks is not None:
            open_ &= ~np.asarray(blocks(i), dtype=bool)
    return Herding(np.array(chosen, dtype=np.int64), h, eps)


def _rows(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or len(a) == 0:
        raise AlloopError(f"{name} must be a non-empty [rows, D] array, got shape {a.shape}")
    return a
