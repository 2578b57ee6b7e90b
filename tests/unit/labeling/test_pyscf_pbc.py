"""The periodic PySCF labeller (family pyscf-pbc): PySCF called directly, the conformance kit across the cell's
boundary, lattice translations, one-line errors for the wrong kind of structure, the label command."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from alloop.errors import FidelityError
from alloop.fidelity import load_fidelity
from alloop.labeling.factory import labeler_for
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.labeling.pyscf_pbc import PeriodicPySCFLabeler
from alloop.testing.labelers import check_labeler
from alloop.units import BOHR_TO_ANGSTROM, HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM, HARTREE_TO_EV

#: a coarse plane-wave cutoff keeps a water box label under a second (the presets use 400 and 600 Eh)
FAST = {"preset": "pbe-gth-szv", "ke_cutoff_Eh": 80.0}
BOX_A = 4.0


@pytest.fixture(scope="module")
def fidelity():
    return load_fidelity(FAST)


@pytest.fixture(scope="module")
def labeler(fidelity):
    return labeler_for(fidelity)


def water_box(shift: float = 0.0) -> Atoms:
    """One rattled water in a 4 A cube; ``shift`` moves it along x (an H may leave [0, L): positions unwrapped)."""
    atoms = molecule("H2O")
    atoms.rattle(0.05, seed=3)
    atoms.set_cell([BOX_A] * 3)
    atoms.center()
    atoms.positions[:, 0] += shift
    atoms.pbc = True
    return atoms


def test_factory_and_presets(fidelity, labeler):
    assert isinstance(labeler, PeriodicPySCFLabeler) and labeler.fidelity == fidelity
    for name, basis, cutoff in (("pbe-gth-szv", "gth-szv", 400.0), ("pbe-gth-dzvp", "gth-dzvp", 600.0)):
        preset = load_fidelity(name)
        assert preset.periodic and preset.family == "pyscf-pbc" and preset.basis == basis
        assert preset.pseudo == "gth-pbe" and preset.ke_cutoff_Eh == cutoff
    assert fidelity.hash() != load_fidelity("pbe-gth-szv").hash()  # the cutoff changes the numbers
    with pytest.raises(FidelityError, match="not pyscf-pbc"):
        PeriodicPySCFLabeler(load_fidelity("hf-sto3g"))


def test_labels_equal_pyscf_called_directly(fidelity, labeler):
    from pyscf.pbc import dft, gto
    from pyscf.pbc.dft import multigrid

    atoms = water_box()
    result = labeler.label(atoms)
    assert result.ok, result.reason
    cell = gto.Cell()
    # Angstrom, PySCF's default
    cell.atom = [(int(z), tuple(p)) for z, p in zip(atoms.numbers, atoms.positions, strict=True)]
    cell.a = atoms.cell.array
    cell.basis, cell.pseudo, cell.ke_cutoff, cell.verbose = "gth-szv", "gth-pbe", 80.0, 0
    cell.build()
    mf = dft.RKS(cell, xc="pbe")
    mf._numint = multigrid.MultiGridNumInt2(cell)
    mf.conv_tol, mf.verbose = 1e-8, 0
    energy = mf.kernel()
    grad = mf.nuc_grad_method().kernel()
    assert abs(result.energy_eV - energy * HARTREE_TO_EV) < 1e-6
    np.testing.assert_allclose(result.forces_eV_per_A, -grad * HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM, atol=1e-5)
    assert result.provenance["pyscf"] and result.provenance["xc"]
    assert result.fidelity_hash == fidelity.hash() and result.cpu_seconds > 0
    assert abs(BOHR_TO_ANGSTROM - 0.529177) < 1e-6


def test_conformance_kit_across_the_boundary(labeler):
    atoms = water_box(shift=BOX_A / 2)  # the molecule straddles the cell's face at x = L
    assert atoms.positions[:, 0].min() < BOX_A < atoms.positions[:, 0].max()
    check_labeler(labeler, atoms, gradient_rtol=0.01, atol_eV=1e-7, atol_force_eV_per_A=1e-5)


def test_lattice_translations_and_wrapping_change_nothing(labeler):
    atoms = water_box()
    base = labeler.label(atoms)
    moved = atoms.copy()
    moved.positions[1] += moved.cell[0] - moved.cell[2]  # one atom by lattice vectors
    wrapped = water_box(shift=BOX_A / 2)
    wrapped.wrap()
    straddling = labeler.label(water_box(shift=BOX_A / 2))
    for other, ref in ((labeler.label(moved), base), (labeler.label(wrapped), straddling)):
        assert other.ok and abs(other.energy_eV - ref.energy_eV) < 1e-7
        np.testing.assert_allclose(other.forces_eV_per_A, ref.forces_eV_per_A, atol=1e-5)


@pytest.mark.parametrize(("fid", "structure", "message"), [
    (FAST, molecule("H2O"), r"labels structures periodic in all three directions, not pbc=\[False, False, False\]"),
    (FAST, Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], cell=[4, 4, 4], pbc=[True, True, False]),
     "not pbc=\\[True, True, False\\]"),
    (FAST, Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], pbc=True), "the structure's cell has no volume"),
    ("hf-sto3g", water_box(), "labels isolated molecules; this structure is periodic"),
    ("gfn2-xtb", Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], cell=[4, 4, 4], pbc=[True, True, False]),
     "labels structures periodic in all three directions, not pbc=\\[True, True, False\\]"),
    ({**FAST, "basis": "gth-none"}, water_box(), "basis 'gth-none' does not cover element H"),
    ({**FAST, "pseudo": "gth-none"}, water_box(), "pseudopotential 'gth-none' does not cover element H"),
])
def test_the_wrong_kind_of_structure_is_one_line(fid, structure, message):
    fidelity = load_fidelity(fid)
    with pytest.raises(FidelityError, match=message) as info:
        labeler_for(fidelity).label(structure)
    assert "\n" not in str(info.value)


def test_label_command_on_a_water_box(tmp_path, capsys, monkeypatch):
    """``alloop label`` with a periodic preset: the shipped presets plus pbe-gth-szv at the coarse cutoff of
    ``FAST`` (a site's own preset folder, ``ALLOOP_CONFIGS``), so a label takes a second, not twenty."""
    import shutil

    import yaml
    from ase.io import read, write

    from alloop.cli import main
    from alloop.presets import configs_dir, load_preset

    presets = tmp_path / "presets"
    shutil.copytree(configs_dir(), presets)
    coarse = {**load_preset("fidelities", "pbe-gth-szv"), "ke_cutoff_Eh": FAST["ke_cutoff_Eh"]}
    (presets / "fidelities" / "pbe-gth-szv-coarse.yaml").write_text(yaml.safe_dump(coarse))
    monkeypatch.setenv("ALLOOP_CONFIGS", str(presets))
    source = tmp_path / "box.extxyz"
    write(source, [water_box(), water_box(shift=0.3)])
    out = tmp_path / "labelled.extxyz"
    assert main(["label", str(source), "--fidelity", "pbe-gth-szv-coarse", "-o", str(out), "--workers", "1"]) == 0
    frames = read(out, ":")
    assert len(frames) == 2 and all(f.pbc.all() for f in frames)
    np.testing.assert_array_equal(frames[0].cell.array, water_box().cell.array)
    assert frames[0].get_forces().shape == (3, 3)
    assert main(["label", str(source), "--fidelity", "hf-sto3g", "-o", str(tmp_path / "x.extxyz")]) == 1
    assert "labels isolated molecules; this structure is periodic" in capsys.readouterr().err


def test_molecular_labeller_refuses_a_cell_before_computing():
    with pytest.raises(FidelityError, match="use a periodic fidelity such as pbe-gth-szv"):
        PySCFLabeler(load_fidelity("hf-sto3g")).label(water_box())
