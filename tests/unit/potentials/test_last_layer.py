"""Last-layer features: exactly the gradient of the energy (and forces) with respect to the last linear layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.errors import AlloopError
from alloop.potentials.base import AtomsBatch
from alloop.potentials.egnn import EGNN
from alloop.potentials.inference import (
    last_layer_force_feature_batches,
    predict,
    predict_last_layer_features,
)
from alloop.potentials.pair import PairPotential
from alloop.potentials.sevennet import SevenNet
from alloop.potentials.two_head import TwoHeadPotential


def _frames(n: int = 3) -> list:
    frames = [molecule("CH3CH2OH") for _ in range(n)]
    for k, atoms in enumerate(frames):
        atoms.rattle(0.05, seed=k)
    return frames


def _last_parameters(model) -> list[torch.Tensor]:
    """The last linear layer's parameters, in the order of the features (weights, then bias if any)."""
    if isinstance(model, TwoHeadPotential):
        layer = model.heads[model.active_head][-1]
    elif isinstance(model, EGNN):
        layer = model.readout[-1]
    else:
        return [model.net._modules["reduce_hidden_to_energy"].linear.weight]
    return [layer.weight, layer.bias]


def _models() -> list:
    egnn = EGNN([1, 6, 8], hidden_features=16, n_layers=2, seed=1).double()
    egnn.output_scale.fill_(0.7)
    two_head = TwoHeadPotential.from_model(egnn).double()
    with torch.no_grad():
        for p in two_head.heads["expensive"].parameters():
            p.mul_(1.3)  # the active head differs from the cheap one
    return [egnn, two_head, SevenNet([1, 6, 8], base="7net-0").double()]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["egnn", "two-head", "sevennet-0"])
def test_summed_features_are_the_energy_gradient_of_the_last_layer(index):
    model = _models()[index]
    frames = _frames()
    features = predict_last_layer_features(model, frames, batch_size=2)
    assert features.dtype == np.float64 and features.shape[0] == 27
    for k, atoms in enumerate(frames):
        energy = model(AtomsBatch.from_atoms([atoms], dtype=torch.float64), compute_forces=False).energy.sum()
        grad = torch.cat([g.ravel() for g in torch.autograd.grad(energy, _last_parameters(model))])
        ratio = grad.numpy() / features[9 * k : 9 * k + 9].sum(axis=0)
        assert ratio == pytest.approx(np.full_like(ratio, ratio[0]), rel=1e-8)  # one constant for every parameter
    if isinstance(model, EGNN):
        assert ratio[0] == pytest.approx(1.0)  # EGNN: exactly the gradient, output scale included


def test_force_features_times_the_last_weights_are_the_forces():
    model = _models()[0]
    frames = _frames()
    rows = np.concatenate([f for f, _ in last_layer_force_feature_batches(model, frames, batch_size=2)])
    _, forces = predict(model, frames)
    assert rows.shape == (27, 3, 17)
    weights = torch.cat([p.detach().ravel() for p in _last_parameters(model)]).numpy()
    assert rows @ weights == pytest.approx(forces, abs=1e-12)


def test_a_model_without_a_last_linear_layer_says_so():
    model = PairPotential([1, 6, 8]).double()
    with pytest.raises(AlloopError, match="does not expose"):
        predict_last_layer_features(model, _frames(1))
