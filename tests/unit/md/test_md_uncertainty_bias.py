"""Uncertainty-driven MD (alloop.md.uncertainty_bias): the torch Q ratios, the bias forces, and MD with the bias."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alloop.errors import AlloopError
from alloop.md import MDSettings, init_replicas, run_segment
from alloop.md.uncertainty_bias import BiasSettings, QResidualBias, biased_forces
from alloop.potentials.base import AtomsBatch
from alloop.potentials.registry import build_model
from alloop.uncertainty.qresidual import QResidualModel, QResidualSettings

LANGEVIN = MDSettings(temperature_K=500.0, timestep_fs=0.5, friction_per_fs=0.01)


@pytest.fixture(scope="module")
def egnn():
    return build_model("egnn", [1, 6, 8], hidden_features=16, n_layers=2, cutoff_A=5.0, dtype="float64")


@pytest.fixture(scope="module")
def uq(egnn, ethanol_module):
    """A Q-residual model fitted on the features of 40 rattled ethanols."""
    frames = []
    for k in range(40):
        a = ethanol_module.copy()
        a.rattle(0.03, seed=k)
        frames.append(a)
    out = egnn(AtomsBatch.from_atoms(frames, dtype=torch.float64), compute_forces=False)
    numbers = np.concatenate([a.numbers for a in frames])
    ptr = np.arange(41) * len(ethanol_module)
    return QResidualModel.fit(numbers, out.features.numpy(), ptr, QResidualSettings(n_components=3,
                                                                                   min_element_atoms=10))


@pytest.fixture(scope="module")
def ethanol_module():
    from ase.build import molecule

    return molecule("CH3CH2OH")


def _batch(atoms_list):
    return AtomsBatch.from_atoms(atoms_list, dtype=torch.float64)


def test_torch_ratios_match_the_numpy_model(egnn, uq, ethanol_module):
    a = ethanol_module.copy()
    a.rattle(0.2, seed=99)
    out = egnn(_batch([a]), compute_forces=False)
    bias = QResidualBias(uq, BiasSettings(strength_eV=0.3))
    ours = bias.atom_ratios(torch.as_tensor(a.numbers), out.features).numpy()
    ref = uq.atom_scores(a.numbers, out.features.numpy())["q_ratio"]
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    assert ours.max() > 1.0  # a strongly rattled frame is beyond some atom's limit


def test_bias_forces_are_minus_the_gradient_of_model_plus_bias(egnn, uq, ethanol_module):
    bias = QResidualBias(uq, BiasSettings(strength_eV=0.5, scale=2.0))
    a = ethanol_module.copy()
    a.rattle(0.1, seed=5)
    out = biased_forces(egnn, bias, _batch([a]))
    plain = egnn(_batch([a]))
    assert abs(float(out.bias_energy[0])) > 1e-3  # the bias is on
    assert not torch.allclose(out.forces, plain.forces)  # and it changes the forces
    torch.testing.assert_close(out.energy, plain.energy.detach())  # energies stay the model's

    def total(pos: np.ndarray) -> float:
        b = AtomsBatch.from_arrays(a.numbers, torch.as_tensor(pos), np.array([len(a)]), dtype=torch.float64)
        e, feat = egnn.energy_and_features(b)
        return float(((e * egnn.output_scale).sum() + bias.energy(b, feat).sum()).detach())

    h = 1e-5
    fd = np.zeros((len(a), 3))
    for i in range(len(a)):
        for j in range(3):
            plus, minus = a.positions.copy(), a.positions.copy()
            plus[i, j] += h
            minus[i, j] -= h
            fd[i, j] = -(total(plus) - total(minus)) / (2 * h)
    np.testing.assert_allclose(out.forces.numpy(), fd, rtol=1e-5, atol=1e-6)


def test_bias_is_bounded_and_zero_without_novelty(uq):
    bias = QResidualBias(uq, BiasSettings(strength_eV=0.4, scale=1.0))
    ratios = torch.tensor([0.0, 0.0, 1e4, 1e4])
    batch = AtomsBatch.from_arrays(np.array([1, 1, 1, 1]), np.zeros((4, 3)), np.array([2, 2]), dtype=torch.float64)
    s = bias.frame_score(ratios.double(), batch)
    assert float(s[0]) == pytest.approx(0.0)  # log mean exp(0) = 0: no bias where Q is 0
    e = -0.4 * (1 - torch.exp(-s))
    assert float(e[1]) == pytest.approx(-0.4)  # saturates at -A far out


def test_md_with_the_bias_records_its_energy_and_moves_further(egnn, uq, ethanol_module):
    states = init_replicas(ethanol_module, 2, 500.0, seed=3)
    plain = run_segment(egnn, ethanol_module, states, 30, LANGEVIN, record_every=10)
    pushed = run_segment(egnn, ethanol_module, states, 30, LANGEVIN, record_every=10,
                         bias=QResidualBias(uq, BiasSettings(strength_eV=2.0, scale=1.0)))
    assert np.all(plain.stacked()["bias_energies"] == 0.0)
    eb = pushed.stacked()["bias_energies"]
    assert eb.shape == (6,) and np.all(eb < 0) and np.all(eb >= -2.0)
    assert not np.allclose(plain.final_states[0].positions, pushed.final_states[0].positions)


def test_settings_are_checked():
    with pytest.raises(AlloopError, match="strength"):
        BiasSettings(strength_eV=-1.0)
    with pytest.raises(AlloopError, match="scale"):
        BiasSettings(strength_eV=1.0, scale=0.0)
    assert not BiasSettings().enabled and BiasSettings(strength_eV=0.1).enabled
