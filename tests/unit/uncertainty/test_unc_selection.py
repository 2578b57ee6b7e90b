"""Frame selection (budget, spacing, FPS), expensive top-B, descriptors, bias per frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.potentials.pair import PairPotential
from alloop.uncertainty import (
    bias_per_frame,
    farthest_point_sampling,
    frame_descriptors,
    model_disagreement,
    select_expensive,
    select_frames,
)


def test_bias_per_frame_by_hand():
    pred = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.5, 0.5]])
    ref = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    b = bias_per_frame(pred, ref, np.array([0, 2, 3]))
    assert b[0] == pytest.approx((1.0 + 2.0 + 1.0) / 6.0)
    assert b[1] == 0.0
    ref[2, 0] = np.nan
    assert np.isnan(bias_per_frame(pred, ref, np.array([0, 2, 3]))[1])


def test_model_disagreement(water, ethanol):
    frames = [ethanol, water, molecule("CH4")]
    a, b = PairPotential([1, 6, 8], seed=0).double(), PairPotential([1, 6, 8], seed=1).double()
    proxy = model_disagreement(a, b, frames, batch_size=2)
    for k, mol in enumerate(frames):
        from alloop.potentials.base import AtomsBatch

        fa = a(AtomsBatch.from_atoms([mol], dtype=torch.float64)).forces.numpy()
        fb = b(AtomsBatch.from_atoms([mol], dtype=torch.float64)).forces.numpy()
        assert proxy[k] == pytest.approx(np.abs(fa - fb).mean(), rel=1e-10)
    assert np.all(proxy > 0)
    assert np.all(model_disagreement(a, a, frames) == 0.0)


def test_select_respects_budget_spacing_and_limit():
    rng = np.random.default_rng(0)
    m = 60
    replica = np.repeat([0, 1, 2], 20)
    step = np.tile(np.arange(20) * 5, 3)  # recorded every 5 steps
    scores = rng.uniform(0.5, 3.0, m)
    desc = rng.normal(size=(m, 4))
    unstable = np.zeros(m, bool)
    unstable[39] = True  # last frame of replica 1
    scores[39] = 0.2  # unstable frames are taken even below the limit
    sel = select_frames(scores, desc, replica, step, budget=8, unstable=unstable, min_spacing_steps=25)
    assert len(sel) == 8 and len(set(sel.indices.tolist())) == 8
    assert sel.indices[0] == 39 and sel.reasons[0].startswith("unstable")
    assert np.all((scores[sel.indices] > 1.0) | unstable[sel.indices])
    for a in sel.indices:
        for b in sel.indices:
            if a != b and replica[a] == replica[b]:
                assert abs(step[a] - step[b]) >= 25
    # spacing caps what can be taken: 20 frames 5 steps apart, spacing 25 -> 3 or 4 per replica
    many = select_frames(np.full(m, 2.0), desc, replica, step, budget=100, min_spacing_steps=25)
    assert 9 <= len(many) <= 12
    for i in range(m):  # maximal: every frame left out is too close to a chosen one
        near = (replica[many.indices] == replica[i]) & (np.abs(step[many.indices] - step[i]) < 25)
        assert i in many.indices or near.any()
    assert len(select_frames(np.full(m, 0.5), desc, replica, step, budget=10)) == 0


def test_fps_picks_one_frame_per_cluster():
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    desc = np.concatenate([c + 0.1 * rng.normal(size=(15, 2)) for c in centers])
    scores = np.full(45, 2.0)
    scores[3] = 5.0  # start in cluster 0
    sel = select_frames(scores, desc, np.arange(45), np.zeros(45), budget=3)
    assert sel.indices[0] == 3
    assert sorted(i // 15 for i in sel.indices) == [0, 1, 2]
    plain = farthest_point_sampling(desc, 3, start=20)
    assert sorted(i // 15 for i in plain) == [0, 1, 2]
    assert len(set(farthest_point_sampling(np.zeros((4, 2)), 4).tolist())) == 4


def test_select_expensive_top_b():
    bias = np.array([0.1, np.nan, 0.5, 0.3, 0.05])
    sel = select_expensive(bias, 2)
    assert sel.indices.tolist() == [2, 3]
    assert "rank 1 of 4" in sel.reasons[0]
    assert select_expensive(bias, 10).indices.tolist() == [2, 3, 0, 4]


def test_frame_descriptors_are_per_element_means():
    numbers = np.array([1, 8, 1, 1, 1])
    feats = np.arange(10.0).reshape(5, 2)
    desc = frame_descriptors(numbers, feats, np.array([0, 3, 5]), [1, 6, 8])
    assert np.allclose(desc[0], [2.0, 3.0, 0.0, 0.0, 2.0, 3.0])
    assert np.allclose(desc[1], [7.0, 8.0, 0.0, 0.0, 0.0, 0.0])


def test_md_frames_scored_and_selected(ethanol):
    """MD frames -> Q-residual frame scores -> selection, with a hot replica standing out."""
    from alloop.md import MDSettings, init_replicas, run_segment
    from alloop.uncertainty import QResidualModel, QResidualSettings

    model = PairPotential([1, 6, 8], seed=0).double()
    cold = MDSettings(temperature_K=100.0, timestep_fs=0.5, friction_per_fs=0.05)
    train = run_segment(model, ethanol, init_replicas(ethanol, 4, 100.0, seed=0), 200, cold, record_every=5).stacked()
    n, width = len(ethanol), model.feature_dim
    numbers = np.tile(ethanol.numbers, len(train["step"]))
    ptr = np.arange(len(train["step"]) + 1) * n
    q_model = QResidualModel.fit(numbers, train["features"].reshape(-1, width), ptr,
                                 QResidualSettings(n_components=4, limit="empirical_frame", alpha=0.05))
    hot = run_segment(model, ethanol, init_replicas(ethanol, 2, 2000.0, seed=1), 100,
                      MDSettings(temperature_K=2000.0, friction_per_fs=0.05), record_every=5).stacked()
    m = len(hot["step"])
    scores = q_model.frame_scores(np.tile(ethanol.numbers, m), hot["features"].reshape(-1, width), np.arange(m + 1) * n)
    assert scores.flagged.mean() > 0.5  # hot frames are novel for a model of cold frames
    desc = frame_descriptors(np.tile(ethanol.numbers, m), hot["features"].reshape(-1, width), np.arange(m + 1) * n,
                             [1, 6, 8])
    sel = select_frames(scores.q, desc, hot["replica"], hot["step"], budget=5, min_spacing_steps=20)
    assert 1 <= len(sel) <= 5 and np.all(scores.q[sel.indices] > 1)


def test_a_cycle_with_few_flagged_frames_is_filled_with_spread_frames():
    """The fill-up continues farthest-point sampling below the limit (equally far: by score), not the highest
    scores, which sit next to the flagged frame."""
    scores = np.array([0.2, 1.5, 0.9, 0.1, 0.8, 0.95])
    descriptors = np.arange(6, dtype=float)[:, None]
    replica, step = np.zeros(6, int), np.arange(6) * 10
    plain = select_frames(scores, descriptors, replica, step, 4)
    assert plain.indices.tolist() == [1]
    filled = select_frames(scores, descriptors, replica, step, 4, fill_to=3)
    assert filled.indices.tolist() == [1, 5, 3] and "filled" in filled.reasons[1] and "farthest" in filled.reasons[2]
    by_score = select_frames(scores, descriptors, replica, step, 4, fill_to=3, diverse_fill=False)
    assert by_score.indices.tolist() == [1, 5, 2]  # diversity none: the highest scores
    spaced = select_frames(scores, descriptors, replica, step, 4, fill_to=4, min_spacing_steps=15)
    assert spaced.indices.tolist() == [1, 5, 3]  # 0 and 2 are within 15 steps of 1, 4 of 5: nothing else is open
    assert select_frames(scores, descriptors, replica, step, 2, fill_to=5).indices.size == 2  # budget caps
    nothing_flagged = select_frames(scores * 0.5, descriptors, replica, step, 4, fill_to=2)
    assert nothing_flagged.indices.tolist() == [1, 5]  # starts at the highest score, then the farthest frame


def test_fill_up_spreads_over_trajectories():
    """Nothing flagged; Q is smooth along replica 0 and higher there than anywhere on replica 1, whose frames sit
    elsewhere in feature space: by score the fill-up takes replica 0's frames one spacing apart, by farthest point
    both replicas."""
    replica, step = np.repeat([0, 1], 10), np.tile(np.arange(10) * 5, 2)
    scores = np.concatenate([0.9 - 0.01 * np.abs(np.arange(10) - 5), 0.5 + 0.01 * np.arange(10)])
    along = 0.1 * np.arange(10)
    desc = np.concatenate([np.c_[along, np.zeros(10)], np.c_[along, np.full(10, 5.0)]])
    kwargs = dict(budget=4, fill_to=4, min_spacing_steps=10)
    by_score = select_frames(scores, desc, replica, step, diverse_fill=False, **kwargs)
    assert set(replica[by_score.indices]) == {0}
    spread = select_frames(scores, desc, replica, step, **kwargs)
    assert spread.indices[0] == 5 and set(replica[spread.indices[:2]]) == {0, 1}
    assert sorted(replica[spread.indices].tolist()) == [0, 0, 1, 1]


def test_expensive_pick_spreads_over_two_clusters():
    """Cluster 0 holds the four highest B: top-B takes them all; the bias-weighted farthest point takes the best of
    cluster 0, then the best of cluster 1 (far, with a lower but real B)."""
    rng = np.random.default_rng(2)
    desc = np.concatenate([rng.normal(0.0, 0.05, (6, 3)), 5.0 + rng.normal(0.0, 0.05, (6, 3))])
    bias = np.concatenate([np.linspace(0.50, 0.45, 6), np.linspace(0.30, 0.25, 6)])
    assert set(select_expensive(bias, 4).indices // 6) == {0}
    spread = select_expensive(bias, 4, desc)
    assert spread.indices[:2].tolist() == [0, 6] and set(spread.indices // 6) == {0, 1}
    assert "distance" in spread.reasons[1] and spread.indices.tolist() == select_expensive(bias, 4, desc).indices.tolist()
    bias[6] = np.nan  # a failed cheap label is never chosen
    assert 6 not in select_expensive(bias, 12, desc).indices and len(select_expensive(bias, 12, desc)) == 11
    same = np.zeros((12, 3))  # no spread to gain: the order of B
    assert select_expensive(bias, 3, same).indices.tolist() == select_expensive(bias, 3).indices.tolist()


def test_coverage_pick_goes_where_no_labelled_frame_is():
    """Three clusters; the labelled frames sit in cluster 0. The coverage rule ignores B (cluster 0 holds the highest)
    and takes one frame of each uncovered cluster first, then returns to cluster 0; a NaN B is still never chosen."""
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 8.0]])
    desc = np.concatenate([c + rng.normal(0.0, 0.1, (5, 2)) for c in centres])
    bias = np.concatenate([np.full(5, 0.9), np.full(5, 0.1), np.full(5, 0.2)])
    labelled = centres[:1] + rng.normal(0.0, 0.1, (3, 2))
    pick = select_expensive(bias, 3, desc, labelled=labelled, rule="coverage")
    assert (pick.indices[:2] // 5).tolist() == [2, 1]  # the farthest cluster first, then the other uncovered one
    assert "labelled" in pick.reasons[0]
    # without the labelled frames the first pick is the highest B (cluster 0), then the farthest from it
    assert (select_expensive(bias, 2, desc, rule="coverage").indices // 5).tolist() == [0, 2]
    # the bias rule with the labelled frames weighs B x distance: cluster 2 (B 0.2, distance 8) beats cluster 0
    # (B 0.9, distance ~0.1) and cluster 1 (B 0.1, distance 4)
    assert select_expensive(bias, 1, desc, labelled=labelled).indices[0] // 5 == 2
    bias[10:] = np.nan
    assert not set(select_expensive(bias, 15, desc, labelled=labelled, rule="coverage").indices) & set(range(10, 15))


def test_coverage_rule_checks_its_input():
    with pytest.raises(Exception, match="descriptors"):
        select_expensive(np.ones(3), 2, rule="coverage")
    with pytest.raises(Exception, match="unknown expensive rule"):
        select_expensive(np.ones(3), 2, np.zeros((3, 2)), rule="random")
    with pytest.raises(Exception, match="width"):
        select_expensive(np.ones(3), 2, np.zeros((3, 2)), labelled=np.zeros((2, 3)), rule="coverage")


def test_committee_deviation_by_hand(water):
    """Two pair potentials that differ only in one scale: the deviation is half their force difference on the atom
    where it is largest (two members: std = |F_a - F_b| / 2), and zero for identical members."""
    from alloop.potentials.inference import predict
    from alloop.uncertainty import committee_deviation

    torch.manual_seed(0)
    a = PairPotential([1, 8], cutoff=4.0, seed=0)
    b = PairPotential([1, 8], cutoff=4.0, seed=1)
    frames = [water.copy(), water.copy()]
    frames[1].positions[0] += [0.05, -0.02, 0.03]
    got = committee_deviation([a, b], frames)
    fa, fb = predict(a, frames)[1], predict(b, frames)[1]
    per_atom = np.linalg.norm(fa - fb, axis=1) / 2
    assert got.min() > 0 and np.allclose(got, [per_atom[:3].max(), per_atom[3:].max()], rtol=1e-6, atol=1e-9)
    assert np.allclose(committee_deviation([a, a, a], frames), 0.0, atol=1e-7)
    with pytest.raises(Exception, match="at least 2 models"):
        committee_deviation([a], frames)


def test_the_batch_rule_never_picks_a_near_duplicate_of_a_labelled_frame():
    from alloop.uncertainty.selection import DUPLICATE_FRACTION, typical_spacing

    rng = np.random.default_rng(5)
    labelled = rng.normal(size=(30, 4))
    # candidates: copies of labelled frames nudged by 1 % of the spacing (all flagged, the highest scores) and new frames
    spacing = typical_spacing(labelled)
    copies = labelled[:10] + 0.01 * spacing * rng.normal(size=(10, 4)) / 2
    new = rng.normal(size=(20, 4)) * 1.5
    descriptors = np.vstack([copies, new])
    scores = np.concatenate([np.full(10, 50.0), rng.uniform(0.5, 3.0, 20)])
    m = len(scores)
    chosen = select_frames(scores, descriptors, np.arange(m), np.zeros(m, int), 25, fill_to=25, labelled=labelled)
    nearest = np.sqrt(((descriptors[chosen.indices, None] - labelled[None]) ** 2).sum(-1)).min(axis=1)
    assert len(chosen) == 20 and np.all(nearest >= DUPLICATE_FRACTION * spacing)  # every new frame, no copy
    assert not set(chosen.indices.tolist()) & set(range(10))
    # without the memory the copies, flagged with the highest scores, come first
    assert select_frames(scores, descriptors, np.arange(m), np.zeros(m, int), 1).indices[0] < 10


def test_with_memory_the_flagged_picks_weigh_the_score_by_the_distance_to_the_labelled_frames():
    labelled = np.array([[0.0, 0.0], [1.0, 0.0]])
    descriptors = np.array([[0.2, 0.0], [3.0, 3.0]])  # a high score next to a labelled frame, a lower one far away
    scores = np.array([4.0, 2.0])
    chosen = select_frames(scores, descriptors, np.arange(2), np.zeros(2, int), 1, labelled=labelled)
    assert chosen.indices.tolist() == [1] and "nearest labelled or chosen" in chosen.reasons[0]
