"""LCMD, largest cluster maximum distance (Holzmueller et al., JMLR 24, 2023): a batch pick by geometry alone.

The frames already labelled (and those chosen earlier in the batch) are cluster centres; every candidate belongs to
its nearest centre. Each pick takes the cluster whose members' squared distances to their centre sum to the most
(the largest cluster, in that sense), and in it the member farthest from the centre; that frame becomes a centre
and the clusters are re-assigned. Unlike farthest-point coverage (the single farthest frame), a dense region
far from the labels outweighs one outlier: the pick follows where the candidates are *and* what the labels lack.
The candidates' descriptors here are the model's mean latent features per element
(:func:`alloop.uncertainty.selection.frame_descriptors`), which for a linear readout span its last-layer gradient
features (the energy's gradient with respect to the readout's weights is the sum of the atoms' readout inputs).
A score marks only which frames may be chosen (finite); ties go to the higher score, then the lower index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LcmdPick:
    """One pick: the candidate's index, its distance to its cluster's centre, the cluster's size (sum of squared
    distances) and whether that centre was a labelled frame (else a frame chosen earlier)."""

    index: int
    distance: float
    cluster_size: float
    labelled_centre: bool


def lcmd_picks(x: np.ndarray, score: np.ndarray, labelled: np.ndarray | None, chosen: list[int],
               n: int) -> list[LcmdPick]:
    """Up to ``n`` LCMD picks among the rows of ``x`` [M, D] with a finite ``score``, not in ``chosen``; the rows of
    ``labelled`` [K, D] and ``chosen`` are the first centres. Without any centre the highest score goes first."""
    x = np.asarray(x, dtype=np.float64).reshape(len(score), -1)
    score = np.asarray(score, dtype=np.float64)
    open_ = np.isfinite(score)
    open_[chosen] = False
    tiebreak = np.nan_to_num(score, nan=-np.inf)
    centres = [] if labelled is None else list(np.asarray(labelled, dtype=np.float64).reshape(len(labelled), -1))
    n_labelled = len(centres)
    centres += [x[i] for i in chosen]
    picks: list[LcmdPick] = []
    if not centres and open_.any() and n > 0:
        first = int(np.argmax(np.where(open_, tiebreak, -np.inf)))
        picks.append(LcmdPick(first, float("inf"), float("inf"), False))
        open_[first] = False
        centres.append(x[first])
    if not centres:
        return picks
    d2 = ((x[:, None, :] - np.asarray(centres)[None, :, :]) ** 2).sum(-1)
    owner, nearest = d2.argmin(axis=1), d2.min(axis=1)
    n_centres = len(centres)
    while len(picks) < n and open_.any():
        sizes = np.bincount(owner[open_], weights=nearest[open_], minlength=n_centres)
        cluster = int(np.argmax(sizes))
        members = open_ & (owner == cluster)
        if sizes[cluster] <= 0:  # only copies of centres are left: the highest score
            members = open_
        far = np.where(members, nearest, -np.inf)
        tied = members & (far == far.max())
        i = int(np.argmax(np.where(tied, tiebreak, -np.inf)))
        picks.append(LcmdPick(i, float(np.sqrt(nearest[i])), float(sizes[cluster]), cluster < n_labelled))
        open_[i] = False
        new = ((x - x[i]) ** 2).sum(-1)
        closer = new < nearest
        owner[closer], nearest[closer] = n_centres, new[closer]
        n_centres += 1
    return picks


def lcmd_reason(pick: LcmdPick, scored: str) -> str:
    """The selection reason of ``pick`` after ``scored`` (the frame's score and rank)."""
    if not np.isfinite(pick.distance):
        return f"{scored}; LCMD: the first centre (nothing labelled yet)"
    centre = "a labelled frame" if pick.labelled_centre else "a frame chosen this cycle"
    return (f"{scored}; LCMD: the farthest ({pick.distance:.3g}) in the largest cluster (sum of squared distances "
            f"{pick.cluster_size:.3g}), around {centre}")
