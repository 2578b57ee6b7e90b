"""``selection.density_weight``: the expensive pick's score times the candidate's density in the cycle's MD ensemble
(information density), computed in the target's standardised descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.campaign.phases.select_expensive import density_weighted
from alloop.config.exploration import SelectionConfig
from alloop.uncertainty.herding import information_density
from alloop.uncertainty.selection import select_expensive


def _ensemble(seed: int = 0) -> np.ndarray:
    """A dense basin at the origin (90 %) and a sparse one at (6, 6) (10 %), features of unequal scales."""
    rng = np.random.default_rng(seed)
    dense = rng.normal(0.0, 1.0, size=(270, 2))
    sparse = rng.normal(0.0, 1.0, size=(30, 2)) + 6.0
    return np.concatenate([dense, sparse]) * np.array([1.0, 50.0])


def test_density_is_highest_in_the_dense_basin_and_near_zero_far_away():
    target = _ensemble()
    candidates = np.array([[0.0, 0.0], [6.0, 300.0], [30.0, 1500.0]])  # dense centre, sparse centre, far outside
    density = information_density(candidates, target)
    assert density[0] == pytest.approx(1.0) and density.max() == pytest.approx(1.0)
    assert 0.0 < density[1] < 0.5 * density[0]
    assert density[2] < 1e-6
    # standardised by the target: rescaling a feature (units) changes nothing
    scaled = information_density(candidates * [1.0, 0.01], target * [1.0, 0.01])
    np.testing.assert_allclose(scaled, density, rtol=1e-9)


def test_the_weight_moves_the_pick_from_the_sparse_edge_to_the_dense_basin():
    """Equal-ish errors: without the weight the arg-max takes the sparse basin's frame (its error is a little
    larger); with weight 1 the dense basin's; weight 0 and no target leave the score as it was."""
    target = _ensemble()
    descriptors = np.array([[0.2, 5.0], [6.2, 305.0], [-0.5, -20.0]])
    score = np.array([0.10, 0.12, 0.09])
    plain = select_expensive(score, 1, None, rule="bias", score_name="predicted")
    assert plain.indices.tolist() == [1]
    weighted, what = density_weighted(score, "predicted force error", 1.0, descriptors, target)
    assert what == "predicted force error x density^1"
    assert select_expensive(weighted, 1, None, rule="bias", score_name=what).indices.tolist() == [0]
    np.testing.assert_allclose(density_weighted(score, "s", 0.0, descriptors, target)[0], score)
    assert density_weighted(score, "s", 1.0, descriptors, None) == (score, "s")
    assert density_weighted(score, "s", None, descriptors, target) == (score, "s")
    nan = np.array([np.nan, 0.12, 0.09])  # a failed cheap label stays never chosen
    assert np.isnan(density_weighted(nan, "s", 2.0, descriptors, target)[0][0])


def test_the_setting_validates():
    assert SelectionConfig().density_weight is None
    assert SelectionConfig(density_weight=0.5).density_weight == 0.5
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        SelectionConfig(density_weight=-1.0)
    with pytest.raises(ValueError, match="expensive_pick: coverage has none"):
        SelectionConfig(expensive_pick="coverage", density_weight=1.0)
