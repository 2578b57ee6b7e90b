"""Thermal energy window: is a labelled frame's energy reachable at the MD temperature?

A frame from a trajectory that has already gone wrong (bonds breaking, atoms
colliding) can lie tens of eV above the minimum. Its label teaches the model
nothing about the thermal ensemble, and an expensive label spent on it is lost
(DP-GEN's upper trust level plays the same role). The window is the classical
harmonic estimate: the potential energy above the minimum of f = 3n - 6
vibrational modes at temperature T has mean f kT / 2 and standard deviation
sqrt(f / 2) kT; a frame is inside when ``E - E_min <= kT (f / 2 + n_sigma
sqrt(f / 2))``, with E_min the lowest energy seen for the same composition at
the same fidelity. For ethanol at 500 K and n_sigma = 10 that is 1.85 eV. A
periodic cell has f = 3n - 3 (its atoms cannot rotate it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alloop.errors import AlloopError
from alloop.units import KB_EV_PER_K


def thermal_window_eV(n_atoms: int, temperature_K: float, n_sigma: float, periodic: bool = False) -> float:
    """Energy above the minimum (eV) within ``n_sigma`` standard deviations of the harmonic thermal mean
    (3n - 6 modes, 3n - 3 in a ``periodic`` cell)."""
    if n_atoms < 1 or temperature_K <= 0 or n_sigma < 0:
        raise AlloopError(f"need n_atoms >= 1, temperature_K > 0, n_sigma >= 0 (got {n_atoms}, {temperature_K}, {n_sigma})")
    half_modes = max(3 * n_atoms - (3 if periodic else 6), 1) / 2.0
    return KB_EV_PER_K * temperature_K * (half_modes + n_sigma * np.sqrt(half_modes))


def composition_key(numbers: np.ndarray) -> tuple[int, ...]:
    return tuple(int(z) for z in np.sort(np.asarray(numbers)))


def lowest_by_composition(energies: np.ndarray, numbers: Sequence[np.ndarray]) -> dict[tuple[int, ...], float]:
    """The lowest finite energy of each composition (:func:`composition_key`) among the frames: grouped by atom
    count and composition in numpy, so that ten thousand frames cost milliseconds."""
    energies = np.asarray(energies, dtype=np.float64)
    if len(energies) != len(numbers):
        raise AlloopError(f"{len(energies)} energies for {len(numbers)} frames")
    sizes = np.array([len(z) for z in numbers], dtype=np.int64)
    lowest: dict[tuple[int, ...], float] = {}
    for size in np.unique(sizes):
        idx = np.flatnonzero((sizes == size) & np.isfinite(energies))
        if idx.size == 0:
            continue
        compositions = np.sort(np.stack([np.asarray(numbers[int(i)], dtype=np.int64) for i in idx]), axis=1)
        keys, inverse = np.unique(compositions, return_inverse=True, axis=0)
        low = np.full(len(keys), np.inf)
        np.minimum.at(low, inverse.ravel(), energies[idx])
        lowest.update({tuple(int(z) for z in key): float(e) for key, e in zip(keys, low, strict=True)})
    return lowest


def within_thermal_window(
    energies: np.ndarray,
    numbers: Sequence[np.ndarray],
    reference_energies: np.ndarray,
    reference_numbers: Sequence[np.ndarray],
    temperature_K: float,
    n_sigma: float,
    periodic: Sequence[bool] | None = None,
) -> np.ndarray:
    """Mask [M]: frame m's energy is within the window above the lowest reference energy of its composition.

    ``reference_*`` are all frames labelled at the same fidelity (they may include the frames tested). A frame
    with a non-finite energy, or whose composition has no finite reference, is outside. ``periodic`` flags the
    frames that are periodic cells (default: none).
    """
    energies = np.asarray(energies, dtype=np.float64)
    lowest = lowest_by_composition(reference_energies, reference_numbers)
    mask = np.zeros(energies.size, dtype=bool)
    flags = [False] * energies.size if periodic is None else [bool(p) for p in periodic]
    for m, (e, z) in enumerate(zip(energies, numbers, strict=True)):
        low = lowest.get(composition_key(z))
        if low is not None and np.isfinite(e):
            mask[m] = e - low <= thermal_window_eV(len(z), temperature_K, n_sigma, flags[m])
    return mask
