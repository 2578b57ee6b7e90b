"""Charged and open-shell species from a campaign file label correctly at both fidelities (issue 63).

A campaign's ``system.charge`` and ``system.spin`` (2S, the number of unpaired electrons: PySCF's ``spin`` and
tblite's ``uhf``; multiplicity 2S + 1) reach every level the campaign labels or runs with: the cheap level
(GFN2-xTB through tblite), the expensive one (HF/STO-3G and B3LYP/def2-SVP through PySCF; UHF/UKS when 2S > 0), the
Delta model's baseline and the bootstrap's MD surface. Each is compared with PySCF and tblite called directly here
(units converted with ASE's constants, not alloop's): hydroxide and hydronium (closed-shell ions), the hydroxyl and
methyl radicals (doublets), 1e-6 eV and 1e-5 eV/A. An electron count whose parity 2S cannot have is refused with
one line, by the config and by both labellers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import molecule
from ase.io import write
from pyscf import dft, gto, lib, scf

from alloop.campaign.phases.settings import training_plan
from alloop.config import CampaignConfig
from alloop.errors import ConfigError, FidelityError
from alloop.fidelity import Fidelity, load_fidelity
from alloop.labeling.factory import labeler_for
from alloop.potentials.baseline import Baseline

lib.num_threads(1)

ENERGY_TOL_EV = 1e-6
FORCE_TOL_EV_PER_A = 1e-5


def hydronium() -> Atoms:
    """H3O+: a pyramid, O-H 0.98 A, H-O-H about 112 degrees."""
    return Atoms("OH3", positions=[[0, 0, 0.10], [0.94, 0, -0.18], [-0.47, 0.81, -0.18], [-0.47, -0.81, -0.18]])


#: name -> (structure, charge, 2S)
SPECIES = {
    "hydroxide": (Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]]), -1, 0),
    "hydronium": (hydronium(), 1, 0),
    "hydroxyl": (molecule("OH"), 0, 1),
    "methyl": (molecule("CH3"), 0, 1),
}


def species(name: str) -> tuple[Atoms, int, int]:
    """The species ``name``, rattled (seeded) so that its forces are far from zero, with its charge and 2S."""
    atoms, charge, spin = SPECIES[name]
    atoms = atoms.copy()
    atoms.rattle(0.03, seed=5)
    return atoms, charge, spin


def campaign(tmp_path: Path, atoms: Atoms, charge: int, spin: int, expensive: str = "hf-sto3g") -> CampaignConfig:
    """A campaign file's config for ``atoms`` at ``charge`` and ``spin``: GFN2-xTB cheap labels, ``expensive``
    ones, a GFN2-xTB baseline and GFN2-xTB MD for the bootstrap (the library's defaults)."""
    path = tmp_path / "start.xyz"
    write(path, atoms)
    data = {"system": {"structures": str(path), "charge": charge, "spin": spin},
            "fidelities": {"cheap": "gfn2-xtb", "expensive": expensive}}
    return CampaignConfig.from_dict(data, base_dir=tmp_path)


def direct_pyscf(atoms: Atoms, charge: int, spin: int, xc: str | None, basis: str,
                 restricted_open: bool = False) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/A) of PySCF objects built here: RHF/RKS for closed shells, UHF/UKS for open ones
    (ROHF with ``restricted_open``), at PySCF's default guess and the presets' SCF tolerance."""
    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)],
                unit="Angstrom", basis=basis, charge=charge, spin=spin, symmetry=False, verbose=0)
    if xc is None:
        mf = scf.ROHF(mol) if restricted_open else (scf.UHF(mol) if spin else scf.RHF(mol))
    else:
        mf = dft.UKS(mol) if spin else dft.RKS(mol)
        mf.xc, mf.grids.level = xc, 3
    mf.conv_tol = 1e-9
    energy = mf.kernel()
    assert mf.converged
    return energy * units.Hartree, -mf.nuc_grad_method().kernel() * units.Hartree / units.Bohr


def direct_tblite(atoms: Atoms, charge: int, spin: int) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/A) of a tblite Calculator built here (GFN2-xTB, tblite's own defaults written
    out: accuracy 1, 300 K electronic temperature, 250 SCC cycles)."""
    from tblite.interface import Calculator

    calc = Calculator("GFN2-xTB", atoms.numbers, atoms.positions / units.Bohr, charge=float(charge), uhf=spin)
    calc.set("verbosity", 0)
    calc.set("accuracy", 1.0)
    calc.set("temperature", 300.0 * units.kB / units.Hartree)
    calc.set("max-iter", 250)
    result = calc.singlepoint()
    return float(result.get("energy")) * units.Hartree, -result.get("gradient") * units.Hartree / units.Bohr


