"""Periodic test structures: water boxes at liquid density."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import molecule

#: volume per water molecule at 1 g/cm^3 (Angstrom^3): molar mass / (density x Avogadro), 29.9
WATER_VOLUME_A3 = 18.015 / 0.6022
#: fractional sites of the simple cubic, body-centred and face-centred cubic unit cells
_BASES = (
    np.zeros((1, 3)),
    np.array([[0, 0, 0], [0.5, 0.5, 0.5]]),
    np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
)


def _sites(n: int) -> np.ndarray:
    """``n`` fractional positions spread over the unit cube: the smallest sc, bcc or fcc lattice with at least
    ``n`` sites, thinned by farthest-point sampling (periodic distances)."""
    lattices = [(k**3 * len(basis), k, basis) for k in range(1, 8) for basis in _BASES]
    _, k, basis = min(entry for entry in lattices if entry[0] >= n) if n <= 7**3 * 4 else lattices[-1]
    grid = np.array([(i, j, m) for i in range(k) for j in range(k) for m in range(k)], dtype=float)
    sites = ((grid[:, None, :] + basis[None]) / k).reshape(-1, 3)
    chosen = [0]
    while len(chosen) < n:
        delta = sites[:, None, :] - sites[chosen][None]
        delta -= np.round(delta)
        chosen.append(int(np.linalg.norm(delta, axis=-1).min(axis=1).argmax()))
    return sites[chosen]


def water_box(n: int, seed: int = 0, density_g_cm3: float = 1.0) -> Atoms:
    """``n`` randomly oriented waters spread over a cube of the given density (sites of a cubic lattice)."""
    if n < 1:
        raise ValueError(f"a water box needs at least one molecule, not {n}")
    rng = np.random.default_rng(seed)
    length = (n * WATER_VOLUME_A3 / density_g_cm3) ** (1 / 3)
    box = Atoms(cell=[length] * 3, pbc=True)
    for site in _sites(n):
        water = molecule("H2O")
        water.rotate(rng.uniform(0, 360), "z")
        water.rotate(rng.uniform(0, 360), "x")
        water.positions += (site + 0.25) * length
        box += water
    return box
