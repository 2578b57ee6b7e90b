"""alloop.testing's wait labeller: a valid, deterministic label after a fixed wait that costs no CPU."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
from ase.build import molecule

from alloop.fidelity import load_fidelity
from alloop.labeling.base import Labeler
from alloop.labeling.result import LabelStatus
from alloop.testing.cells import water_box
from alloop.testing.labelers import (
    MORSE_A_PER_A,
    MORSE_D_EV,
    MORSE_R0_A,
    WaitLabeler,
    check_labeler,
    wait_labeler,
)


@pytest.fixture(scope="module")
def fidelity():
    return load_fidelity("hf-sto3g")


def test_passes_the_conformance_kit_on_a_molecule_and_a_periodic_box(fidelity) -> None:
    labeler = wait_labeler(0.01)(fidelity)
    assert isinstance(labeler, Labeler)
    ethanol = molecule("CH3CH2OH")
    on_top = ethanol.copy()
    on_top.positions[3] = on_top.positions[0] + 0.01
    result = check_labeler(labeler, ethanol, failing_atoms=on_top)
    assert (result.fidelity_name, result.fidelity_hash) == (fidelity.name, fidelity.hash())
    check_labeler(labeler, water_box(4, seed=1))


def test_energy_of_a_pair_is_the_morse_formula(fidelity) -> None:
    atoms = molecule("H2")
    atoms.positions[1] = atoms.positions[0] + [0.0, 0.0, 2.1]
    result = WaitLabeler(fidelity, 0.0).label(atoms)
    e = np.exp(-MORSE_A_PER_A * (2.1 - MORSE_R0_A))
    assert result.energy_eV == pytest.approx(MORSE_D_EV * ((1 - e) ** 2 - 1), rel=1e-12)
    pull = 2 * MORSE_D_EV * MORSE_A_PER_A * (1 - e) * e  # dE/dr > 0 beyond r0: the atoms attract
    assert result.forces_eV_per_A[0] == pytest.approx([0.0, 0.0, pull], abs=1e-12)
    assert result.forces_eV_per_A[1] == pytest.approx([0.0, 0.0, -pull], abs=1e-12)


def test_waits_the_given_time_without_cpu_and_survives_pickling(fidelity) -> None:
    labeler = pickle.loads(pickle.dumps(wait_labeler(0.2)(fidelity)))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = labeler.label(molecule("CH3CH2OH"))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert result.status is LabelStatus.OK
    assert wall >= 0.2 and result.wall_seconds >= 0.2
    assert cpu < 0.05 and result.cpu_seconds < 0.05


def test_refuses_a_negative_wait(fidelity) -> None:
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        wait_labeler(-1.0)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        WaitLabeler(fidelity, float("nan"))
