"""Synthetic labelled frames for training tests: a 'true' PairPotential labels perturbed molecules."""

from __future__ import annotations

import numpy as np
import torch
from ase.build import molecule

from alloop.io import attach_label
from alloop.potentials.base import AtomsBatch
from alloop.potentials.pair import PairPotential

ELEMENTS = (1, 6, 8)
#: per-element reference energies (eV) added to the synthetic labels
TRUE_REFS = {1: -13.1, 6: -1030.4, 8: -2041.7}


def truth_potential(seed: int = 11, scale: float = 2.0) -> PairPotential:
    """A PairPotential with larger weights than the default, so forces are O(1) eV/A."""
    model = PairPotential(ELEMENTS, cutoff=4.0, seed=seed).double()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        model.weights.copy_(scale * torch.randn(model.weights.shape, generator=gen, dtype=torch.float64))
    return model


def label_frames(structures, truth: PairPotential, refs: dict[int, float] | None = None):
    """Structures labelled by ``truth`` (+ reference energies), as ASE Atoms with calculator results."""
    refs = TRUE_REFS if refs is None else refs
    out = truth(AtomsBatch.from_atoms(structures, dtype=torch.float64))
    energies = out.energy.detach().numpy()
    forces = out.forces.detach().numpy()
    labelled, start = [], 0
    for k, atoms in enumerate(structures):
        e = energies[k] + sum(refs[int(z)] for z in atoms.numbers)
        labelled.append(attach_label(atoms, e, forces[start : start + len(atoms)]))
        start += len(atoms)
    return labelled


def perturbed(names, n: int, seed: int, sigma: float = 0.08):
    """``n`` frames cycling through molecule ``names``, positions perturbed by N(0, sigma) Angstrom."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = molecule(names[k % len(names)])
        atoms.positions = atoms.positions + rng.normal(0.0, sigma, atoms.positions.shape)
        frames.append(atoms)
    return frames
