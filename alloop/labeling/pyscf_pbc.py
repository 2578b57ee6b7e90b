"""PeriodicPySCFLabeler: energy (eV) and forces (eV/Angstrom) of a periodic cell at the Gamma point.

Fidelities of family ``pyscf-pbc``: an LDA or GGA functional, GTH
pseudopotentials and basis sets, PySCF's multigrid integrator
(``pyscf.pbc.dft.multigrid.MultiGridNumInt2``: periodic RKS/UKS gradients need
it, and without it the SCF of 4 waters takes minutes instead of seconds), one
k-point (Gamma; a k-point mesh is not offered: for the liquids and supercells
alloop samples, Gamma in a large enough cell is the usual choice and the
gradients stay cheap). Stress is not computed.

Units are converted once, here (Angstrom -> Bohr for positions and lattice
vectors; Hartree -> eV, Hartree/Bohr -> eV/Angstrom), with ``alloop.units``.
Statuses and their meaning are the molecular labeller's
(:mod:`alloop.labeling.pyscf_labeler`), except that an SCF that DIIS does not
converge is ``scf_not_converged`` at once (PySCF's second-order solver fails
inside the multigrid integrator); PySCF errors are ``failed``, absurd or
non-finite numbers ``inconsistent``. A structure that is not periodic in all three directions is
refused with one line (:meth:`alloop.fidelity.Fidelity.check_periodicity`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from alloop.errors import FidelityError
from alloop.fidelity import Fidelity
from alloop.labeling.common import FidelityLabeler, Outcome, label_with, structure_numbers
from alloop.labeling.pyscf_labeler import PHYSICS_ERRORS
from alloop.labeling.pyscf_methods import configure_scf, run_scf, scf_gradient
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.labeling.threads import set_compute_threads
from alloop.units import BOHR_TO_ANGSTROM, HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM, HARTREE_TO_EV


def build_cell(numbers: np.ndarray, positions_bohr: np.ndarray, lattice_bohr: np.ndarray, fidelity: Fidelity):
    """A PySCF periodic Cell in Bohr (already converted), quiet, with the fidelity's basis, pseudopotential and
    plane-wave cutoff."""
    from pyscf.pbc import gto

    cell = gto.Cell()
    cell.atom = [(int(z), tuple(float(x) for x in xyz)) for z, xyz in zip(numbers, positions_bohr, strict=True)]
    cell.a = np.asarray(lattice_bohr, dtype=float)
    cell.unit = "Bohr"
    cell.basis = fidelity.basis
    cell.pseudo = fidelity.pseudo
    cell.ke_cutoff = fidelity.ke_cutoff_Eh
    cell.charge = fidelity.charge
    cell.spin = fidelity.spin
    cell.max_memory = fidelity.max_memory_MB
    cell.verbose = 0
    cell.build()
    return cell


def make_periodic_scf(cell: Any, fidelity: Fidelity):
    """The (unconverged) Gamma-point RKS/UKS object with the multigrid integrator."""
    from pyscf.pbc import dft
    from pyscf.pbc.dft import multigrid

    mf = dft.UKS(cell, xc=fidelity.method) if fidelity.unrestricted else dft.RKS(cell, xc=fidelity.method)
    mf._numint = multigrid.MultiGridNumInt2(cell)
    return configure_scf(mf, fidelity)


class PeriodicPySCFLabeler(FidelityLabeler):
    """Labels 3D-periodic structures with PySCF at a ``pyscf-pbc`` fidelity using ``threads`` compute threads."""

    def check_family(self, fidelity: Fidelity) -> None:
        if not fidelity.periodic:
            raise FidelityError(f"fidelity '{fidelity.name}' is of family {fidelity.family}, not pyscf-pbc: label it "
                                "with alloop.labeling.factory.labeler_for")

    def label(self, atoms: Atoms) -> LabelResult:
        """Energy and forces of ``atoms`` (not modified), or the reason there are none."""
        numbers = structure_numbers(atoms, self._fidelity)
        positions_bohr = np.array(atoms.positions, dtype=float) / BOHR_TO_ANGSTROM
        lattice_bohr = np.array(atoms.cell.array, dtype=float) / BOHR_TO_ANGSTROM
        set_compute_threads(self.threads)
        return label_with(lambda: self._compute(numbers, positions_bohr, lattice_bohr), len(numbers),
                          self._fidelity, self.limits)

    def _compute(self, numbers: np.ndarray, positions_bohr: np.ndarray, lattice_bohr: np.ndarray) -> Outcome:
        fid = self._fidelity
        cycles = 0
        try:
            cell = build_cell(numbers, positions_bohr, lattice_bohr, fid)
            run = run_scf(cell, fid, make=make_periodic_scf, newton_fallback=False)
            cycles = run.cycles
            if not run.converged:
                return Outcome(LabelStatus.SCF_NOT_CONVERGED, f"SCF not converged after {cycles} DIIS cycles, last "
                               f"energy {run.energy_Eh:.10g} Eh", cycles)
            grad = scf_gradient(run.mf)
        except PHYSICS_ERRORS as exc:
            text = " ".join(str(exc).split())[:300]
            return Outcome(LabelStatus.FAILED, f"PySCF {type(exc).__name__}: {text}", cycles)
        forces = -np.asarray(grad, dtype=float).reshape(len(numbers), 3) * HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM
        return Outcome(LabelStatus.OK, "", cycles, float(run.energy_Eh) * HARTREE_TO_EV, forces)
