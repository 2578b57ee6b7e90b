"""Periodic test structures: water boxes at liquid density."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import molecule

#: volume per water molecule at 1 g/cm^3 (Angstrom^3): molar mass / (density x Avogadro), 29.9
WATER_VOLUME_A3 = 18.015 / 0.6022


def water_box(n: int, seed: int = 0, density_g_cm3: float = 1.0) -> Atoms:
    """``n`` randomly oriented waters on the sites of a simple cubic lattice filling a cube of the given density."""
    if n < 1:
        raise ValueError(f"a water box needs at least one molecule, not {n}")
    rng = np.random.default_rng(seed)
    length = (n * WATER_VOLUME_A3 / density_g_cm3) ** (1 / 3)
    per_side = int(np.ceil(n ** (1 / 3) - 1e-9))
    sites = [(i, j, k) for i in range(per_side) for j in range(per_side) for k in range(per_side)][:n]
    box = Atoms(cell=[length] * 3, pbc=True)
    for site in sites:
        water = molecule("H2O")
        water.rotate(rng.uniform(0, 360), "z")
        water.rotate(rng.uniform(0, 360), "x")
        water.positions += (np.array(site) + 0.5) * length / per_side
        box += water
    return box
