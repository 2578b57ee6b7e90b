"""The expensive pick's candidates do not depend on the order in which the cheap labels finished."""

from __future__ import annotations

import numpy as np

from alloop.campaign.phases.select_expensive import candidate_rows


def test_candidates_come_in_frame_id_order_whatever_the_table_order():
    frame_id = np.array([12, 3, 40, 7, 25, 9])  # the order the labels finished
    ok = np.array([True, True, True, False, True, True])
    rows = candidate_rows(frame_id, ok, selected=np.array([3, 7, 9, 12, 25, 40]), labelled=np.array([25]))
    assert frame_id[rows].tolist() == [3, 9, 12, 40]  # 7 failed, 25 has its expensive label already
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(frame_id.size)
        again = candidate_rows(frame_id[order], ok[order], np.array([3, 7, 9, 12, 25, 40]), np.array([25]))
        assert frame_id[order][again].tolist() == [3, 9, 12, 40]
