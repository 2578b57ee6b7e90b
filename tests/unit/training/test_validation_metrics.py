"""The validation measures the trainer uses: the energy MAE from energies alone equals validation_metrics' own."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.potentials.registry import build_model
from alloop.training.data import FrameDataset
from alloop.training.metrics import validation_energy_mae, validation_metrics


@pytest.mark.parametrize("kind", ["mae", "mse", "huber"])
def test_energy_mae_without_forces_equals_validation_metrics(mixed_frames, kind):
    rng = np.random.default_rng(3)
    data = FrameDataset.from_atoms(mixed_frames, fidelity="synthetic")
    data = data.with_weights(rng.uniform(0.2, 2.0, len(data)))
    model = build_model("egnn", [1, 6, 8], seed=2).double()
    for batch_size in (5, 64):
        expected = validation_metrics(model, data, 0.3, kind, batch_size)["energy_mae"]
        assert validation_energy_mae(model, data, batch_size) == expected


def test_energy_mae_refuses_zero_weights(mixed_frames):
    data = FrameDataset.from_atoms(mixed_frames[:3], fidelity="synthetic").with_weights(np.zeros(3))
    with pytest.raises(AlloopError, match="sum to zero"):
        validation_energy_mae(build_model("pair", [1, 6, 8], seed=0), data)
