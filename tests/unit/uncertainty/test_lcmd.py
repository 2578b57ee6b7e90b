"""``selection.expensive_pick: lcmd``: largest cluster maximum distance, the labelled frames as the first centres."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.config.exploration import SelectionConfig
from alloop.errors import AlloopError
from alloop.uncertainty.lcmd import lcmd_picks
from alloop.uncertainty.selection import select_expensive


def _two_centres() -> tuple[np.ndarray, np.ndarray]:
    """Labelled frames at (0, 0) and (10, 0); candidates: 20 in a ring of radius 2 around the first, one outlier
    5 from the second."""
    angles = np.linspace(0.0, 2.0 * np.pi, 20, endpoint=False)
    ring = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.array([[0.0, 0.0], [10.0, 0.0]]), np.concatenate([ring, [[10.0, 5.0]]])


def test_the_largest_cluster_outweighs_the_farthest_outlier():
    labelled, x = _two_centres()
    score = np.ones(len(x))
    coverage = select_expensive(score, 1, x, labelled=labelled, rule="coverage")
    assert coverage.indices.tolist() == [20]  # the farthest frame: the outlier
    lcmd = select_expensive(score, 1, x, labelled=labelled, rule="lcmd", score_name="predicted")
    assert lcmd.indices[0] < 20  # the ring around the first labelled frame: 20 x 2^2 = 80 against 5^2 = 25
    assert "LCMD: the farthest (2) in the largest cluster (sum of squared distances 80), around a labelled frame" \
        in lcmd.reasons[0]
    # the ring is split by its first pick: the pick then follows the clusters' sizes, and reaches the outlier once
    # the ring's clusters are smaller than 25
    picks = lcmd_picks(x, score, labelled, [], 21)
    assert sorted(p.index for p in picks) == list(range(21))
    order = [p.index for p in picks]
    sizes = [p.cluster_size for p in picks]
    assert order.index(20) > 0 and all(s >= 25.0 - 1e-9 for s in sizes[:order.index(20)])


def test_never_a_frame_without_a_score_nor_one_chosen_before():
    labelled, x = _two_centres()
    score = np.ones(len(x))
    score[[0, 5]] = np.nan
    picks = lcmd_picks(x, score, labelled, [3], 25)
    assert {p.index for p in picks} == set(range(21)) - {0, 5, 3}
    assert len(picks) == 18


def test_without_labels_the_highest_score_goes_first_and_ties_go_to_the_higher_score():
    x = np.array([[0.0], [1.0], [2.0], [-2.0]])
    picks = lcmd_picks(x, np.array([0.1, 0.5, 0.2, 0.3]), None, [], 2)
    assert picks[0].index == 1 and "first centre" in select_expensive(
        np.array([0.1, 0.5, 0.2, 0.3]), 1, x, rule="lcmd").reasons[0]
    assert picks[1].index == 3  # -2 is 3 from the centre at 1, 2 only 1: the farthest of the one cluster
    tied = lcmd_picks(np.array([[1.0], [-1.0]]), np.array([0.2, 0.7]), np.array([[0.0]]), [], 1)
    assert tied[0].index == 1  # equally far: the higher score


def test_the_rule_needs_descriptors_and_draws_nothing():
    with pytest.raises(AlloopError, match="the lcmd rule needs the frames' descriptors"):
        select_expensive(np.ones(3), 1, None, rule="lcmd")
    with pytest.raises(ValueError, match="expensive_pick: lcmd needs diversity: fps"):
        SelectionConfig(expensive_pick="lcmd", diversity="none")
    with pytest.raises(ValueError, match="expensive_pick: lcmd takes the farthest frame"):
        SelectionConfig(expensive_pick="lcmd", pick_beta=1.0)
    with pytest.raises(ValueError, match="expensive_pick: lcmd has none"):
        SelectionConfig(expensive_pick="lcmd", density_weight=1.0)
