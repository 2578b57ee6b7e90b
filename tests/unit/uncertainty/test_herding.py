"""Kernel herding: representative picks (lower MMD than random draws), the near-duplicate rule, the knob's limits."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.uncertainty.herding import (
    kernel_herding,
    median_bandwidth,
    nearest_spacing,
    representative_quota,
    squared_mmd,
    standardise,
)
from alloop.uncertainty.selection import Selection, select_expensive, select_frames


def _pool(n: int = 600, seed: int = 0) -> np.ndarray:
    """A skewed mixture in 4 D: 80 % in one broad basin, 20 % in a narrow one, on features of unequal scales."""
    rng = np.random.default_rng(seed)
    major = rng.normal(0.0, 1.0, size=(int(0.8 * n), 4))
    minor = rng.normal(0.0, 0.3, size=(n - len(major), 4)) + np.array([4.0, -3.0, 0.0, 1.0])
    return np.concatenate([major, minor]) * np.array([1.0, 10.0, 0.1, 3.0])


def test_squared_mmd_by_hand():
    x, y, h = np.array([[0.0], [1.0]]), np.array([[0.0]]), 0.7
    k = np.exp(-1.0 / (2 * h * h))
    assert squared_mmd(x, y, h) == pytest.approx((2 + 2 * k) / 4 - 2 * (1 + k) / 2 + 1)
    assert squared_mmd(y, y, h) == pytest.approx(0.0)


def test_herding_matches_the_pool_better_than_random_draws():
    pool = _pool()
    z = standardise(pool)[0]
    h = median_bandwidth(z)
    herded = kernel_herding(pool, 30)
    assert herded.indices.size == 30 and np.unique(herded.indices).size == 30
    mine = squared_mmd(z[herded.indices], z, h)
    rng = np.random.default_rng(1)
    random = np.array([squared_mmd(z[rng.choice(len(z), 30, replace=False)], z, h) for _ in range(300)])
    assert mine < np.percentile(random, 5), (mine, np.percentile(random, [5, 50]))
    assert mine < 0.5 * random.mean()
    # the minor basin (20 % of the pool) gets about its share of the picks
    minor = herded.indices >= 480
    assert 3 <= minor.sum() <= 9


def test_herding_never_picks_within_epsilon_of_a_labelled_or_picked_frame():
    pool = _pool(400, seed=2)
    rng = np.random.default_rng(3)
    labelled = pool[rng.choice(len(pool), 40, replace=False)] + 1e-3 * rng.normal(size=(40, 4))
    herded = kernel_herding(pool, 50, labelled=labelled)
    z, lab = standardise(pool, labelled)
    assert z is not None and lab is not None
    eps = herded.epsilon
    assert eps == pytest.approx(0.5 * nearest_spacing(z)) and eps > 0
    picked = z[herded.indices]
    to_labelled = np.sqrt(((picked[:, None] - lab[None]) ** 2).sum(-1)).min(axis=1)
    assert to_labelled.min() >= eps
    between = np.sqrt(((picked[:, None] - picked[None]) ** 2).sum(-1)) + np.diag(np.full(len(picked), np.inf))
    assert between.min() >= eps
    # the pool frames next to the labelled ones (the 40 copies) are never picked
    copies = np.sqrt(((z[:, None] - lab[None]) ** 2).sum(-1)).min(axis=1) < eps
    assert copies.sum() >= 40 and not np.isin(herded.indices, np.flatnonzero(copies)).any()


def test_a_larger_epsilon_blocks_more_and_picks_stop_when_the_candidates_run_out():
    pool = _pool(200, seed=4)
    herded = kernel_herding(pool, 200, epsilon=2.0)
    assert 0 < herded.indices.size < 200
    z = standardise(pool)[0]
    picked = z[herded.indices]
    between = np.sqrt(((picked[:, None] - picked[None]) ** 2).sum(-1)) + np.diag(np.full(len(picked), np.inf))
    assert between.min() >= 2.0


def test_labelled_frames_count_as_chosen():
    """With the major basin already labelled, herding fills the minor basin first."""
    pool = _pool(500, seed=5)
    labelled = pool[:300:3]  # 100 frames of the major basin
    herded = kernel_herding(pool, 10, labelled=labelled)
    assert (herded.indices[:5] >= 400).all()
    assert not (kernel_herding(pool, 10).indices[:5] >= 400).all()


def test_allowed_and_candidates():
    pool = _pool(300, seed=6)
    allowed = np.arange(300) % 2 == 0
    herded = kernel_herding(pool, 20, allowed=allowed)
    assert allowed[herded.indices].all()
    candidates = pool[::3]
    assert kernel_herding(pool, 5, candidates=candidates).indices.max() < len(candidates)
    with pytest.raises(AlloopError, match="allowed has"):
        kernel_herding(pool, 5, allowed=allowed[:10])
    with pytest.raises(AlloopError, match="width"):
        kernel_herding(pool, 5, candidates=pool[:, :2])


@pytest.mark.parametrize(("exploration", "cap", "quota"), [(1.0, 16, 0), (0.0, 16, 16), (0.5, 16, 8), (0.7, 5, 2)])
def test_representative_quota(exploration, cap, quota):
    assert representative_quota(exploration, cap) == quota


def test_representative_quota_rejects_out_of_range():
    with pytest.raises(AlloopError, match=r"exploration must be in \[0, 1\]"):
        representative_quota(1.5, 4)


def _frames(seed: int = 7):
    rng = np.random.default_rng(seed)
    m = 120
    descriptors = _pool(m, seed)
    scores = rng.gamma(2.0, 0.6, size=m)
    replica, step = np.arange(m) % 4, (np.arange(m) // 4) * 10
    unstable = np.zeros(m, bool)
    unstable[17] = True
    return scores, descriptors, replica, step, unstable


def _knob(exploration: float, budget: int = 12) -> Selection:
    """The cheap pick as the explore phase makes it: the herded quota first, then the score rules."""
    scores, descriptors, replica, step, unstable = _frames()
    quota = representative_quota(exploration, budget)
    herded = None
    if quota:
        h = kernel_herding(descriptors, quota)
        herded = Selection(h.indices, h.reasons("the pool"))
    return select_frames(scores, descriptors, replica, step, budget, unstable=unstable, min_spacing_steps=20,
                         fill_to=budget, preselected=herded)


def test_the_knob_at_one_is_the_score_rules_and_at_zero_pure_herding():
    scores, descriptors, replica, step, unstable = _frames()
    rules = select_frames(scores, descriptors, replica, step, 12, unstable=unstable, min_spacing_steps=20,
                          fill_to=12)
    at_one = _knob(1.0)
    np.testing.assert_array_equal(at_one.indices, rules.indices)
    assert at_one.reasons == rules.reasons
    at_zero = _knob(0.0)
    np.testing.assert_array_equal(at_zero.indices, kernel_herding(descriptors, 12).indices)
    assert all(r.startswith("representative") for r in at_zero.reasons)
    half = _knob(0.5)
    np.testing.assert_array_equal(half.indices[:6], kernel_herding(descriptors, 6).indices)
    assert len(half) == 12 and not any(r.startswith("representative") for r in half.reasons[6:])
    assert 17 in half.indices  # the unstable frame still comes next


def test_rules_after_the_quota_count_the_herded_frames_in_their_distances():
    scores, descriptors, replica, step, unstable = _frames()
    herded = kernel_herding(descriptors, 6)
    pre = Selection(herded.indices, herded.reasons("the pool"))
    with_quota = select_expensive(scores, 10, descriptors, preselected=pre)
    np.testing.assert_array_equal(with_quota.indices[:6], herded.indices)
    # the same as a bias-weighted pick whose distances start from the herded frames as labelled ones
    from_labelled = select_expensive(scores.copy(), 4, descriptors, labelled=descriptors[herded.indices])
    np.testing.assert_array_equal(with_quota.indices[6:], from_labelled.indices)
    top = select_expensive(scores, 10, preselected=pre)  # without descriptors: the herded, then the top score
    rest = [i for i in np.argsort(-scores, kind="stable") if i not in herded.indices][:4]
    np.testing.assert_array_equal(top.indices, np.concatenate([herded.indices, rest]))
    at_one = select_expensive(scores, 10, descriptors, preselected=None)
    np.testing.assert_array_equal(at_one.indices, select_expensive(scores, 10, descriptors).indices)


def test_blocks_rule_out_the_candidates_a_pick_names():
    pool = _pool(200, seed=8)
    trajectory, step = np.arange(200) % 4, (np.arange(200) // 4) * 5
    herded = kernel_herding(pool, 40, blocks=lambda i: (trajectory == trajectory[i]) & (abs(step - step[i]) < 30))
    for t in range(4):
        mine = np.sort(step[herded.indices][trajectory[herded.indices] == t])
        assert mine.size < 2 or np.diff(mine).min() >= 30
    assert 20 <= herded.indices.size < 40  # 4 trajectories of 245 steps hold at most 36 picks 30 steps apart
