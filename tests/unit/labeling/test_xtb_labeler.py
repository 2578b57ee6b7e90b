"""XTBLabeler against tblite called directly, finite differences, failures as data, threads, the factory, the CLI."""

from __future__ import annotations

import importlib.metadata
import pickle

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from tblite.ase import TBLite

from alloop.cli import main
from alloop.errors import FidelityError
from alloop.fidelity import load_fidelity
from alloop.io import read_structures
from alloop.labeling.factory import labeler_for
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.labeling.result import LabelStatus
from alloop.labeling.threads import openmp_threads
from alloop.labeling.xtb_labeler import XTBLabeler
from alloop.testing.cells import water_box
from alloop.testing.labelers import check_labeler

TBLITE_NAMES = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
TBLITE_VERSION = importlib.metadata.version("tblite")


def rattled(name: str, seed: int = 0, amplitude: float = 0.05) -> Atoms:
    atoms = molecule(name)
    atoms.rattle(amplitude, seed=seed)
    return atoms


def direct(atoms: Atoms, method: str, charge: int, spin: int) -> tuple[float, np.ndarray]:
    """Energy and forces from tblite's own ASE calculator with the presets' settings."""
    atoms = atoms.copy()
    atoms.calc = TBLite(method=TBLITE_NAMES[method], charge=charge, multiplicity=spin + 1, accuracy=1.0,
                        electronic_temperature=300.0, max_iterations=250, verbosity=0)
    return atoms.get_potential_energy(), atoms.get_forces()


@pytest.mark.parametrize("method", ["gfn2-xtb", "gfn1-xtb"])
@pytest.mark.parametrize(("name", "charge", "spin"), [("H2O", 0, 0), ("CH3CH2OH", 0, 0), ("H2O", 1, 1),
                                                      ("CH3CH2OH", -1, 1), ("OH", 0, 1)])
def test_labels_match_tblite_called_directly(method, name, charge, spin):
    atoms = rattled(name, seed=3)
    result = labeler_for(load_fidelity(method, charge=charge, spin=spin)).label(atoms)
    assert result.ok, result.reason
    energy, forces = direct(atoms, method, charge, spin)
    assert abs(result.energy_eV - energy) < 1e-6
    assert np.abs(result.forces_eV_per_A - forces).max() < 1e-5
    assert result.fidelity_name == method and result.fidelity_hash == load_fidelity(method, charge=charge,
                                                                                     spin=spin).hash()
    assert result.provenance == {"tblite": TBLITE_VERSION}
    assert result.scf_cycles > 1 and result.cpu_seconds > 0 and result.wall_seconds > 0


def test_a_water_box_matches_tblite_called_directly_with_its_lattice():
    box = water_box(4, seed=1)
    box.rattle(0.03, seed=2)
    molecules = box.copy()
    molecules.pbc = False
    box.positions[0] += box.cell[0]  # an atom outside the cell: tblite takes unwrapped positions
    labeler = labeler_for(load_fidelity("gfn2-xtb"))
    result = labeler.label(box)
    assert result.ok, result.reason
    energy, forces = direct(box, "gfn2-xtb", 0, 0)  # tblite's ASE calculator passes the cell and pbc
    assert abs(result.energy_eV - energy) < 1e-6 and np.abs(result.forces_eV_per_A - forces).max() < 1e-5
    assert abs(labeler.label(molecules).energy_eV - result.energy_eV) > 1e-3  # the images count
    moved = box.copy()
    moved.positions[5] -= box.cell[2]
    assert abs(labeler.label(moved).energy_eV - result.energy_eV) < 1e-8
    check_labeler(labeler, box)


def test_charge_and_spin_change_the_label():
    atoms = rattled("H2O", seed=1)
    neutral = labeler_for(load_fidelity("gfn2-xtb")).label(atoms)
    cation = labeler_for(load_fidelity("gfn2-xtb", charge=1, spin=1)).label(atoms)
    assert neutral.ok and cation.ok and cation.energy_eV - neutral.energy_eV > 5.0  # an ionisation energy


@pytest.mark.parametrize("method", ["gfn2-xtb", "gfn1-xtb"])
def test_forces_are_minus_the_energy_gradient(method):
    atoms = rattled("CH3CH2OH", seed=2)
    labeler = labeler_for(load_fidelity(method))
    forces, h = labeler.label(atoms).forces_eV_per_A, 1e-3
    for i, c in [(0, 0), (2, 1), (5, 2), (8, 0)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, c] += h
        minus.positions[i, c] -= h
        fd = -(labeler.label(plus).energy_eV - labeler.label(minus).energy_eV) / (2 * h)
        assert abs(fd - forces[i, c]) < 1e-3, (i, c, fd, forces[i, c])
    assert np.linalg.norm(forces.sum(axis=0)) < 1e-8  # translation invariance


