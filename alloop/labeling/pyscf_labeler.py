"""PySCFLabeler: energy (eV) and forces (eV/Angstrom) of a molecule at one fidelity.

Units are converted exactly once, here: positions Angstrom -> Bohr on the way
in, energy Hartree -> eV and gradient Hartree/Bohr -> force eV/Angstrom on the
way out, all with the constants of ``alloop.units``.

Every label starts from PySCF's default initial guess (no density carried over
from a previous frame), so a result depends only on (structure, fidelity,
threads) and a task that Dask runs twice gives the same numbers.

Statuses (see ``alloop.labeling.result``):

- ``ok``: SCF (and correlated solver) converged and the label passes the
  checks of ``alloop.labeling.sanity``; ``reason`` notes a Newton fallback.
- ``scf_not_converged``: neither DIIS nor the second-order fallback converged
  within ``max_cycles`` each.
- ``failed``: a linearly dependent basis (atoms nearly on top of each other),
  a correlated solver that did not converge, or an error raised by PySCF
  during the computation (the reason names it).
- ``inconsistent``: non-finite numbers, absurd forces, or a net force on the
  isolated molecule (``alloop.labeling.sanity``).

Raised, not recorded: a non-Atoms argument (TypeError), a periodic structure or
one the fidelity cannot describe (FidelityError: basis, charge, spin), a
fidelity without analytic gradients or of another family (FidelityError, at construction).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from numpy.linalg import LinAlgError

from alloop.fidelity import Fidelity
from alloop.labeling.common import FidelityLabeler, Outcome, label_with, structure_numbers
from alloop.labeling.pyscf_methods import (
    POST_HF_METHODS,
    SolverNotConverged,
    build_mole,
    check_fidelity,
    correlated_energy_and_gradient,
    run_scf,
    scf_gradient,
    smallest_overlap_eigenvalue,
)
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.labeling.threads import set_compute_threads
from alloop.units import BOHR_TO_ANGSTROM, HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM, HARTREE_TO_EV

#: exceptions raised by PySCF/numpy/scipy during a computation: recorded as ``failed``
PHYSICS_ERRORS: tuple[type[BaseException], ...] = (
    RuntimeError,
    ArithmeticError,
    LinAlgError,
    ValueError,
    MemoryError,
    OSError,
    AssertionError,
)
#: smallest overlap eigenvalue accepted before the basis counts as linearly dependent
LINDEP_THRESHOLD = 1e-8


class PySCFLabeler(FidelityLabeler):
    """Labels isolated molecules with PySCF at ``fidelity`` using ``threads`` compute threads."""

    def __init__(
        self,
        fidelity: Fidelity,
        threads: int = 1,
        *,
        max_force_eV_per_A: float | None = None,
        net_force_eV_per_A: float | None = None,
        lindep_threshold: float = LINDEP_THRESHOLD,
    ) -> None:
        super().__init__(fidelity, threads, max_force_eV_per_A=max_force_eV_per_A,
                         net_force_eV_per_A=net_force_eV_per_A)
        self.lindep_threshold = float(lindep_threshold)

    def check_family(self, fidelity: Fidelity) -> None:
        check_fidelity(fidelity)

    def label(self, atoms: Atoms) -> LabelResult:
        """Energy and forces of ``atoms`` (not modified), or the reason there are none."""
        numbers = structure_numbers(atoms, self._fidelity)
        positions_bohr = np.array(atoms.positions, dtype=float) / BOHR_TO_ANGSTROM
        set_compute_threads(self.threads)
        return label_with(lambda: self._compute(numbers, positions_bohr), len(numbers), self._fidelity, self.limits)

    def _compute(self, numbers: np.ndarray, positions_bohr: np.ndarray) -> Outcome:
        fid = self._fidelity
        cycles = 0
        try:
            mol = build_mole(numbers, positions_bohr, fid)
            smallest = smallest_overlap_eigenvalue(mol)
            if not smallest > self.lindep_threshold:
                return Outcome(
                    LabelStatus.FAILED,
                    f"linearly dependent basis: smallest overlap eigenvalue {smallest:.2e} "
                    f"<= {self.lindep_threshold:.0e} (atoms nearly on top of each other?)",
                    0,
                )
            run = run_scf(mol, fid)
            cycles = run.cycles
            note = "SCF converged by the second-order (Newton) fallback" if run.used_fallback else ""
            if not run.converged:
                return Outcome(
                    LabelStatus.SCF_NOT_CONVERGED,
                    f"SCF not converged after {cycles} cycles (DIIS, then Newton), last energy "
                    f"{run.energy_Eh:.10g} Eh",
                    cycles,
                )
            if fid.method in POST_HF_METHODS:
                energy, grad = correlated_energy_and_gradient(run.mf, fid)
            else:
                energy, grad = run.energy_Eh, scf_gradient(run.mf)
        except SolverNotConverged as exc:
            return Outcome(LabelStatus.FAILED, str(exc), cycles)
        except PHYSICS_ERRORS as exc:
            text = " ".join(str(exc).split())[:300]
            return Outcome(LabelStatus.FAILED, f"PySCF {type(exc).__name__}: {text}", cycles)
        forces = -np.asarray(grad, dtype=float).reshape(len(numbers), 3) * HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM
        return Outcome(LabelStatus.OK, note, cycles, float(energy) * HARTREE_TO_EV, forces)
