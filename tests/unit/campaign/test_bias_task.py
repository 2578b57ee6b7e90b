"""The bias task of the expensive selection: B per frame and, for the diverse pick, the frames' descriptors."""

from __future__ import annotations

import numpy as np

from alloop.campaign.execution.bias_task import bias_task
from alloop.potentials.checkpoint import checkpoint_to_bytes
from alloop.potentials.inference import predict_features
from alloop.potentials.pair import PairPotential
from alloop.uncertainty.bias_score import model_bias
from alloop.uncertainty.selection import frame_descriptors


def test_bias_task_returns_b_and_the_feature_models_descriptors(water):
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(4):
        frame = water.copy()
        frame.positions += rng.normal(0.0, 0.05, frame.positions.shape)
        frames.append(frame)
    forces = rng.normal(0.0, 0.5, (12, 3))
    theta0 = PairPotential([1, 8], seed=0).double()
    model = PairPotential([1, 8], cutoff=3.0, n_radial=6, seed=1).double()  # other features than theta0's
    theta0_blob, model_blob = checkpoint_to_bytes(theta0), checkpoint_to_bytes(model)
    plain = bias_task(theta0_blob, frames, forces)
    assert plain.descriptors is None
    assert np.allclose(plain.bias, model_bias(theta0, frames, forces))
    out = bias_task(theta0_blob, frames, forces, feature_blob=model_blob)
    assert np.array_equal(out.bias, plain.bias)
    ptr = np.arange(5) * 3
    numbers = np.tile(water.numbers, 4)
    expected = frame_descriptors(numbers, predict_features(model, frames), ptr, [1, 8])
    assert out.descriptors.shape == (4, 2 * model.feature_dim) and np.allclose(out.descriptors, expected)
    own = bias_task(theta0_blob, frames, forces, feature_blob=theta0_blob).descriptors  # one model for both
    assert np.allclose(own, frame_descriptors(numbers, predict_features(theta0, frames), ptr, [1, 8]))
    assert own.shape == (4, 2 * theta0.feature_dim) != out.descriptors.shape
