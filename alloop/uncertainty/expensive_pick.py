"""The expensive pick: of a cycle's cheap-labelled frames, which may get an expensive label, what they are ranked by
and the pick itself (``selection.expensive_pick``, ``selection.diversity``); the cheap pick is
:func:`alloop.uncertainty.selection.select_frames`, both picks' geometry (bias-weighted farthest point, coverage)
:func:`alloop.uncertainty.selection.select_expensive`.

The score is the committee's force deviation (``committee``), else the model's own predicted force error
(``predicted-error``: a method without a stage-1 model theta_0, where ASTEROID's B would measure the cheap level's
error), else ASTEROID's bias B. Frames whose cheap label failed (NaN B) and frames outside the thermal energy window
are never chosen. The campaign's select phase (:mod:`alloop.campaign.phases.select_expensive`) computes the arrays
on a worker and records what this module picks.
"""

from __future__ import annotations

import numpy as np

from alloop.uncertainty.pick_draw import Draw
from alloop.uncertainty.selection import GEOMETRY_RULES, Selection, select_expensive

#: the scores' names in the selection's reasons
SCORE_NAMES = {"B": "bias B", "committee force deviation": "committee deviation"}
#: the rules' names in the selection's log line
RULE_NAMES = {"bias": "bias-weighted farthest point", "coverage": "farthest point (coverage)",
              "lcmd": "largest cluster maximum distance (LCMD)", "kmeans++": "k-means++ (drawn ~ distance^2)",
              "committee": "committee deviation x distance", "predicted-error": "predicted error x distance"}


def candidate_rows(frame_id: np.ndarray, ok: np.ndarray, selected: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Rows of the cheap label table that may get an expensive label (selected, labelled ok, not expensive-labelled
    yet), in frame-id order: the table holds labels in the order they finished, which varies from run to run, and
    the pick breaks its ties by the candidates' order."""
    rows = np.flatnonzero(np.isin(frame_id, selected) & ok)
    rows = rows[~np.isin(frame_id[rows], labelled)]
    return rows[np.argsort(frame_id[rows], kind="stable")]


def pick_rule(expensive_pick: str, deviation: np.ndarray | None) -> str:
    """The rule that picks: ``selection.expensive_pick``, but ``bias`` for ``committee`` when there is no committee
    yet (a campaign from a checkpoint, before its first training: B decides)."""
    return "bias" if expensive_pick == "committee" and deviation is None else expensive_pick


def pick_score(bias: np.ndarray, predicted: np.ndarray | None = None, deviation: np.ndarray | None = None,
               inside: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """What the pick ranks by (eV/A per frame, NaN: never chosen) and its name: the committee's ``deviation``, else
    the model's ``predicted`` force error, else ASTEROID's ``bias`` B. Frames whose cheap label failed keep B's NaN;
    frames outside the thermal energy window (``inside`` False) become NaN."""
    if deviation is not None:
        score, what = np.asarray(deviation, dtype=np.float64), "committee force deviation"
    elif predicted is not None:
        score, what = np.where(np.isfinite(bias), predicted, np.nan), "predicted force error"
    else:
        score, what = np.asarray(bias, dtype=np.float64), "B"
    if inside is not None:
        score = np.where(inside, score, np.nan)
    return score, what


def pick_expensive(score: np.ndarray, what: str, rule: str, budget: int, descriptors: np.ndarray | None,
                   labelled: np.ndarray | None, preselected: Selection | None = None,
                   draw: Draw | None = None) -> tuple[Selection, str]:
    """Up to ``budget`` frames by ``score`` (named ``what``) under ``rule`` (:func:`pick_rule`): spread by
    ``descriptors`` when given (``selection.diversity: fps``), from the ``labelled`` frames' descriptors with
    ``coverage``, after the ``preselected`` frames of kernel herding, drawn at random by ``draw``
    (``selection.pick_beta``; never with ``coverage`` and ``lcmd``, which draw nothing; ``kmeans++`` draws with its
    random stream); and the pick's name for the log."""
    draw = None if rule in GEOMETRY_RULES and rule != "kmeans++" else draw
    chosen = select_expensive(score, budget, descriptors, labelled=labelled,
                              rule=rule if rule in GEOMETRY_RULES else "bias",
                              score_name=SCORE_NAMES.get(what, what), preselected=preselected, draw=draw)
    name = RULE_NAMES[rule] if descriptors is not None else f"top {what}"
    if draw is not None and rule != "kmeans++":
        name = (f"drawn with p ~ ({RULE_NAMES[rule]})^{draw.beta:g}" if descriptors is not None
                else f"drawn with p ~ {what}^{draw.beta:g}")
    if labelled is not None:
        name += f" from {len(labelled)} labelled frames"
    if preselected is not None:
        name = f"{len(preselected)} by kernel herding, the rest by {name}"
    return chosen, name
