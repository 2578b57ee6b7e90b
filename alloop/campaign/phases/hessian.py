"""The cheap fidelity's Hessian of the input structure, for normal-mode bootstrap samples (a Dask task).

PySCF fidelities (HF, DFT) give an analytic SCF Hessian; xtb fidelities one by
central finite differences of tblite's analytic forces (tblite's Python API has
no Hessian): 6N labels of about 2 ms each for a small molecule.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from alloop.errors import FidelityError
from alloop.fidelity import Fidelity
from alloop.labeling.factory import labeler_for
from alloop.labeling.pyscf_methods import build_mole, run_scf
from alloop.units import BOHR_TO_ANGSTROM, HARTREE_TO_EV

#: displacement of the finite-difference Hessian (Angstrom)
FD_STEP_A = 5e-3


def cheap_hessian(atoms: Atoms, fidelity: Fidelity, threads: int = 1) -> np.ndarray:
    """The Hessian (eV/Angstrom^2, shape [3N, 3N]) at ``fidelity``: analytic for HF or DFT, finite differences
    of forces for xtb."""
    if fidelity.family == "xtb":
        return finite_difference_hessian(atoms, fidelity, threads)
    from pyscf import lib

    if fidelity.method in ("mp2", "ccsd", "ccsd(t)"):
        raise FidelityError(f"normal-mode bootstrap needs an HF, DFT or xTB cheap fidelity, not {fidelity.method}")
    lib.num_threads(threads)
    mol = build_mole(atoms.numbers, atoms.positions / BOHR_TO_ANGSTROM, fidelity)
    run = run_scf(mol, fidelity)
    if not run.converged:
        raise FidelityError("the SCF of the input structure did not converge: no Hessian for normal modes")
    hess = run.mf.Hessian().kernel()  # [natm, natm, 3, 3], Hartree / Bohr^2
    n = len(atoms)
    return hess.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n) * HARTREE_TO_EV / BOHR_TO_ANGSTROM**2


def finite_difference_hessian(atoms: Atoms, fidelity: Fidelity, threads: int = 1,
                              step_A: float = FD_STEP_A) -> np.ndarray:
    """Symmetrised central-difference Hessian -dF/dx (eV/Angstrom^2) from the fidelity's labeller."""
    labeler = labeler_for(fidelity, threads)
    n = len(atoms)
    columns = []
    for k in range(3 * n):
        forces = []
        for sign in (1.0, -1.0):
            displaced = atoms.copy()
            displaced.positions[k // 3, k % 3] += sign * step_A
            result = labeler.label(displaced)
            if not result.ok:
                raise FidelityError(f"no Hessian for normal modes: a displaced structure failed ({result.reason})")
            forces.append(result.forces_eV_per_A.reshape(-1))
        columns.append(-(forces[0] - forces[1]) / (2 * step_A))
    hess = np.array(columns)
    return 0.5 * (hess + hess.T)
