"""alloop's extxyz writer round-trips through ASE's reader: floats exactly, energy, forces, cell, pbc and tags."""

from __future__ import annotations

import numpy as np
from ase.build import molecule
from ase.io import read

from alloop.io import attach_label, write_extxyz


def test_positions_labels_cell_and_tags_round_trip_exactly(tmp_path):
    atoms = molecule("CH3CH2OH")
    atoms.positions += np.random.default_rng(0).normal(scale=0.1, size=atoms.positions.shape)
    atoms.cell, atoms.pbc = [7.1, 7.2, 7.3], True
    atoms.set_tags([0] * 4 + [1] * 5)  # e.g. two molecules
    forces = np.random.default_rng(1).normal(size=(len(atoms), 3))
    plain = molecule("H2O")
    path = tmp_path / "frames.extxyz"
    write_extxyz(path, [attach_label(atoms, -1234.5678901234567, forces, {"fidelity": "x"}), plain])
    back, water = read(path, ":")
    assert np.array_equal(back.positions, atoms.positions) and np.array_equal(back.cell.array, atoms.cell.array)
    assert back.pbc.all() and back.get_potential_energy() == -1234.5678901234567
    assert np.array_equal(back.get_forces(), forces)
    assert back.get_tags().tolist() == [0] * 4 + [1] * 5
    assert "tags" not in water.arrays and np.array_equal(water.positions, plain.positions)  # no tags: no column
