"""Build and run the PySCF objects of a fidelity: molecule, SCF (with one fallback), gradients.

Everything here works in PySCF's units (Hartree, Bohr); the labeller converts.
Which combinations have analytic gradients in PySCF 2.x:

=================  ==================  ========================
method             conventional ERIs   density fitting
=================  ==================  ========================
HF, DFT (R/U)      yes                 yes (``pyscf.df.grad``)
MP2 (R/U)          yes                 no  (DF-MP2 raises)
CCSD (R/U)         yes                 no  (DF-CCSD raises)
CCSD(T) (R/U)      yes (``grad.ccsd_t``, ``grad.uccsd_t``)   no
=================  ==================  ========================

``check_fidelity`` rejects the "no" cells before anything is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from alloop.errors import FidelityError
from alloop.fidelity import Fidelity

POST_HF_METHODS = ("mp2", "ccsd", "ccsd(t)")
#: amplitude/lambda residual tolerance of the coupled-cluster solvers (not part of the fidelity)
CC_CONV_TOL_NORMT = 1e-6


class SolverNotConverged(RuntimeError):
    """A correlated solver (CCSD amplitudes, lambda equations) did not converge."""


def check_fidelity(fidelity: Fidelity) -> None:
    """Raise FidelityError if PySCF cannot give energy and analytic gradient for this fidelity."""
    if not isinstance(fidelity, Fidelity):
        raise TypeError(f"expected a Fidelity, not {type(fidelity).__name__}")
    if fidelity.family != "pyscf":
        raise FidelityError(f"fidelity '{fidelity.name}' is of family {fidelity.family}, not pyscf: label it with "
                            "alloop.labeling.factory.labeler_for")
    if fidelity.density_fit and fidelity.method in POST_HF_METHODS:
        raise FidelityError(
            f"fidelity '{fidelity.name}': density-fitted {fidelity.method.upper()} has no analytic "
            "gradient in PySCF; set density_fit: false"
        )


def build_mole(numbers: np.ndarray, positions_bohr: np.ndarray, fidelity: Fidelity):
    """A PySCF Mole in Bohr (positions already converted), quiet, with bounded memory."""
    from pyscf import gto

    atom = [(int(z), tuple(float(x) for x in xyz)) for z, xyz in zip(numbers, positions_bohr, strict=True)]
    return gto.M(
        atom=atom,
        unit="Bohr",
        basis=fidelity.basis,
        charge=fidelity.charge,
        spin=fidelity.spin,
        symmetry=False,
        verbose=0,
        max_memory=fidelity.max_memory_MB,
    )


def smallest_overlap_eigenvalue(mol) -> float:
    """Smallest eigenvalue of the AO overlap matrix (near zero: linearly dependent basis)."""
    return float(np.linalg.eigvalsh(mol.intor_symmetric("int1e_ovlp"))[0])


def make_scf(mol, fidelity: Fidelity):
    """The (unconverged) SCF object: R/U HF or KS, grid level, density fitting, tolerances."""
    from pyscf import dft, scf

    if fidelity.is_dft:
        mf = dft.UKS(mol) if fidelity.unrestricted else dft.RKS(mol)
        mf.xc = fidelity.method
        mf.grids.level = fidelity.grid_level
    else:
        mf = scf.UHF(mol) if fidelity.unrestricted else scf.RHF(mol)
    if fidelity.density_fit:
        mf = mf.density_fit()
    return configure_scf(mf, fidelity)


def configure_scf(mf, fidelity: Fidelity):
    """``mf`` with the fidelity's SCF tolerance, iteration limit and memory; quiet, writing no files."""
    mf.conv_tol = fidelity.conv_tol_Eh
    mf.max_cycle = fidelity.max_cycles
    mf.max_memory = fidelity.max_memory_MB
    mf.chkfile = None  # workers write no files
    mf.verbose = 0
    return mf


@dataclass
class ScfRun:
    """A finished SCF: the converged-or-not mean-field object and how it got there."""

    mf: Any  # the PySCF SCF object (PySCF has no type information)
    converged: bool
    cycles: int
    used_fallback: bool
    energy_Eh: float


