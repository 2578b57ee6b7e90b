"""ASTEROID's B: the B that routes frames to expensive labels is the B that weights training, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.potentials.inference import predict
from alloop.potentials.registry import build_model
from alloop.training.bias_weights import dataset_bias
from alloop.training.data import FrameDataset
from alloop.uncertainty.bias_score import bias_per_frame, model_bias


def _cheap(n: int) -> FrameDataset:
    """``n`` perturbed molecules of three sizes with random 'cheap' forces (more frames than one B batch)."""
    rng = np.random.default_rng(3)
    frames = []
    for k in range(n):
        atoms = molecule(["CH3CH2OH", "H2O", "CH4"][k % 3])
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        frames.append(atoms)
    return FrameDataset.from_arrays([a.numbers for a in frames], [a.positions for a in frames],
                                    energy=rng.normal(size=n), forces=[rng.normal(size=(len(a), 3)) for a in frames],
                                    fidelity="cheap")


@pytest.mark.parametrize("arch,dtype", [("pair", torch.float32), ("egnn", torch.float64)])
def test_routing_and_training_bias_are_identical(arch, dtype):
    cheap = _cheap(70)
    model = build_model(arch, [1, 6, 8], seed=0).to(dtype)
    training = dataset_bias(model, cheap)  # what ASTEROID's weights use (training.asteroid)
    routing = model_bias(model, cheap.to_atoms(), cheap.forces.copy())  # what picks expensive frames (driver)
    assert training.shape == (70,) and np.all(training > 0)
    assert np.array_equal(training, routing)
    _, forces = predict(model, cheap, 64)
    expected = [np.abs(forces[s] - cheap.forces[s]).mean() for s in map(cheap.frame_slice, range(len(cheap)))]
    np.testing.assert_allclose(training, expected, rtol=1e-12)


def test_missing_reference_forces_give_nan_for_that_frame_only():
    pred = np.ones((5, 3))
    ref = np.zeros((5, 3))
    ref[3, 1] = np.nan
    b = bias_per_frame(pred, ref, np.array([0, 3, 5]))
    assert b[0] == 1.0 and np.isnan(b[1])
