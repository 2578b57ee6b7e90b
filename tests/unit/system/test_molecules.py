"""Molecules of a campaign: named by formula, rotamers and isomers as one, replicas and samples dealt over them."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from alloop.errors import AlloopError
from alloop.system.conformers import conformer_starts
from alloop.system.molecules import Molecules, frame_molecules, molecule_name


def test_a_molecule_is_its_hill_formula():
    assert molecule_name(molecule("CH3OH").numbers) == "CH4O"
    assert molecule_name(molecule("H2O").numbers) == "H2O"
    assert molecule_name([8, 6, 8]) == "CO2"
    assert molecule_name(molecule("CH3CH2OH").numbers) == molecule_name(molecule("CH3OCH3").numbers) == "C2H6O"


def test_frame_molecules_of_concatenated_frames():
    frames = [molecule(n) for n in ("H2O", "CH4", "H2O", "CH3OH")]
    numbers = np.concatenate([a.numbers for a in frames])
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    assert frame_molecules(numbers, offsets).tolist() == ["H2O", "CH4", "H2O", "CH4O"]
    assert frame_molecules(np.zeros(0, int), np.zeros(1, int)).size == 0


def test_frames_of_one_size_mostly_the_first_molecule_name_the_others_by_their_own_atoms():
    ethanol, ether = molecule("CH3CH2OH").numbers, molecule("CH3OCH3").numbers  # isomers: 9 atoms each
    nine = np.array([6, 6, 7, 1, 1, 1, 1, 1, 1])  # C2H6N: another composition of nine atoms
    rows = [ethanol] * 7 + [ether, nine, ethanol[::-1]]
    numbers = np.concatenate(rows).astype(np.int16)  # as the store keeps them
    offsets = 9 * np.arange(len(rows) + 1)
    assert frame_molecules(numbers, offsets).tolist() == ["C2H6O"] * 8 + ["C2H6N", "C2H6O"]
    assert frame_molecules(numbers[::-1].copy(), offsets).tolist()[::-1] == ["C2H6O"] * 8 + ["C2H6N", "C2H6O"]


def test_rotamers_are_one_molecule_and_molecules_keep_their_first_order():
    ethanol = conformer_starts(molecule("CH3CH2OH"), 3)
    structures = [molecule("H2O"), *ethanol, molecule("CH4")]
    found = Molecules.of(structures)
    assert found.names == ("H2O", "C2H6O", "CH4") and found.groups == ((0,), (1, 2, 3), (4,))
    # molecule first (j % 3), then that molecule's structures in turn (its rank j // 3)
    assert found.deal(9) == [0, 1, 4, 0, 2, 4, 0, 3, 4]
    assert found.place(7) == (1, 2)


def test_one_molecule_deals_round_robin_over_its_structures():
    rotamers = conformer_starts(molecule("CH3CH2OH"), 3)
    assert Molecules.of(rotamers).deal(7) == [0, 1, 2, 0, 1, 2, 0]  # as before there were molecules
    with pytest.raises(AlloopError, match="no starting structures"):
        Molecules.of([])
