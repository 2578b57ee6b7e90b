"""Rotors, dihedrals, basins and rotamer starts (alloop.system.conformers)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from alloop.system.conformers import (
    Rotor,
    basin_index,
    basin_name,
    basin_populations,
    bonds,
    conformer_starts,
    dihedrals,
    find_rotors,
    frame_basins,
    hydrogen_bonds,
    multiple_bonds,
    rotate,
)


def test_ethanol_has_one_rotor_that_matters_and_a_symmetric_methyl() -> None:
    atoms = molecule("CH3CH2OH")
    rotors = find_rotors(atoms)
    names = sorted((r.name(atoms), r.symmetric) for r in rotors)
    assert names == [("C-C-O-H", False), ("O-C-C-H", True)]
    oh = next(r for r in rotors if not r.symmetric)
    assert sorted(atoms.numbers[list(oh.moving)]) == [1, 8]  # the hydroxyl turns (O on the axis, its H)


def test_methanol_and_benzene_have_nothing_to_rotate() -> None:
    assert all(r.symmetric for r in find_rotors(molecule("CH3OH")))
    assert find_rotors(molecule("C6H6")) == []  # ring bonds are not rotors
    assert len(conformer_starts(molecule("C6H6"))) == 1


@pytest.mark.parametrize("name", ["CH3CH2OH", "C6H6", "CH3COOH", "C2H6SO", "CH3CH2NH2", "C4H4NH", "CCl4", "H2O"])
def test_bonds_are_the_ase_neighbour_list_with_natural_cutoffs(name: str) -> None:
    from ase.neighborlist import natural_cutoffs, neighbor_list

    atoms = molecule(name)
    atoms.rattle(0.1, seed=1)  # off the ideal geometry, as an MD frame is
    for scale in (1.0, 1.2):
        first, second = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=scale))
        expected = [set(second[first == i].tolist()) for i in range(len(atoms))]
        assert bonds(atoms, scale) == expected


def test_dihedral_matches_ase() -> None:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    for rotor in find_rotors(atoms):
        ase_phi = atoms.get_dihedral(*rotor.dihedral)
        ours = dihedrals(atoms.positions, [rotor])[0]
        assert ((ours - ase_phi + 180.0) % 360.0 - 180.0) == pytest.approx(0.0, abs=1e-8)


def test_rotation_turns_the_dihedral_and_keeps_bonds() -> None:
    atoms = molecule("CH3CH2OH")
    oh = next(r for r in find_rotors(atoms) if not r.symmetric)
    before = dihedrals(atoms.positions, [oh])[0]
    turned = rotate(atoms, oh, 120.0)
    after = dihedrals(turned.positions, [oh])[0]
    assert ((after - before - 120.0 + 180.0) % 360.0 - 180.0) == pytest.approx(0.0, abs=1e-8)
    _, b, c, _ = oh.dihedral
    d0, d1 = atoms.get_all_distances(), turned.get_all_distances()
    fixed = [i for i in range(len(atoms)) if i not in oh.moving]
    np.testing.assert_allclose(d1[np.ix_(fixed, fixed)], d0[np.ix_(fixed, fixed)], atol=1e-10)
    for i in oh.moving:
        assert d1[c, i] == pytest.approx(d0[c, i]) and d1[b, i] == pytest.approx(d0[b, i])


def test_ethanol_starts_cover_trans_and_both_gauche_basins() -> None:
    atoms = molecule("CH3CH2OH")
    rotors = find_rotors(atoms)
    starts = conformer_starts(atoms)
    assert len(starts) == 3
    np.testing.assert_array_equal(starts[0].positions, atoms.positions)
    pops = basin_populations(np.array([s.positions for s in starts]), rotors)
    (oh_pops,) = pops.values()
    assert oh_pops == pytest.approx({"trans": 1 / 3, "gauche+": 1 / 3, "gauche-": 1 / 3})
    assert len(conformer_starts(atoms, max_conformers=2)) == 2


def test_basins_and_their_names() -> None:
    np.testing.assert_array_equal(basin_index(np.array([180.0, -150.0, 60.0, 120.0, -60.0, 0.0])), [0, 0, 1, 1, 2, 2])
    atoms = molecule("CH3CH2OH")
    rotors = find_rotors(atoms)
    codes = frame_basins(np.array([s.positions for s in conformer_starts(atoms)]), rotors)
    assert [basin_name(int(c), 1) for c in codes] == ["trans", "gauche-", "gauche+"]


def test_periodic_structures_are_refused() -> None:
    atoms = molecule("CH3CH2OH", vacuum=3.0)
    atoms.pbc = True
    with pytest.raises(ValueError, match="molecules"):
        find_rotors(atoms)


def test_double_bonds_are_not_rotors() -> None:
    ethylene = molecule("C2H4")
    assert find_rotors(ethylene) == []  # C=C: each carbon has three neighbours, the bond is short
    propene = molecule("C3H6_Cs")  # CH2=CH-CH3: the methyl turns (a symmetric top), the C=C does not
    assert [(r.name(propene), r.symmetric) for r in find_rotors(propene)] == [("C-C-C-H", True)]
    propyne = molecule("C3H4_C3v")  # CH3-C#C-H: nothing to measure about a linear axis, no turn of a triple bond
    assert find_rotors(propyne) == []


def test_malonaldehyde_has_no_rotors_until_its_hydrogen_bond_opens(malonaldehyde) -> None:
    graph = bonds(malonaldehyde)
    assert hydrogen_bonds(malonaldehyde, graph) == [(5, 0)]  # O4-H5...O0 closes a six-membered quasi-ring
    assert multiple_bonds(malonaldehyde, graph) == {frozenset((0, 1)), frozenset((2, 3))}  # O0=C1, C2=C3
    assert find_rotors(malonaldehyde) == []
    assert conformer_starts(malonaldehyde, 9) == [malonaldehyde]
    # the hydroxyl turned away from O0: no hydrogen bond, so C1-C2 (single, conjugated) and C3-O4 turn
    opened = malonaldehyde.copy()
    opened.positions[5] = rotate(opened, Rotor((2, 3, 4, 5), (5,), False), 180.0).positions[5]
    assert hydrogen_bonds(opened, bonds(opened)) == []
    assert [(r.name(opened), r.label) for r in find_rotors(opened)] == [("C-C-C-O", "3-2-1-0"), ("C-C-O-H", "2-3-4-5")]
