"""Which frames to label: flagged and unstable frames, within budget, spread out in time and feature space.

Cheap fidelity (:func:`select_frames`): candidates are frames whose score
exceeds the limit (score > 1, the normalisation of qresidual.FrameScores)
plus frames flagged unstable by the MD guards. Unstable frames come first
(they mark where the model fails), then the highest-scoring flagged frame,
then farthest-point sampling (FPS) on frame descriptors: each next pick is the
candidate farthest (Euclidean) from everything already picked. A pick removes
the candidates of the same replica less than ``min_spacing_steps`` steps
away, so no run of consecutive frames is labelled. When fewer frames are
flagged than ``fill_to``, the fill-up continues the same farthest-point
sampling over the frames below the limit (the candidate farthest from
everything chosen; among equally far ones, e.g. all of them when nothing was
flagged, the highest score), so the fill-up spreads over trajectories and
feature space instead of taking the consecutive frames of one trajectory
where Q peaks. Deterministic: ties go to the lower index (no random start is
needed, the highest score is the seed).

Expensive fidelity (:func:`select_expensive`): among cheap-labelled frames,
bias-weighted farthest-point sampling in the same descriptor space: first the
highest bias B, then each next pick maximises ``B_i x d_i`` with ``d_i`` the
distance to the nearest frame already chosen. Without descriptors: the
top-``budget`` by B.

With ``labelled`` descriptors (frames that already carry an expensive label)
the distances start from them: a candidate next to a labelled frame counts
as close. The ``coverage`` rule ignores B and takes, each time, the candidate
farthest from every labelled and chosen frame (greedy max-min coverage of
feature space). It is the rule for a model whose B carries no information:
on a GFN-xTB baseline B against HF/STO-3G measures HF/STO-3G's own error.

``selection.diversity: none`` in a campaign keeps the plain rules: the
flagged picks spread in score only, the fill-up by score, the expensive pick
top-B.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from alloop.errors import AlloopError
from alloop.uncertainty.lcmd import lcmd_picks, lcmd_reason
from alloop.uncertainty.pick_draw import Draw


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


#: a candidate closer to a labelled frame than this x the labelled frames' median nearest-neighbour distance is a
#: near-duplicate and never chosen by :func:`select_frames`
DUPLICATE_FRACTION = 0.05


def typical_spacing(descriptors: np.ndarray | None) -> float:
    """The median distance of each row of ``descriptors`` [K, D] to its nearest other row (0 for fewer than 2)."""
    if descriptors is None or len(descriptors) < 2:
        return 0.0
    x = np.asarray(descriptors, dtype=np.float64).reshape(len(descriptors), -1)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


class _Picks:
    """The frames chosen so far (in order, a reason each), the frames blocked (chosen, or less than
    ``min_spacing_steps`` steps from a chosen frame of the same replica) and each frame's distance to the nearest
    chosen one in descriptor space."""

    def __init__(self, descriptors: np.ndarray, replica: np.ndarray, step: np.ndarray, min_spacing_steps: int,
                 labelled: np.ndarray | None = None, duplicate_fraction: float = 0.0) -> None:
        self.descriptors, self.replica, self.step, self.min_spacing_steps = descriptors, replica, step, min_spacing_steps
        self.chosen: list[int] = []
        self.reasons: list[str] = []
        self.nearest = _distance_to(descriptors, labelled)  # inf without labelled frames
        self.memory = labelled is not None and len(labelled) > 0
        #: near-duplicates of a labelled frame are never chosen (closer than a fraction of the labelled spacing)
        self.epsilon = duplicate_fraction * typical_spacing(labelled) if self.memory else 0.0
        self.blocked = self.nearest < self.epsilon

    def __len__(self) -> int:
        return len(self.chosen)

    def take(self, i: int, reason: str) -> None:
        self.chosen.append(i)
        self.reasons.append(reason)
        self.blocked[i] = True
        if self.min_spacing_steps > 0:
            same_run = self.replica == self.replica[i]
            self.blocked[same_run & (np.abs(self.step - self.step[i]) < self.min_spacing_steps)] = True
        distance = np.linalg.norm(self.descriptors - self.descriptors[i], axis=1)
        np.minimum(self.nearest, distance, out=self.nearest)

    def selection(self) -> Selection:
        return Selection(np.array(self.chosen, dtype=np.int64), self.reasons)


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
    diverse_fill: bool = True,
    labelled: np.ndarray | None = None,
    duplicate_fraction: float = DUPLICATE_FRACTION,
    preselected: Selection | None = None,
) -> Selection:
    """Pick up to ``budget`` frames among those with ``scores > limit`` or ``unstable``.

    ``labelled`` [K, D]: the descriptors of the frames labelled already (the batch rule's memory): distances then
    start from them, the flagged picks maximise score x distance to the nearest labelled or chosen frame (the
    first one too) and the fill-up the distance alone, and a candidate closer to a labelled frame than
    ``duplicate_fraction`` x the labelled frames' median nearest-neighbour distance is never chosen.

    ``scores`` [M] (NaN counts as not flagged), ``descriptors`` [M, D], ``replica`` and ``step`` [M]
    identify each frame's trajectory and absolute MD step. When fewer than ``fill_to`` frames are
    flagged, the selection is filled up to ``min(fill_to, budget)`` with frames below the limit (same
    step spacing), so a cycle whose frames all look familiar still labels some: by farthest point
    (ties by score, module docstring), or with ``diverse_fill`` off by score alone.

    ``preselected``: frames chosen before the rules run (the representative quota of kernel herding); they come
    first, count against ``budget`` and ``fill_to``, and the rules' distances and step spacing count them.
    """
    scores = np.asarray(scores, dtype=np.float64)
    m = scores.size
    descriptors = np.asarray(descriptors, dtype=np.float64).reshape(m, -1)
    replica, step = np.asarray(replica), np.asarray(step)
    unstable = np.zeros(m, dtype=bool) if unstable is None else np.asarray(unstable, dtype=bool)
    _check_lengths(m, descriptors=descriptors, replica=replica, step=step, unstable=unstable)
    if budget < 0 or min_spacing_steps < 0 or fill_to < 0:
        raise AlloopError(f"budget, min_spacing_steps and fill_to must be >= 0, "
                          f"got {budget}, {min_spacing_steps}, {fill_to}")
    ranked = np.nan_to_num(scores, nan=-np.inf)
    picks = _Picks(descriptors, replica, step, min_spacing_steps, labelled, duplicate_fraction)
    for i, reason in _preselected(preselected, m, budget):
        picks.take(i, reason)
    _pick_flagged(picks, scores, ranked, ranked > limit, unstable, budget, limit)
    _fill_up(picks, scores, ranked, min(fill_to, budget), limit, fill_to, diverse_fill)
    return picks.selection()


def _pick_flagged(picks: _Picks, scores: np.ndarray, ranked: np.ndarray, flagged: np.ndarray, unstable: np.ndarray,
                  budget: int, limit: float) -> None:
    """Up to ``budget`` picks among the flagged and unstable frames: the unstable ones first, then (when none was
    taken) the highest-scoring one, then each time the one farthest from everything chosen."""
    nearest = picks.nearest
    for j in np.flatnonzero(unstable):
        if len(picks) < budget and not picks.blocked[j]:
            picks.take(int(j), f"unstable (guard stop), score {scores[j]:.3g}")
    open_ = (flagged | unstable) & ~picks.blocked
    if len(picks) < budget and not picks.chosen and not picks.memory and open_.any():
        i = int(np.argmax(np.where(open_, ranked, -np.inf)))
        picks.take(i, f"score {scores[i]:.3g} > {limit:g} (highest)")
    while len(picks) < budget and ((flagged | unstable) & ~picks.blocked).any():
        open_ = (flagged | unstable) & ~picks.blocked
        if picks.memory:  # score x distance to everything labelled or chosen
            i = _biased_farthest(open_, np.where(np.isfinite(scores), scores, 1.0), nearest)
            picks.take(i, f"score {scores[i]:.3g} > {limit:g}, score x distance (distance {nearest[i]:.3g} to the "
                          "nearest labelled or chosen)")
            continue
        i = int(np.argmax(np.where(open_, nearest, -np.inf)))
        picks.take(i, f"score {scores[i]:.3g} > {limit:g}, farthest point (distance {nearest[i]:.3g})")


def _fill_up(picks: _Picks, scores: np.ndarray, ranked: np.ndarray, target: int, limit: float, fill_to: int,
             diverse_fill: bool) -> None:
    """Picks among the frames below the limit until ``target`` frames are chosen: each time the one farthest from
    everything chosen, ties by score (with ``diverse_fill`` off, by score alone)."""
    nearest = picks.nearest
    while len(picks) < target and (~picks.blocked & np.isfinite(ranked)).any():
        open_ = ~picks.blocked & np.isfinite(ranked)
        i = _farthest_then_highest(open_, nearest if diverse_fill else np.zeros(ranked.size), ranked)
        spread = f", farthest point (distance {nearest[i]:.3g})" if diverse_fill and picks.chosen else ""
        picks.take(i, f"score {scores[i]:.3g} <= {limit:g}, filled (fewer than {fill_to} frames flagged){spread}")


def _farthest_then_highest(open_: np.ndarray, nearest: np.ndarray, ranked: np.ndarray) -> int:
    """The open frame farthest from the chosen ones; among equally far ones (all, when none is chosen; duplicates
    of a chosen frame, at distance 0) the highest score, then the lowest index."""
    far = np.where(open_, nearest, -np.inf)
    ties = open_ & (far == far.max())
    return int(np.argmax(np.where(ties, ranked, -np.inf)))


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


EXPENSIVE_RULES = ("bias", "coverage", "lcmd", "kmeans++")
#: the rules that pick by the descriptors' geometry alone (a score only marks which frames may be chosen)
GEOMETRY_RULES = ("coverage", "lcmd", "kmeans++")
#: k-means++ draws each pick with probability proportional to this power of its distance to the nearest centre
KMEANSPP_POWER = 2.0


def select_expensive(bias: np.ndarray, budget: int, descriptors: np.ndarray | None = None, *,
                     labelled: np.ndarray | None = None, rule: str = "bias", score_name: str = "bias B",
                     preselected: Selection | None = None, draw: Draw | None = None) -> Selection:
    """Up to ``budget`` frames by bias B (NaN, e.g. a failed cheap label or a frame outside the energy window, is
    never selected).

    Without ``descriptors``: the top-``budget`` by B. With ``descriptors`` [M, D] (the frames'
    :func:`frame_descriptors`): bias-weighted farthest-point sampling, first the highest B, then
    each next pick the frame maximising ``B_i x d_i``, ``d_i`` its distance to the nearest chosen
    frame; once every product is 0 (only copies of chosen frames left), the highest B. Why a
    product: it needs no scale between B (eV/A) and descriptor units (rescaling either leaves the
    ranking unchanged) and no threshold (an FPS among the frames above a B quantile would need one,
    and ignore B inside it); a frame close to a chosen one is only taken when its B makes up for
    it, so a cluster of similar high-B frames (consecutive frames of one trajectory) gives one
    label, not all of them. Deterministic: ties go to the lower index.

    ``labelled`` [K, D]: descriptors of frames already labelled at the expensive fidelity; ``d_i``
    then starts as the distance to the nearest of them (the first pick too). ``rule="coverage"``
    (needs ``descriptors``) maximises ``d_i`` alone: greedy max-min coverage, B only marks which
    frames may be chosen (finite B); among equally far frames, the highest B. ``bias`` may be any per-frame
    score in eV/A (a committee's force deviation); ``score_name`` names it in the reasons.

    ``rule="lcmd"`` (needs ``descriptors``): largest cluster maximum distance (:mod:`alloop.uncertainty.lcmd`), the
    labelled and chosen frames the clusters' centres; B only marks which frames may be chosen. ``rule="kmeans++"``
    (needs ``descriptors`` and ``draw``, whose random stream it uses; its beta is :data:`KMEANSPP_POWER`): k-means++
    seeding conditioned on the labelled frames, each pick drawn with probability proportional to the squared
    distance to the nearest labelled or chosen frame (uniformly while there is none); B only marks which frames
    may be chosen.

    ``preselected``: frames chosen before the rule runs (the representative quota of kernel herding): they come
    first, count against ``budget``, and the rule's distances start from them too. ``draw``: each pick drawn with
    probability proportional to (B x d)^beta (B^beta without descriptors or before any distance) instead of the
    arg-max (:class:`Draw`; not with ``coverage``).
    """
    bias = np.asarray(bias, dtype=np.float64)
    _check_expensive_rule(budget, rule, descriptors is not None, draw is not None)
    valid = np.flatnonzero(np.isfinite(bias))
    ranked = valid[np.argsort(-bias[valid], kind="stable")]
    rank = {int(i): k + 1 for k, i in enumerate(ranked)}
    first = _preselected(preselected, bias.size, budget)
    chosen: list[int] = [i for i, _ in first]
    reasons = [r for _, r in first]

    def scored(i: int) -> str:
        return f"{score_name} = {bias[i]:.3g} eV/A (rank {rank[i]} of {valid.size})"

    if descriptors is None:
        picks: list[tuple[int, float | None]] = (
            list(draw.sequence(bias, budget - len(chosen), chosen)) if draw is not None
            else [(int(i), None) for i in ranked[~np.isin(ranked, chosen)][:budget - len(chosen)]])
        for i, p in picks:
            chosen.append(i)
            reasons.append(scored(i) + ("" if p is None else f", drawn with p = {p:.2g}"))
        return Selection(np.array(chosen, dtype=np.int64), reasons)
    _described_pick(np.asarray(descriptors, dtype=np.float64), bias, labelled, chosen, reasons, budget, rule, draw,
                    scored)
    return Selection(np.array(chosen, dtype=np.int64), reasons)


def _described_pick(x: np.ndarray, bias: np.ndarray, labelled: np.ndarray | None, chosen: list[int],
                    reasons: list[str], budget: int, rule: str, draw: Draw | None,
                    scored: Callable[[int], str]) -> None:
    """:func:`select_expensive` with descriptors ``x``: its picks appended to ``chosen`` and ``reasons``."""
    _check_lengths(bias.size, descriptors=x)
    x = x.reshape(bias.size, -1)
    if rule == "lcmd":
        for pick in lcmd_picks(x, bias, labelled, chosen, budget - len(chosen)):
            chosen.append(pick.index)
            reasons.append(lcmd_reason(pick, scored(pick.index)))
        return
    nearest = _distance_to(x, labelled)
    for i in chosen:
        np.minimum(nearest, np.linalg.norm(x - x[i], axis=1), out=nearest)

    def reason(i: int) -> str:
        spread = f", distance {nearest[i]:.3g} to the nearest labelled or chosen" if np.isfinite(nearest[i]) else ""
        return scored(i) + spread

    _spread_pick(x, bias, nearest, chosen, reasons, budget, rule, labelled is not None, reason, draw)


def _check_expensive_rule(budget: int, rule: str, described: bool, drawn: bool) -> None:
    if budget < 0:
        raise AlloopError(f"budget must be >= 0, got {budget}")
    if rule not in EXPENSIVE_RULES:
        raise AlloopError(f"unknown expensive rule {rule!r}: expected one of {', '.join(EXPENSIVE_RULES)}")
    if rule in GEOMETRY_RULES and not described:
        raise AlloopError(f"the {rule} rule needs the frames' descriptors")
    if rule == "kmeans++" and not drawn:
        raise AlloopError("the kmeans++ rule draws its picks: it needs a random stream (draw)")
    if rule in GEOMETRY_RULES and rule != "kmeans++" and drawn:
        raise AlloopError(f"the {rule} rule takes the farthest frame; it draws nothing (pick_beta)")


def _spread_pick(x: np.ndarray, bias: np.ndarray, nearest: np.ndarray, chosen: list[int], reasons: list[str],
                 budget: int, rule: str, memory: bool, reason: Callable[[int], str], draw: Draw | None = None) -> None:
    """:func:`select_expensive`'s picks in descriptor space, appended to ``chosen`` and ``reasons`` (``nearest``:
    each frame's distance to the nearest labelled or chosen frame, kept up to date)."""
    open_ = np.isfinite(bias)
    open_[chosen] = False
    while len(chosen) < budget and open_.any():
        drawn = ""
        if rule == "coverage":
            i = _farthest_then_highest(open_, nearest, np.nan_to_num(bias, nan=-np.inf))
        elif rule == "kmeans++":
            assert draw is not None  # _check_expensive_rule
            i, p = Draw(KMEANSPP_POWER, draw.rng).pick(nearest, open_)
            drawn = f", drawn by k-means++ with p = {p:.2g}"
        elif draw is not None:
            positive = np.maximum(np.nan_to_num(bias), 0.0)
            i, p = draw.pick(nearest * positive if chosen or memory else positive, open_)
            drawn = f", drawn with p = {p:.2g}"
        elif chosen or memory:
            i = _biased_farthest(open_, bias, nearest)
        else:
            i = int(np.argmax(np.where(open_, bias, -np.inf)))
        reasons.append(reason(i) + drawn)
        chosen.append(i)
        open_[i] = False
        np.minimum(nearest, np.linalg.norm(x - x[i], axis=1), out=nearest)


def _preselected(preselected: Selection | None, m: int, budget: int) -> list[tuple[int, str]]:
    """The (index, reason) pairs of ``preselected`` (at most ``budget``), checked against ``m`` candidates."""
    if preselected is None or len(preselected) == 0:
        return []
    idx = np.asarray(preselected.indices, dtype=np.int64)
    if idx.min() < 0 or idx.max() >= m or np.unique(idx).size != idx.size:
        raise AlloopError(f"preselected frames must be distinct indices below {m}, got {idx.tolist()}")
    return [(int(i), r) for i, r in zip(idx[:budget], preselected.reasons[:budget], strict=True)]


def _distance_to(x: np.ndarray, labelled: np.ndarray | None) -> np.ndarray:
    """Distance of each row of ``x`` [M, D] to the nearest row of ``labelled`` [K, D] (inf without any)."""
    if labelled is None or len(labelled) == 0:
        return np.full(x.shape[0], np.inf)
    ref = np.asarray(labelled, dtype=np.float64).reshape(len(labelled), -1)
    if ref.shape[1] != x.shape[1]:
        raise AlloopError(f"labelled descriptors have width {ref.shape[1]}, the candidates' {x.shape[1]}")
    return np.sqrt(((x[:, None, :] - ref[None, :, :]) ** 2).sum(-1)).min(axis=1)


def _biased_farthest(open_: np.ndarray, bias: np.ndarray, nearest: np.ndarray) -> int:
    """The open frame with the largest B x distance to the nearest chosen frame; the highest B when all are 0."""
    gain = np.where(open_, nearest * np.maximum(np.nan_to_num(bias), 0.0), -np.inf)
    if gain.max() > 0:
        return int(np.argmax(gain))
    return int(np.argmax(np.where(open_, bias, -np.inf)))