def test_conformance_kit_passes():
    broken = molecule("H2O")
    broken.positions[1] = broken.positions[0]
    check_labeler(labeler_for(load_fidelity("gfn2-xtb")), rattled("H2O", seed=4), failing_atoms=broken)


def test_failures_are_data():
    atoms = rattled("CH3CH2OH", seed=5)
    stuck = labeler_for(load_fidelity({"preset": "gfn2-xtb", "max_cycles": 2})).label(atoms)
    assert stuck.status is LabelStatus.SCF_NOT_CONVERGED and "SCF not converged in 2 cycles" in stuck.reason
    assert np.isnan(stuck.energy_eV) and np.isnan(stuck.forces_eV_per_A).all() and stuck.scf_cycles == 2
    assert stuck.provenance == {"tblite": TBLITE_VERSION} and stuck.fidelity_hash == load_fidelity("gfn2-xtb").hash()
    assert stuck.cpu_seconds > 0
    on_top = atoms.copy()
    on_top.positions[1] = on_top.positions[0]
    failed = labeler_for(load_fidelity("gfn1-xtb")).label(on_top)
    assert failed.status is LabelStatus.FAILED and "Too close interatomic distances" in failed.reason
    assert failed.reason.startswith("tblite") and np.isnan(failed.energy_eV)
    nan = atoms.copy()
    nan.positions[0, 0] = np.nan
    assert labeler_for(load_fidelity("gfn2-xtb")).label(nan).status is LabelStatus.FAILED


def test_what_it_cannot_describe_is_refused_up_front():
    labeler = labeler_for(load_fidelity("gfn2-xtb"))
    with pytest.raises(FidelityError, match="not U"):
        labeler.label(Atoms("UH2", positions=[[0, 0, 0], [2, 0, 0], [-2, 0, 0]]))
    with pytest.raises(FidelityError, match="cannot have spin"):
        labeler_for(load_fidelity("gfn2-xtb", spin=1)).label(molecule("H2O"))
    slab = molecule("H2O")
    slab.cell, slab.pbc = [5, 5, 5], [True, True, False]
    with pytest.raises(FidelityError, match="labels structures periodic in all three directions"):
        labeler.label(slab)
    with pytest.raises(TypeError):
        labeler.label(molecule("H2O").positions)
    with pytest.raises(ValueError, match="threads"):
        XTBLabeler(load_fidelity("gfn2-xtb"), threads=0)
    with pytest.raises(FidelityError, match="not xtb"):
        XTBLabeler(load_fidelity("hf-sto3g"))
    with pytest.raises(FidelityError, match="not pyscf"):
        PySCFLabeler(load_fidelity("gfn2-xtb"))


def test_factory_picks_the_adapter_from_the_family():
    xtb, hf = labeler_for(load_fidelity("gfn1-xtb"), threads=2), labeler_for(load_fidelity("hf-sto3g"), threads=3)
    assert isinstance(xtb, XTBLabeler) and xtb.threads == 2 and xtb.fidelity.name == "gfn1-xtb"
    assert isinstance(hf, PySCFLabeler) and hf.threads == 3


def test_threads_are_pinned_per_label_and_the_labeller_pickles():
    atoms = rattled("CH3CH2OH", seed=6)
    two = labeler_for(load_fidelity("gfn2-xtb"), threads=2)
    first = two.label(atoms)
    runtimes = openmp_threads()
    assert any("gomp" in name or "omp" in name for name in runtimes) and set(runtimes.values()) == {2}
    one = pickle.loads(pickle.dumps(labeler_for(load_fidelity("gfn2-xtb"))))
    again = one.label(atoms)
    assert set(openmp_threads().values()) == {1}
    assert abs(again.energy_eV - first.energy_eV) < 1e-9
    assert np.allclose(again.forces_eV_per_A, first.forces_eV_per_A, atol=1e-8)
    assert np.array_equal(atoms.positions, rattled("CH3CH2OH", seed=6).positions)  # input untouched


def test_cli_labels_with_xtb(tmp_path, capsys):
    out = tmp_path / "w.extxyz"
    argv = ["label", "H2O", "--fidelity", "gfn2-xtb", "--charge", "1", "--spin", "1", "-o", str(out), "--workers", "0"]
    assert main(argv) == 0
    assert "| ok | 1 |" in capsys.readouterr().out
    frame = read_structures(out)[0]
    assert frame.info["fidelity"] == "gfn2-xtb" and frame.info["tblite_version"] == TBLITE_VERSION
    assert frame.info["fidelity_hash"] == load_fidelity("gfn2-xtb", charge=1, spin=1).hash()
    energy, forces = direct(molecule("H2O"), "gfn2-xtb", 1, 1)
    assert abs(frame.get_potential_energy() - energy) < 1e-6
    assert np.abs(frame.get_forces() - forces).max() < 1e-5
