"""ASE calculator: same numbers as the model, caching through check_state, molecules only, MD."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from alloop.potentials.base import AtomsBatch
from alloop.potentials.calculator import PotentialCalculator
from alloop.potentials.egnn import EGNN
from alloop.testing.cells import water_box


@pytest.fixture
def model():
    m = EGNN([1, 6, 8], hidden_features=16, n_layers=2, n_rbf=8, seed=2).double()
    m.atomic_energies[[1, 6, 8]] = torch.tensor([-13.6, -1030.0, -2040.0], dtype=torch.float64)
    return m


class _Counting(EGNN):
    calls = 0

    def energy_and_features(self, batch):
        type(self).calls += 1
        return super().energy_and_features(batch)


def test_matches_direct_model_call(model, ethanol):
    ethanol.calc = PotentialCalculator(model)
    direct = model(AtomsBatch.from_atoms([ethanol], dtype=torch.float64))
    assert ethanol.get_potential_energy() == direct.energy.item()
    np.testing.assert_array_equal(ethanol.get_forces(), direct.forces.numpy())
    np.testing.assert_array_equal(ethanol.calc.get_property("features", ethanol), direct.features.numpy())
    assert ethanol.get_potential_energy(force_consistent=True) == direct.energy.item()
    with pytest.raises(PropertyNotImplementedError):
        ethanol.get_stress()


def test_results_are_cached_until_the_structure_changes(ethanol):
    _Counting.calls = 0
    model = _Counting([1, 6, 8], hidden_features=8, n_layers=1, seed=0)
    ethanol.calc = PotentialCalculator(model)
    f1 = ethanol.get_forces()
    e1 = ethanol.get_potential_energy()
    ethanol.get_forces()
    assert _Counting.calls == 1
    ethanol.positions[0, 0] += 0.05
    f2 = ethanol.get_forces()
    assert _Counting.calls == 2 and not np.allclose(f1, f2)
    assert ethanol.get_potential_energy() != e1 and _Counting.calls == 2
    ethanol.numbers[1] = 8  # a changed element is a changed system
    ethanol.get_potential_energy()  # energy only: no backward pass ...
    assert _Counting.calls == 3 and "forces" not in ethanol.calc.results
    ethanol.get_forces()  # ... so forces need one more evaluation
    assert _Counting.calls == 4


def test_dtype_conversion_uses_a_copy(model, water):
    calc = PotentialCalculator(model, dtype="float32")
    assert calc.model is not model and next(calc.model.parameters()).dtype == torch.float32
    assert next(model.parameters()).dtype == torch.float64  # the caller's model is untouched
    assert calc.model.atomic_energies.dtype == torch.float64
    water.calc = calc
    e32 = water.get_potential_energy()
    assert PotentialCalculator(model).model is model
    water.calc = PotentialCalculator(model)
    assert abs(water.get_potential_energy() - e32) < 1e-3


def test_periodic_structures_get_their_images(model):
    box = water_box(4, seed=3)
    box.calc = PotentialCalculator(model)
    forces = box.get_forces()
    direct = model(AtomsBatch.from_atoms([box], dtype=torch.float64))
    np.testing.assert_allclose(forces, direct.forces.detach().numpy(), atol=1e-12)
    molecules = box.copy()
    molecules.pbc = False  # the same atoms without images: other neighbours, other forces
    molecules.calc = PotentialCalculator(model)
    assert np.abs(molecules.get_forces() - forces).max() > 1e-3


def test_velocity_verlet_in_a_cell_conserves_energy(model):
    """NVE MD of a water box through the periodic images (positions are not wrapped)."""
    with torch.no_grad():
        model.readout[2].weight.mul_(200.0)
    box = water_box(4, seed=4)
    box.calc = PotentialCalculator(model)
    MaxwellBoltzmannDistribution(box, temperature_K=600, rng=np.random.default_rng(1))
    e0, epot0 = box.get_total_energy(), box.get_potential_energy()
    VelocityVerlet(box, timestep=0.25 * units.fs).run(60)
    drift = abs(box.get_total_energy() - e0)
    assert drift < 1e-3 and abs(box.get_potential_energy() - epot0) > 20 * drift


def test_velocity_verlet_conserves_energy(model, ethanol):
    with torch.no_grad():  # a random model is nearly flat: scale it to forces of ~1 eV/A
        model.readout[2].weight.mul_(200.0)
    ethanol.calc = PotentialCalculator(model)
    MaxwellBoltzmannDistribution(ethanol, temperature_K=300, rng=np.random.default_rng(0))
    e0, epot0 = ethanol.get_total_energy(), ethanol.get_potential_energy()
    assert np.abs(ethanol.get_forces()).max() > 0.3
    VelocityVerlet(ethanol, timestep=0.25 * units.fs).run(40)
    drift = abs(ethanol.get_total_energy() - e0)
    assert drift < 1e-3 and abs(ethanol.get_potential_energy() - epot0) > 20 * drift
