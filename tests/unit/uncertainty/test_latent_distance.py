"""The latent distance against a direct computation, and what it ranks."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.uncertainty.latent_distance import LatentDistance


def test_distances_match_a_direct_mahalanobis_computation():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4)) + 3.0
    numbers = np.full(300, 6)
    model = LatentDistance.fit(numbers, train, ridge=1e-3)
    new = rng.normal(size=(5, 4)) + 3.0
    z = (new - train.mean(0)) / train.std(0)
    std = (train - train.mean(0)) / train.std(0)
    cov = np.cov(std, rowvar=False)
    direct = np.sqrt(np.einsum("ij,jk,ik->i", z, np.linalg.inv(cov + 1e-3 * np.trace(cov) / 4 * np.eye(4)), z) / 4)
    assert model.atom_distances(np.full(5, 6), new) == pytest.approx(direct, rel=1e-10)


def test_far_atoms_and_unknown_elements_score_higher_than_training_like_ones():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(400, 8))
    numbers = np.where(np.arange(400) % 2, 1, 8)
    model = LatentDistance.fit(numbers, train)
    near = rng.normal(size=(2, 8))
    far = near + 6.0
    scores = model.frame_scores(np.array([1, 8, 1, 8, 1, 8]), np.vstack([near, far, near]), np.array([0, 2, 4, 6]))
    assert scores[1] > 3 * scores[0] and scores[0] == pytest.approx(scores[2])
    assert np.isinf(model.atom_distances(np.array([7]), near[:1]))[0]


def test_frame_reductions_and_bad_input():
    rng = np.random.default_rng(2)
    model = LatentDistance.fit(np.full(50, 1), rng.normal(size=(50, 3)), reduce="max")
    feats = rng.normal(size=(3, 3))
    atoms = model.atom_distances(np.full(3, 1), feats)
    assert model.frame_scores(np.full(3, 1), feats, np.array([0, 1, 3]))[1] == pytest.approx(atoms[1:].max())
    with pytest.raises(AlloopError):
        model.frame_scores(np.full(3, 1), feats, np.array([0, 2]))
    with pytest.raises(AlloopError):
        LatentDistance.fit(np.full(3, 1), rng.normal(size=(3, 2)), ridge=0.0)
