"""PySCFLabeler against PySCF called by hand, finite differences, rotations, failures as data."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import molecule
from pyscf import dft, gto, lib, scf
from scipy.spatial.transform import Rotation

from alloop.errors import FidelityError
from alloop.fidelity import Fidelity, load_fidelity
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.labeling.result import LabelStatus

lib.num_threads(1)


def rattled(name: str, seed: int, scale: float = 0.05) -> Atoms:
    atoms = molecule(name)
    atoms.positions += np.random.default_rng(seed).normal(scale=scale, size=atoms.positions.shape)
    return atoms


def direct_pyscf(atoms: Atoms, method: str, basis: str, charge: int = 0, spin: int = 0) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/A) from PySCF objects built here, independently of alloop."""
    mol = gto.M(
        atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)],
        unit="Angstrom",
        basis=basis,
        charge=charge,
        spin=spin,
        verbose=0,
    )
    if method == "hf":
        mf = scf.UHF(mol) if spin else scf.RHF(mol)
    else:
        mf = dft.UKS(mol) if spin else dft.RKS(mol)
        mf.xc = method
        mf.grids.level = 3
    mf.conv_tol = 1e-9
    energy = mf.kernel()
    assert mf.converged
    grad = mf.nuc_grad_method().kernel()
    return energy * units.Hartree, -grad * units.Hartree / units.Bohr


