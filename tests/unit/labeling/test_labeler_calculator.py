"""LabelerCalculator: a Labeler behind ASE's calculator interface."""

import numpy as np
import pytest
from ase import Atoms

from alloop.errors import AlloopError
from alloop.fidelity import load_fidelity
from alloop.labeling.calculator import LabelerCalculator
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.labeling.result import LabelResult, LabelStatus


class _Failing:
    fidelity = load_fidelity("hf-sto3g")

    def label(self, atoms: Atoms) -> LabelResult:
        return LabelResult.failure(len(atoms), LabelStatus.SCF_NOT_CONVERGED, "no convergence in 50 cycles")


def test_energy_and_forces_are_the_labelers(water):
    labeler = PySCFLabeler(load_fidelity("hf-sto3g"), threads=1)
    atoms = water.copy()
    atoms.calc = LabelerCalculator(labeler)
    direct = labeler.label(water)
    assert atoms.get_potential_energy() == pytest.approx(direct.energy_eV, abs=1e-8)
    np.testing.assert_allclose(atoms.get_forces(), direct.forces_eV_per_A, atol=1e-8)
    assert atoms.calc.n_calls == 1 and atoms.calc.last_result.ok  # forces came with the energy


def test_a_failed_label_raises_with_its_reason(water):
    atoms = water.copy()
    atoms.calc = LabelerCalculator(_Failing())
    with pytest.raises(AlloopError, match="scf_not_converged: no convergence in 50 cycles"):
        atoms.get_potential_energy()
