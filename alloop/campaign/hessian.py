"""The cheap fidelity's Hessian of the input structure, for normal-mode bootstrap samples (a Dask task)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from alloop.errors import FidelityError
from alloop.fidelity import Fidelity
from alloop.labeling.pyscf_methods import build_mole, run_scf
from alloop.units import BOHR_TO_ANGSTROM, HARTREE_TO_EV


def cheap_hessian(atoms: Atoms, fidelity: Fidelity, threads: int = 1) -> np.ndarray:
    """Analytic SCF Hessian (eV/Angstrom^2, shape [3N, 3N]) at ``fidelity`` (HF or DFT only)."""
    from pyscf import lib

    if fidelity.method in ("mp2", "ccsd", "ccsd(t)"):
        raise FidelityError(f"normal-mode bootstrap needs an HF or DFT cheap fidelity, not {fidelity.method}")
    lib.num_threads(threads)
    mol = build_mole(atoms.numbers, atoms.positions / BOHR_TO_ANGSTROM, fidelity)
    run = run_scf(mol, fidelity)
    if not run.converged:
        raise FidelityError("the SCF of the input structure did not converge: no Hessian for normal modes")
    hess = run.mf.Hessian().kernel()  # [natm, natm, 3, 3], Hartree / Bohr^2
    n = len(atoms)
    return hess.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n) * HARTREE_TO_EV / BOHR_TO_ANGSTROM**2
