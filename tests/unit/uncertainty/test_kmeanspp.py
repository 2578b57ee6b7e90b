"""``selection.expensive_pick: kmeans++``: k-means++ seeding from the labelled frames, each pick drawn with
probability proportional to its squared distance to the nearest labelled or chosen frame."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.config.exploration import SelectionConfig
from alloop.errors import AlloopError
from alloop.uncertainty.pick_draw import Draw
from alloop.uncertainty.selection import select_expensive


def _draw(seed: int) -> Draw:
    return Draw(1.0, np.random.default_rng(seed))  # the rule uses its stream, not its beta


def test_picks_are_drawn_in_proportion_to_the_squared_distance():
    """Candidates 1, 2 and 3 from the one labelled frame (and a copy of it): over many streams the first pick
    lands on each with probability 1 : 4 : 9 (of 14), never on the copy."""
    x = np.array([[1.0], [2.0], [3.0], [0.0]])
    labelled = np.array([[0.0]])
    counts = np.zeros(4)
    for seed in range(4000):
        chosen = select_expensive(np.ones(4), 1, x, labelled=labelled, rule="kmeans++", draw=_draw(seed))
        counts[chosen.indices[0]] += 1
    assert counts[3] == 0
    np.testing.assert_allclose(counts[:3] / counts.sum(), np.array([1, 4, 9]) / 14, atol=0.025)
    reason = select_expensive(np.ones(4), 1, x, labelled=labelled, rule="kmeans++", draw=_draw(0)).reasons[0]
    assert ", drawn by k-means++ with p = " in reason and "to the nearest labelled or chosen" in reason


def test_a_chosen_frame_is_a_centre_and_the_stream_decides():
    """A tight pair far from the labelled frame and two frames 3 and 4 from it: once one of the pair is chosen, the
    other (0.01 from a centre) is drawn with p ~ 1e-4 / 25, so no two picks are ever the pair."""
    x = np.array([[3.0], [10.0], [10.01], [-4.0]])
    labelled = np.array([[0.0]])
    picks = [select_expensive(np.ones(4), 2, x, labelled=labelled, rule="kmeans++", draw=_draw(s)).indices.tolist()
             for s in range(200)]
    assert all(set(p) != {1, 2} for p in picks)
    assert sum(p[0] in (1, 2) for p in picks) > 150  # p = 200 / 225 for the pair first
    same = select_expensive(np.ones(4), 2, x, labelled=labelled, rule="kmeans++", draw=_draw(7))
    assert same.indices.tolist() == picks[7]  # the same stream, the same picks


def test_frames_without_a_score_are_never_drawn_and_nothing_labelled_means_uniform():
    x = np.array([[0.0], [5.0], [9.0]])
    score = np.array([1.0, np.nan, 1.0])
    picks = {int(select_expensive(score, 1, x, rule="kmeans++", draw=_draw(s)).indices[0]) for s in range(60)}
    assert picks == {0, 2}


def test_the_rule_needs_descriptors_and_a_stream_and_the_config_says_so():
    with pytest.raises(AlloopError, match="the kmeans\\+\\+ rule needs the frames' descriptors"):
        select_expensive(np.ones(3), 1, rule="kmeans++", draw=_draw(0))
    with pytest.raises(AlloopError, match="needs a random stream"):
        select_expensive(np.ones(3), 1, np.zeros((3, 1)), rule="kmeans++")
    assert SelectionConfig(expensive_pick="kmeans++").expensive_pick == "kmeans++"
    with pytest.raises(ValueError, match="kmeans\\+\\+ needs diversity: fps"):
        SelectionConfig(expensive_pick="kmeans++", diversity="none")
    with pytest.raises(ValueError, match="pick_beta draws the picks of a score rule"):
        SelectionConfig(expensive_pick="kmeans++", pick_beta=1.0)
