"""Covalent bonds of a periodic box (minimum image) and how far MD has stretched or crossed them."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import covalent_radii


def bonds(atoms: Atoms, factor: float = 1.15) -> np.ndarray:
    """Pairs (i < j) closer than ``factor`` x the sum of their covalent radii, minimum image."""
    from ase.neighborlist import neighbor_list

    i, j = neighbor_list("ij", atoms, {(a, b): factor * (covalent_radii[a] + covalent_radii[b])
                                       for a in set(atoms.numbers) for b in set(atoms.numbers)})
    keep = i < j
    return np.stack([i[keep], j[keep]], axis=1)


def bond_check(atoms: Atoms, start_bonds: np.ndarray, start_lengths: np.ndarray) -> tuple[float, int]:
    """(largest bond length / start length, number of new bonds between different molecules)."""
    lengths = np.array([atoms.get_distance(i, j, mic=True) for i, j in start_bonds])
    now = bonds(atoms)
    tags = atoms.get_tags()
    new = int(np.sum(tags[now[:, 0]] != tags[now[:, 1]]))
    return float((lengths / start_lengths).max()), new
