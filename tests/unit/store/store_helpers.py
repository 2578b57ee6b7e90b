"""Deterministic frames and labels of mixed sizes for the store tests (functions of an index only)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from alloop.labeling.result import LabelResult, LabelStatus


def make_frame(k: int) -> Atoms:
    """Frame ``k``: 1..9 atoms, random full-precision positions (a function of k only)."""
    rng = np.random.default_rng(1000 + k)
    n = 1 + k % 9
    return Atoms(numbers=rng.integers(1, 10, n), positions=rng.normal(0.0, 2.0, (n, 3)))


def make_label(k: int, n_atoms: int, fail: bool = False) -> LabelResult:
    if fail:
        return LabelResult.failure(n_atoms, LabelStatus.SCF_NOT_CONVERGED, f"no convergence for {k}", cpu_seconds=0.5)
    rng = np.random.default_rng(5000 + k)
    return LabelResult(
        energy_eV=float(rng.normal() * 100),
        forces_eV_per_A=rng.normal(size=(n_atoms, 3)),
        status=LabelStatus.OK,
        cpu_seconds=1.0 + k,
        wall_seconds=2.0 + k,
        scf_cycles=10 + k,
    )