CASES = [
    ("H2O", "hf-sto3g", "hf", "sto-3g"),
    ("H2O", "b3lyp-svp", "b3lyp", "def2-svp"),
    ("CH3CH2OH", "hf-sto3g", "hf", "sto-3g"),
    # the only ethanol DFT call: ~6 s per side on a quiet core, up to ~25 s on the shared machine
    pytest.param("CH3CH2OH", "b3lyp-svp", "b3lyp", "def2-svp", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,preset,method,basis", CASES)
def test_matches_pyscf_called_directly(name, preset, method, basis):
    atoms = rattled(name, seed=7, scale=0.03)
    result = PySCFLabeler(load_fidelity(preset)).label(atoms)
    assert result.status is LabelStatus.OK, result.reason
    energy, forces = direct_pyscf(atoms, method, basis)
    assert abs(result.energy_eV - energy) < 1e-6
    assert np.abs(result.forces_eV_per_A - forces).max() < 1e-5
    assert result.fidelity_name == preset and result.fidelity_hash == load_fidelity(preset).hash()
    assert result.scf_cycles > 0 and result.cpu_seconds > 0 and result.wall_seconds > 0


def test_open_shell_is_unrestricted_and_matches_uhf():
    atoms = rattled("H2O", seed=2)
    fid = load_fidelity("hf-sto3g", charge=1, spin=1)
    result = PySCFLabeler(fid).label(atoms)
    assert result.ok, result.reason
    energy, forces = direct_pyscf(atoms, "hf", "sto-3g", charge=1, spin=1)
    assert abs(result.energy_eV - energy) < 1e-6
    assert np.abs(result.forces_eV_per_A - forces).max() < 1e-5


@pytest.fixture(scope="module")
def hf_water():
    atoms = rattled("H2O", seed=3)
    labeler = PySCFLabeler(load_fidelity("hf-sto3g"))
    return atoms, labeler, labeler.label(atoms)


def test_forces_are_central_differences_of_energies(hf_water):
    atoms, labeler, result = hf_water
    h = 1e-3
    for atom, axis in [(0, 2), (1, 0), (1, 1), (2, 2)]:
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * h
            energies.append(labeler.label(moved).energy_eV)
        fd = -(energies[0] - energies[1]) / (2 * h)
        assert abs(fd - result.forces_eV_per_A[atom, axis]) < 1e-4, (atom, axis)


def test_forces_rotate_and_translate_with_the_molecule(hf_water):
    atoms, labeler, result = hf_water
    rot = Rotation.random(random_state=11).as_matrix()
    moved = atoms.copy()
    centre = atoms.positions.mean(axis=0)
    moved.positions = (atoms.positions - centre) @ rot.T + centre + np.array([1.5, -2.0, 0.7])
    turned = labeler.label(moved)
    assert abs(turned.energy_eV - result.energy_eV) < 1e-6
    assert np.abs(turned.forces_eV_per_A - result.forces_eV_per_A @ rot.T).max() < 1e-5


def test_same_input_gives_identical_numbers(hf_water):
    atoms, labeler, result = hf_water
    again = PySCFLabeler(load_fidelity("hf-sto3g")).label(atoms.copy())
    assert again.energy_eV == result.energy_eV
    assert np.array_equal(again.forces_eV_per_A, result.forces_eV_per_A)


def test_unconverged_scf_is_a_status_and_newton_fallback_rescues(hf_water):
    atoms, _, reference = hf_water
    stuck = PySCFLabeler(load_fidelity({"preset": "hf-sto3g", "max_cycles": 1})).label(atoms)
    assert stuck.status is LabelStatus.SCF_NOT_CONVERGED
    assert "not converged" in stuck.reason and np.isnan(stuck.energy_eV)
    assert stuck.forces_eV_per_A.shape == (3, 3) and np.isnan(stuck.forces_eV_per_A).all()
    # DIIS needs more than 3 cycles here; the second-order fallback finishes the job
    rescued = PySCFLabeler(load_fidelity({"preset": "hf-sto3g", "max_cycles": 3})).label(atoms)
    assert rescued.ok and "Newton" in rescued.reason
    assert abs(rescued.energy_eV - reference.energy_eV) < 1e-6
    assert np.abs(rescued.forces_eV_per_A - reference.forces_eV_per_A).max() < 1e-4


def test_absurd_geometries_are_failures_not_exceptions():
    labeler = PySCFLabeler(load_fidelity("hf-sto3g"))
    on_top = molecule("H2O")
    on_top.positions[1] = on_top.positions[0]
    failed = labeler.label(on_top)
    assert failed.status is LabelStatus.FAILED and failed.reason
    squeezed = molecule("H2O")
    squeezed.positions[1] = squeezed.positions[0] + [0.0, 0.0, 0.05]
    absurd = labeler.label(squeezed)
    assert absurd.status is LabelStatus.INCONSISTENT and "beyond the limit" in absurd.reason


@pytest.mark.filterwarnings("ignore:Basis may be available")
def test_bad_inputs_are_rejected_with_a_clear_message(water):
    hf = load_fidelity("hf-sto3g")
    with pytest.raises(FidelityError, match="does not cover element Xe"):
        PySCFLabeler(hf).label(Atoms("Xe", positions=[[0, 0, 0]]))
    with pytest.raises(FidelityError, match="cannot have spin"):
        PySCFLabeler(load_fidelity("hf-sto3g", spin=1)).label(water)
    with pytest.raises(FidelityError, match="leaves 0 electrons"):
        PySCFLabeler(load_fidelity("hf-sto3g", charge=10)).label(water)
    with pytest.raises(FidelityError, match="density-fitted CCSD\\(T\\) has no analytic gradient"):
        PySCFLabeler(load_fidelity({"preset": "ccsdt-dz", "density_fit": True}))
    with pytest.raises(FidelityError, match="labels isolated molecules; this structure is periodic"):
        periodic = water.copy()
        periodic.cell, periodic.pbc = [5, 5, 5], True
        PySCFLabeler(hf).label(periodic)
    with pytest.raises(TypeError, match="expected ase.Atoms"):
        PySCFLabeler(hf).label(water.positions)
    with pytest.raises(ValueError, match="threads"):
        PySCFLabeler(hf, threads=0)


@pytest.mark.parametrize("preset", ["mp2-dz", "ccsdt-dz", "ccsdt-fc-dz"])
def test_correlated_forces_match_finite_differences(preset):
    """One directional central difference checks every component at once (3 labels; CCSD(T) ~1-4 s each)."""
    atoms = rattled("H2O", seed=3)
    labeler = PySCFLabeler(load_fidelity(preset))
    result = labeler.label(atoms)
    assert result.ok, result.reason
    forces = result.forces_eV_per_A
    assert np.isfinite(forces).all() and np.abs(forces.sum(axis=0)).max() < 1e-6
    rng = np.random.default_rng(1)
    direction = forces / np.linalg.norm(forces) + 0.5 * rng.normal(size=forces.shape) / 3
    direction /= np.linalg.norm(direction)
    h = 1e-3
    plus, minus = atoms.copy(), atoms.copy()
    plus.positions += h * direction
    minus.positions -= h * direction
    fd = -(labeler.label(plus).energy_eV - labeler.label(minus).energy_eV) / (2 * h)
    assert abs(fd - np.sum(forces * direction)) < 1e-3


def test_frozen_core_freezes_the_oxygen_1s_and_changes_the_numbers():
    from pyscf import cc

    atoms = rattled("H2O", seed=5)
    frozen = PySCFLabeler(load_fidelity({"preset": "mp2-dz", "frozen_core": True})).label(atoms)
    full = PySCFLabeler(load_fidelity("mp2-dz")).label(atoms)
    assert frozen.ok and full.ok
    assert frozen.energy_eV > full.energy_eV + 0.01  # less correlation energy without the 1s pair
    mol = gto.M(atom=[(s, p) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)],
                basis="cc-pvdz", verbose=0)
    mf = scf.RHF(mol).run(conv_tol=1e-10)
    direct = cc.CCSD(mf, frozen=1).set(conv_tol=1e-9).run()
    labelled = PySCFLabeler(load_fidelity({"preset": "ccsdt-dz", "method": "ccsd", "frozen_core": True})).label(atoms)
    assert labelled.ok and labelled.energy_eV == pytest.approx(direct.e_tot * units.Hartree, abs=1e-5)


def test_density_fitted_dft_labels():
    result = PySCFLabeler(load_fidelity("pbe-svp-df")).label(rattled("H2O", seed=4))
    assert result.ok, result.reason
    assert np.abs(result.forces_eV_per_A.sum(axis=0)).max() < 0.05


def test_custom_fidelity_and_limits_are_used(hf_water):
    atoms, _, result = hf_water
    fid = Fidelity(name="strict", method="hf", basis="sto-3g")
    strict = PySCFLabeler(fid, max_force_eV_per_A=0.5).label(atoms)
    assert strict.status is LabelStatus.INCONSISTENT and "beyond the limit 0.5" in strict.reason
    assert np.abs(result.forces_eV_per_A).max() > 0.5
