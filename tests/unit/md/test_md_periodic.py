"""MD in a periodic cell: NVE conserves energy through the images, positions are wrapped, the guards measure
minimum-image distances, and only fully periodic cells are accepted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from alloop.errors import AlloopError
from alloop.md import MDSettings, StabilityGuards, init_replicas, run_segment
from alloop.md.guards import ATOMS_TOO_CLOSE, detect_bonds
from alloop.md.segment import wrap_positions
from alloop.potentials.egnn import EGNN
from alloop.testing.cells import water_box


@pytest.fixture(scope="module")
def box():
    return water_box(4, seed=5)


@pytest.fixture(scope="module")
def model():
    m = EGNN([1, 8], hidden_features=16, n_layers=2, n_rbf=8, cutoff=4.0, seed=3).double()
    with torch.no_grad():  # a random model is nearly flat: scale it to forces of ~1 eV/A
        m.readout[2].weight.mul_(200.0)
    return m


def test_nve_in_a_cell_conserves_energy_and_wraps(box, model):
    states = init_replicas(box, 2, 600.0, seed=2)
    res = run_segment(model, box, states, 200, MDSettings(timestep_fs=0.25, integrator="verlet"), record_every=2)
    frac = res.trajectories[0].positions @ np.linalg.inv(box.cell.array)
    assert frac.min() >= 0.0 and frac.max() < 1.0  # stored wrapped
    for traj in res.trajectories:
        total = traj.energies + traj.kinetic_energies
        assert np.std(traj.kinetic_energies) > 0.02  # the system really moves
        assert np.ptp(total) < 0.2 * np.std(traj.kinetic_energies)
    assert all(reason is None for reason in res.stop_reasons)


def test_the_model_sees_the_same_forces_wrapped_or_not(box, model):
    """Wrapping after each drift changes nothing the model computes: the first steps equal an unwrapped run."""
    shifted = box.copy()
    shifted.positions[::2] += box.cell[0] - 2 * box.cell[1]  # half the atoms by lattice vectors, out of the cell
    settings = MDSettings(timestep_fs=0.25, integrator="verlet")
    a = run_segment(model, box, init_replicas(box, 1, 300.0, seed=1), 10, settings, 1)
    b = run_segment(model, shifted, init_replicas(shifted, 1, 300.0, seed=1), 10, settings, 1)
    np.testing.assert_allclose(a.trajectories[0].energies, b.trajectories[0].energies, atol=1e-9)
    np.testing.assert_allclose(a.trajectories[0].forces, b.trajectories[0].forces, atol=1e-8)
    np.testing.assert_allclose(a.trajectories[0].positions, wrap_positions(b.trajectories[0].positions,
                                                                            box.cell.array), atol=1e-9)


def test_guards_use_minimum_image_distances():
    cell = np.eye(3) * 6.0
    water = Atoms("OH2", positions=[[0.05, 3, 3], [5.3, 3.6, 3], [5.3, 2.4, 3]], cell=cell, pbc=True)  # split
    guards = StabilityGuards.from_atoms(water)
    assert len(guards.bonds) == 2 and np.allclose(guards.bond_lengths, np.hypot(0.75, 0.6), atol=1e-9)
    assert len(detect_bonds(water.numbers, water.positions)[0]) == 0  # without the cell: no bond seen
    assert guards.check(water.positions[None], np.zeros((1, 3, 3))) == [None]
    close = water.positions.copy()
    close[1] = [0.0 + 6.0 - 0.3, 3.0, 3.0]  # 0.35 A from O through the face
    failure = guards.check(close[None], np.zeros((1, 3, 3)))[0]
    assert failure is not None and failure.code == ATOMS_TOO_CLOSE and "0.350" in failure.detail


def test_only_fully_periodic_cells(box, model):
    slab = box.copy()
    slab.pbc = [True, True, False]
    with pytest.raises(AlloopError, match="periodic in all three directions"):
        run_segment(model, slab, init_replicas(slab, 1, 300.0, seed=0), 1, MDSettings(), 1)
    with pytest.raises(AlloopError, match="periodic in all three directions"):
        StabilityGuards.from_atoms(slab)
