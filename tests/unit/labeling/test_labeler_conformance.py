"""The Labeler conformance kit passes on PySCFLabeler and catches broken labellers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from alloop.fidelity import load_fidelity
from alloop.labeling.base import Labeler
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.testing.labelers import check_labeler, check_result_shape
from alloop.units import HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM
from harness.faults import DelayedLabeler


@pytest.fixture(scope="module")
def labeler():
    return PySCFLabeler(load_fidelity("hf-sto3g"))


@pytest.fixture
def structure():
    atoms = molecule("H2O")
    atoms.rattle(0.05, seed=5)
    return atoms


@pytest.fixture
def on_top():
    atoms = molecule("H2O")
    atoms.positions[2] = atoms.positions[0]
    return atoms


class _Wrapper:
    def __init__(self, inner):
        self.inner = inner

    @property
    def fidelity(self):
        return self.inner.fidelity


class HartreeForces(_Wrapper):
    """Forgets to convert the gradient: Hartree/Bohr."""

    def label(self, atoms: Atoms) -> LabelResult:
        r = self.inner.label(atoms)
        return dataclasses.replace(r, forces_eV_per_A=r.forces_eV_per_A / HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM)


class Raising(_Wrapper):
    """Raises on physics failures instead of returning them."""

    def label(self, atoms: Atoms) -> LabelResult:
        r = self.inner.label(atoms)
        if not r.ok:
            raise RuntimeError(r.reason)
        return r


class Drifting(_Wrapper):
    """Gives a slightly different energy every call."""

    calls = 0

    def label(self, atoms: Atoms) -> LabelResult:
        Drifting.calls += 1
        r = self.inner.label(atoms)
        return dataclasses.replace(r, energy_eV=r.energy_eV + 1e-6 * Drifting.calls)


def test_pyscf_labeler_conforms(labeler, structure, on_top):
    assert isinstance(labeler, Labeler)
    result = check_labeler(labeler, structure, failing_atoms=on_top)
    assert result.ok and result.forces_eV_per_A.shape == (3, 3)


def test_wrong_force_units_are_caught(labeler, structure):
    with pytest.raises(AssertionError, match="wrong units or sign"):
        check_labeler(HartreeForces(labeler), structure)


def test_raising_on_failure_is_caught(labeler, structure, on_top):
    with pytest.raises(AssertionError, match="raised RuntimeError instead of returning a failure"):
        check_labeler(Raising(labeler), structure, failing_atoms=on_top)


def test_nondeterminism_is_caught(labeler, structure):
    with pytest.raises(AssertionError, match="not deterministic"):
        check_labeler(Drifting(labeler), structure)


def test_result_shape_checks():
    good = LabelResult.failure(2, LabelStatus.FAILED, "x", fidelity_name="f", fidelity_hash="h")
    check_result_shape(good, 2)
    with pytest.raises(AssertionError, match="shape"):
        check_result_shape(good, 3)
    with pytest.raises(AssertionError, match="not LabelResult"):
        check_result_shape({"energy": 1.0}, 2)
    unrecorded = dataclasses.replace(good, fidelity_hash="")
    with pytest.raises(AssertionError, match="fidelity name/hash"):
        check_result_shape(unrecorded, 2)


def test_delayed_labeler_returns_the_inner_result(labeler, structure):
    delayed = DelayedLabeler(labeler, 0.05)
    result = delayed.label(structure)
    direct = labeler.label(structure)
    assert delayed.fidelity is labeler.fidelity
    assert result.ok and np.isfinite(result.energy_eV) and result.energy_eV == direct.energy_eV
    assert np.array_equal(result.forces_eV_per_A, direct.forces_eV_per_A) and result.fidelity_hash == direct.fidelity_hash
    assert result.wall_seconds >= 0.05  # the delay is part of the label's cost, as a scheduler sees it
