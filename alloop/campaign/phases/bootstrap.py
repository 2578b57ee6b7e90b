"""Bootstrap samples: perturbed copies of the input structure for the first labels and model.

Three samplers, all seeded and pure (no QM inside; the surface of ``md_samples`` is a function):
- ``rattle``: independent Gaussian displacements of every atom (``amplitude_A``).
- ``normal_modes``: classical harmonic sampling at a temperature from a Hessian
  (eV/Angstrom^2): in mass-weighted coordinates each vibrational mode q_i gets
  a displacement drawn from N(0, kT / lambda_i); translations, rotations and
  non-positive modes are skipped.
- ``md_samples``: frames of a Langevin trajectory (BAOAB) on a given surface, taken
  every ``spacing_fs`` after ``equilibration_fs``: thermal samples that cross the
  barriers the surface lets them cross (conformers, anharmonic wells), which
  harmonic samples about one minimum cannot.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms

from alloop.md.integrators import LangevinBAOAB
from alloop.md.state import maxwell_boltzmann_velocities
from alloop.units import FS, KB_EV_PER_K

#: forces (eV/Angstrom, [n, 3]) at positions (Angstrom, [n, 3])
ForceFunction = Callable[[np.ndarray], np.ndarray]


def rattle_samples(atoms: Atoms, n_samples: int, amplitude_A: float, seed: int) -> list[Atoms]:
    """``n_samples`` copies of ``atoms`` with Gaussian displacements of standard deviation ``amplitude_A``."""
    if n_samples < 0 or amplitude_A < 0:
        raise ValueError("n_samples and amplitude_A must be non-negative")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_samples):
        sample = Atoms(numbers=atoms.numbers,
                       positions=atoms.positions + rng.normal(0.0, amplitude_A, atoms.positions.shape),
                       cell=atoms.cell, pbc=atoms.pbc)
        out.append(sample)
    return out


def vibrational_modes(atoms: Atoms, hessian_eV_per_A2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (eV/(A^2 amu)) and mass-weighted eigenvectors [3N, m] of the vibrational modes.

    The 6 (5 for linear molecules) lowest modes are dropped as translations and
    rotations, and so is any remaining non-positive mode (a saddle point or noise).
    """
    n = len(atoms)
    hessian = np.asarray(hessian_eV_per_A2, dtype=float).reshape(3 * n, 3 * n)
    hessian = 0.5 * (hessian + hessian.T)
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    mass_weighted = hessian * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]
    eigvals, eigvecs = np.linalg.eigh(mass_weighted)
    n_rigid = 5 if _is_linear(atoms) else 6
    if n == 1:
        n_rigid = 3
    keep = np.arange(3 * n) >= n_rigid
    keep &= eigvals > 1e-8 * max(1.0, float(np.abs(eigvals).max()))
    return eigvals[keep], eigvecs[:, keep]


def normal_mode_samples(
    atoms: Atoms, hessian_eV_per_A2: np.ndarray, n_samples: int, temperature_K: float, seed: int
) -> list[Atoms]:
    """Classical harmonic samples at ``temperature_K`` around ``atoms`` (a minimum) from its Hessian."""
    if temperature_K <= 0:
        raise ValueError("temperature_K must be positive")
    eigvals, eigvecs = vibrational_modes(atoms, hessian_eV_per_A2)
    kT = KB_EV_PER_K * temperature_K
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_samples):
        q = rng.normal(0.0, 1.0, eigvals.size) * np.sqrt(kT / eigvals)
        displacement = (eigvecs @ q) * inv_sqrt_m
        out.append(Atoms(numbers=atoms.numbers, positions=atoms.positions + displacement.reshape(-1, 3)))
    return out


def md_samples(atoms: Atoms, forces: ForceFunction, n_samples: int, temperature_K: float, seed: int, *,
               timestep_fs: float = 0.5, friction_per_fs: float = 0.01, equilibration_fs: float = 200.0,
               spacing_fs: float = 100.0) -> list[Atoms]:
    """``n_samples`` frames of Langevin MD at ``temperature_K`` on the surface ``forces``, started from ``atoms`` with
    seeded Maxwell-Boltzmann velocities: one after ``equilibration_fs + spacing_fs``, then one every ``spacing_fs``."""
    if n_samples < 0:
        raise ValueError("n_samples must be non-negative")
    if not temperature_K > 0 or not timestep_fs > 0 or friction_per_fs < 0:
        raise ValueError("temperature_K and timestep_fs must be positive, friction_per_fs non-negative")
    if equilibration_fs < 0 or not spacing_fs >= timestep_fs:
        raise ValueError("equilibration_fs must be non-negative and spacing_fs at least one time step")
    rng = np.random.default_rng(seed)
    masses = atoms.get_masses()
    inv_mass = (1.0 / masses)[:, None]
    integrator = LangevinBAOAB(timestep_fs * FS, temperature_K, friction_per_fs / FS)
    x = atoms.positions[None].astype(np.float64).copy()
    v = maxwell_boltzmann_velocities(masses, temperature_K, rng)[None]
    f = forces(x[0])[None]
    first = int(round((equilibration_fs + spacing_fs) / timestep_fs))
    every = int(round(spacing_fs / timestep_fs))
    out: list[Atoms] = []
    step = 0
    while len(out) < n_samples:
        integrator.drift(x, v, f, inv_mass, [rng])
        f = forces(x[0])[None]
        integrator.kick(v, f, inv_mass)
        step += 1
        if step >= first and (step - first) % every == 0:
            out.append(Atoms(numbers=atoms.numbers, positions=x[0].copy(), cell=atoms.cell, pbc=atoms.pbc))
    return out


def _is_linear(atoms: Atoms, tol: float = 1e-3) -> bool:
    if len(atoms) < 3:
        return True
    centred = atoms.positions - atoms.positions.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    return bool(singular[1] < tol * max(singular[0], 1e-12))
