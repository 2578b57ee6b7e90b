"""Kernel mean matching (``benchmarks/lib/importance.py``): weights that undo a known selection bias."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def importance(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import lib.importance

    return lib.importance


def test_weights_restore_the_target_share_of_an_oversampled_class(importance):
    """Target: two well separated clusters, 90 % / 10 %; the selection holds them 50 / 50. The true density ratio
    is 1.8 on the first and 0.2 on the second; the weights move the shares most of the way back (the ridge keeps
    them from going all the way) and lower the MMD."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    target_class = (rng.random(500) < 0.1).astype(int)
    target = centres[target_class] + 0.5 * rng.standard_normal((500, 3))
    selected_class = np.repeat([0, 1], 15)
    selected = centres[selected_class] + 0.5 * rng.standard_normal((30, 3))
    got = importance.kernel_mean_matching(selected, target)
    assert got.weights.mean() == pytest.approx(1.0) and got.weights.min() >= 0.0
    assert got.mmd2_after < 0.3 * got.mmd2_before
    shares = importance.weighted_shares(selected_class, 2, got.weights)
    assert importance.weighted_shares(selected_class, 2) == [0.5, 0.5]
    assert 0.1 <= shares[1] <= 0.25
    assert 1.5 <= got.weights[selected_class == 0].mean() <= 1.8
    assert got.effective_sample_size < 30


def test_a_selection_drawn_like_the_target_keeps_weights_near_one_and_the_bound_holds(importance):
    rng = np.random.default_rng(1)
    target = rng.standard_normal((400, 4))
    same = importance.kernel_mean_matching(rng.standard_normal((40, 4)), target)
    assert same.effective_sample_size > 0.75 * 40
    skewed = importance.kernel_mean_matching(rng.standard_normal((30, 4)) + [2.0, 0, 0, 0], target, bound=3.0)
    assert skewed.weights.max() <= 3.0 + 1e-9 and skewed.mmd2_after < skewed.mmd2_before
    with pytest.raises(ValueError, match="bound must be >= 1"):
        importance.kernel_mean_matching(target[:5], target, bound=0.5)