def run_scf(mol, fidelity: Fidelity, make: Callable[[Any, Fidelity], Any] | None = None,
            newton_fallback: bool = True) -> ScfRun:
    """DIIS first; if it does not converge, one second-order (Newton) run from where DIIS stopped.

    ``make`` builds the unconverged SCF object (default :func:`make_scf`; the periodic labeller passes its own,
    without the fallback: PySCF's Newton solver fails inside the multigrid integrator).
    The fallback gets the same ``max_cycles`` budget (macro iterations). PySCF
    only warns on non-convergence: the returned ``converged`` is the truth.
    """
    mf = (make or make_scf)(mol, fidelity)
    mf.kernel()
    cycles = int(getattr(mf, "cycles", 0))
    if mf.converged or not newton_fallback:
        return ScfRun(mf, bool(mf.converged), cycles, False, float(mf.e_tot))
    macro: set[int] = set()
    newton = mf.newton()
    newton.max_cycle = fidelity.max_cycles
    newton.conv_tol = fidelity.conv_tol_Eh
    newton.chkfile = None
    newton.verbose = 0
    newton.callback = lambda env: macro.add(int(env.get("imacro", 0)))
    newton.kernel(mf.mo_coeff, mf.mo_occ)
    cycles += len(macro)
    plain = newton.remove_soscf()
    for attr in ("converged", "e_tot", "mo_energy", "mo_coeff", "mo_occ"):
        setattr(plain, attr, getattr(newton, attr))
    return ScfRun(plain, bool(newton.converged), cycles, True, float(newton.e_tot))


def scf_gradient(mf) -> np.ndarray:
    """Analytic SCF gradient (Hartree/Bohr), shape (n_atoms, 3)."""
    grad = mf.nuc_grad_method()
    grad.verbose = 0
    return np.asarray(grad.kernel())


def correlated_energy_and_gradient(mf, fidelity: Fidelity) -> tuple[float, np.ndarray]:
    """Total energy (Hartree) and analytic gradient (Hartree/Bohr) of MP2, CCSD or CCSD(T).

    Raises SolverNotConverged if amplitudes or lambda equations do not converge.
    """
    if fidelity.method == "mp2":
        from pyscf import mp

        mymp = mp.MP2(mf, frozen=frozen_orbitals(mf, fidelity))
        mymp.verbose = 0
        mymp.kernel()
        grad = mymp.nuc_grad_method()
        grad.verbose = 0
        return float(mymp.e_tot), np.asarray(grad.kernel())
    if fidelity.method in ("ccsd", "ccsd(t)"):
        return _coupled_cluster(mf, fidelity, triples=fidelity.method == "ccsd(t)")
    raise ValueError(f"not a correlated method: {fidelity.method}")


def frozen_orbitals(mf, fidelity: Fidelity) -> int | None:
    """Core orbitals left uncorrelated: PySCF's ``chemcore`` count (per spin) with ``frozen_core``, else none."""
    if not fidelity.frozen_core:
        return None
    from pyscf.data.elements import chemcore

    return int(chemcore(mf.mol)) or None


def _coupled_cluster(mf, fidelity: Fidelity, triples: bool) -> tuple[float, np.ndarray]:
    from pyscf import cc

    mycc = cc.CCSD(mf, frozen=frozen_orbitals(mf, fidelity))
    mycc.verbose = 0
    mycc.conv_tol = fidelity.conv_tol_Eh
    mycc.conv_tol_normt = CC_CONV_TOL_NORMT
    mycc.max_cycle = fidelity.max_cycles
    eris = mycc.ao2mo()
    mycc.kernel(eris=eris)
    if not mycc.converged:
        raise SolverNotConverged(f"CCSD amplitudes not converged in {fidelity.max_cycles} iterations")
    t1, t2 = mycc.t1, mycc.t2
    if not triples:
        l1, l2 = mycc.solve_lambda(t1, t2, eris=eris)
        if not mycc.converged_lambda:
            raise SolverNotConverged(f"CCSD lambda equations not converged in {fidelity.max_cycles} iterations")
        grad = mycc.nuc_grad_method()
        grad.verbose = 0
        return float(mycc.e_tot), np.asarray(grad.kernel(t1, t2, l1, l2, eris=eris))
    if fidelity.unrestricted:
        from pyscf.cc import uccsd_t as t_energy
        from pyscf.cc import uccsd_t_lambda as t_lambda
        from pyscf.grad import uccsd_t as t_grad
    else:
        from pyscf.cc import ccsd_t as t_energy
        from pyscf.cc import ccsd_t_lambda as t_lambda
        from pyscf.grad import ccsd_t as t_grad
    e_t = t_energy.kernel(mycc, eris, t1, t2, verbose=0)
    conv, l1, l2 = t_lambda.kernel(
        mycc, eris, t1, t2, max_cycle=fidelity.max_cycles, tol=CC_CONV_TOL_NORMT, verbose=0
    )
    if not conv:
        raise SolverNotConverged(f"CCSD(T) lambda equations not converged in {fidelity.max_cycles} iterations")
    grad = t_grad.Gradients(mycc)
    grad.verbose = 0
    return float(mycc.e_tot + e_t), np.asarray(grad.kernel(t1, t2, l1, l2, eris=eris))
