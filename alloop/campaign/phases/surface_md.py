"""Bootstrap samples from Langevin MD on a GFN-xTB surface (a Dask task per starting structure).

A few picoseconds of xTB MD cost seconds (about 2-8 ms per ethanol step), so the
first labels can be thermal samples of every basin the MD reaches rather than
harmonic samples about the starting minima. The surface is the labeller's: the
same tblite settings, charge and spin as the campaign's xTB labels or baseline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from alloop.campaign.phases.bootstrap import md_samples
from alloop.errors import FidelityError
from alloop.fidelity import Fidelity
from alloop.labeling.factory import labeler_for


@dataclass(frozen=True)
class SurfaceMD:
    """How the bootstrap MD runs (``schedule.bootstrap`` and ``md``'s integrator settings)."""

    temperature_K: float
    timestep_fs: float
    friction_per_fs: float
    equilibration_fs: float
    spacing_fs: float


def surface_md_samples(atoms: Atoms, fidelity: Fidelity, n_samples: int, md: SurfaceMD, seed: int,
                       threads: int = 1) -> tuple[list[Atoms], int, float]:
    """``n_samples`` frames of ``fidelity``-driven MD from ``atoms``; also the force calls and the CPU seconds."""
    if fidelity.family != "xtb":
        raise FidelityError(f"bootstrap MD runs on a GFN-xTB surface, not {fidelity.method} (too slow per step)")
    labeler = labeler_for(fidelity, threads)
    calls = 0

    def forces(positions: np.ndarray) -> np.ndarray:
        nonlocal calls
        frame = Atoms(numbers=atoms.numbers, positions=positions, cell=atoms.cell, pbc=atoms.pbc)
        result = labeler.label(frame)
        calls += 1
        if not result.ok:
            raise FidelityError(f"bootstrap MD on {fidelity.name} stopped at step {calls - 1}: "
                                f"{result.status.value}: {result.reason}")
        return np.asarray(result.forces_eV_per_A, dtype=np.float64)

    cpu0 = time.process_time()
    samples = md_samples(atoms, forces, n_samples, md.temperature_K, seed, timestep_fs=md.timestep_fs,
                         friction_per_fs=md.friction_per_fs, equilibration_fs=md.equilibration_fs,
                         spacing_fs=md.spacing_fs)
    return samples, calls, time.process_time() - cpu0