def assert_label_matches(fidelity: Fidelity, atoms: Atoms, energy: float, forces: np.ndarray) -> None:
    result = labeler_for(fidelity).label(atoms)
    assert result.ok, result.reason
    assert abs(result.energy_eV - energy) < ENERGY_TOL_EV, (result.energy_eV, energy)
    assert np.abs(result.forces_eV_per_A - forces).max() < FORCE_TOL_EV_PER_A
    assert result.fidelity_hash == fidelity.hash()


@pytest.mark.parametrize("name", sorted(SPECIES))
def test_the_campaigns_charge_and_spin_reach_every_level(tmp_path, name):
    atoms, charge, spin = species(name)
    cfg = campaign(tmp_path, atoms, charge, spin)
    baseline = training_plan(cfg).baseline
    assert baseline is not None
    levels = [cfg.cheap_fidelity, cfg.expensive_fidelity, cfg.bootstrap_surface(), Fidelity(**baseline)]
    assert [(f.charge, f.spin) for f in levels if f is not None] == [(charge, spin)] * 4
    assert cfg.expensive_fidelity.unrestricted == (spin > 0)


@pytest.mark.parametrize("name", sorted(SPECIES))
def test_the_expensive_level_equals_pyscf_called_directly(tmp_path, name):
    atoms, charge, spin = species(name)
    cfg = campaign(tmp_path, atoms, charge, spin)
    energy, forces = direct_pyscf(atoms, charge, spin, None, "sto-3g")
    assert_label_matches(cfg.expensive_fidelity, atoms, energy, forces)
    if spin:  # unrestricted, not restricted open-shell: UHF lies below ROHF (spin polarisation)
        rohf, _ = direct_pyscf(atoms, charge, spin, None, "sto-3g", restricted_open=True)
        assert rohf > energy + 1e-4


@pytest.mark.parametrize("name", ["hydroxide", "hydroxyl"])
def test_a_dft_expensive_level_is_rks_or_uks_as_pyscf_called_directly(tmp_path, name):
    atoms, charge, spin = species(name)
    cfg = campaign(tmp_path, atoms, charge, spin, expensive="b3lyp-svp")
    energy, forces = direct_pyscf(atoms, charge, spin, "b3lyp", "def2-svp")
    assert_label_matches(cfg.expensive_fidelity, atoms, energy, forces)


@pytest.mark.parametrize("name", sorted(SPECIES))
def test_the_cheap_level_and_the_baseline_equal_tblite_called_directly(tmp_path, name):
    atoms, charge, spin = species(name)
    cfg = campaign(tmp_path, atoms, charge, spin)
    energy, forces = direct_tblite(atoms, charge, spin)
    assert_label_matches(cfg.cheap_fidelity, atoms, energy, forces)
    baseline = training_plan(cfg).baseline
    assert baseline is not None
    energies, baseline_forces, reasons = Baseline(baseline).compute([atoms])
    assert reasons == [""]
    assert abs(energies[0] - energy) < ENERGY_TOL_EV
    assert np.abs(baseline_forces[0] - forces).max() < FORCE_TOL_EV_PER_A


@pytest.mark.parametrize(("name", "charge", "spin"), [("hydroxyl", 0, 0), ("hydroxide", -1, 1), ("methyl", 1, 1)])
def test_an_impossible_charge_and_spin_is_refused_in_one_line(tmp_path, name, charge, spin):
    atoms, _, _ = species(name)
    n_electrons = int(atoms.numbers.sum()) - charge
    with pytest.raises(ConfigError, match=rf"^system\.spin: {n_electrons} electrons .* cannot have spin \(2S\) = "
                                          rf"{spin}; the parities of the electron count and 2S must agree$"):
        campaign(tmp_path, atoms, charge, spin)
    for preset in ("hf-sto3g", "gfn2-xtb"):
        labeler = labeler_for(load_fidelity(preset, charge=charge, spin=spin))
        with pytest.raises(FidelityError, match=rf"^fidelity '{preset}': {n_electrons} electrons cannot have spin"):
            labeler.label(atoms)
