"""The molecules benchmark's table (``benchmarks/lib/molecules.py``): each structure file loads with the table's
formula as one molecule, and its charge and 2S agree with its electron count at both of the benchmark's levels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from alloop.errors import FidelityError
from alloop.fidelity import load_fidelity

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts' own layout: benchmarks/ on sys.path, lib.* importable

from lib.molecules import EXPENSIVE, MOLECULES, electrons  # noqa: E402
from make_molecule_structures import bond_set, fragments  # noqa: E402


@pytest.mark.parametrize("name", list(MOLECULES))
def test_structure_has_the_table_formula_and_is_one_molecule(name: str) -> None:
    entry = MOLECULES[name]
    atoms = read(entry.path)
    assert atoms.get_chemical_formula() == Atoms(entry.formula).get_chemical_formula()
    assert fragments(len(atoms), bond_set(atoms)) == 1
    distances = atoms.get_all_distances() + 10.0 * np.eye(len(atoms))
    assert distances.min() > 0.9  # no two atoms on top of each other (O-H, the shortest bond, is about 0.97 A)


@pytest.mark.parametrize("name", list(MOLECULES))
def test_charge_and_spin_fit_the_electron_count(name: str) -> None:
    entry = MOLECULES[name]
    numbers = read(entry.path).numbers.tolist()
    n = electrons(numbers, entry.charge)
    assert (n - entry.spin) % 2 == 0 and 0 <= entry.spin <= n
    for level in (EXPENSIVE, "hf-sto3g", "gfn2-xtb"):
        load_fidelity(level, charge=entry.charge, spin=entry.spin).check_structure(numbers)
    with pytest.raises(FidelityError, match="parities"):
        load_fidelity(EXPENSIVE, charge=entry.charge, spin=entry.spin + 1).check_structure(numbers)


def test_the_table_has_the_kinds_the_issue_asks_for() -> None:
    charges = {entry.charge for entry in MOLECULES.values()}
    assert charges - {0}, "a charged species"
    assert any(entry.spin for entry in MOLECULES.values()), "an open-shell species"
    assert any("Cl" in entry.formula for entry in MOLECULES.values()), "a halogen"
    assert len(MOLECULES) >= 6
