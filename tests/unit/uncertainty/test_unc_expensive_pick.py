"""The expensive pick (alloop.uncertainty.expensive_pick): candidates independent of the order in which the cheap
labels finished, the score it ranks by, the committee's fallback to B, and the pick's name."""

from __future__ import annotations

import numpy as np

from alloop.uncertainty.expensive_pick import candidate_rows, pick_expensive, pick_rule, pick_score
from alloop.uncertainty.selection import Selection


def test_candidates_come_in_frame_id_order_whatever_the_table_order():
    frame_id = np.array([12, 3, 40, 7, 25, 9])  # the order the labels finished
    ok = np.array([True, True, True, False, True, True])
    rows = candidate_rows(frame_id, ok, selected=np.array([3, 7, 9, 12, 25, 40]), labelled=np.array([25]))
    assert frame_id[rows].tolist() == [3, 9, 12, 40]  # 7 failed, 25 has its expensive label already
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(frame_id.size)
        again = candidate_rows(frame_id[order], ok[order], np.array([3, 7, 9, 12, 25, 40]), np.array([25]))
        assert frame_id[order][again].tolist() == [3, 9, 12, 40]


def test_the_score_is_the_committee_else_the_predicted_error_else_b_and_nan_is_never_chosen():
    bias = np.array([0.3, np.nan, 0.1, 0.2])
    predicted = np.array([0.01, 0.05, 0.04, 0.02])
    deviation = np.array([0.2, 0.4, 0.1, 0.3])
    score, what = pick_score(bias)
    assert what == "B" and np.array_equal(score, bias, equal_nan=True)
    score, what = pick_score(bias, predicted)
    assert what == "predicted force error" and np.isnan(score[1]) and score[2] == 0.04  # a failed cheap label
    score, what = pick_score(bias, predicted, deviation, inside=np.array([True, True, False, True]))
    assert what == "committee force deviation" and score[1] == 0.4 and np.isnan(score[2])  # outside the window
    chosen, name = pick_expensive(score, what, "committee", 2, None, None)
    assert chosen.indices.tolist() == [1, 3] and name == "top committee force deviation"
    assert all("committee deviation" in reason for reason in chosen.reasons)


def test_a_committee_pick_without_a_committee_falls_back_to_b_and_names_its_rule():
    assert pick_rule("committee", None) == "bias" and pick_rule("committee", np.zeros(2)) == "committee"
    assert pick_rule("predicted-error", None) == "predicted-error"
    descriptors = np.array([[0.0], [0.1], [5.0], [5.1]])
    score = np.array([0.4, 0.39, 0.2, 0.1])
    chosen, name = pick_expensive(score, "B", "bias", 2, descriptors, None)
    assert chosen.indices.tolist() == [0, 2] and name == "bias-weighted farthest point"  # spread, not the top two
    herded = Selection(np.array([3]), ["representative"])
    chosen, name = pick_expensive(score, "B", "coverage", 2, descriptors, np.array([[0.0]]), preselected=herded)
    assert chosen.indices[0] == 3 and len(chosen) == 2
    assert name == "1 by kernel herding, the rest by farthest point (coverage) from 1 labelled frames"
