"""The thermal energy window that keeps expensive labels off frames no thermal trajectory reaches."""

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.uncertainty.energy_window import composition_key, lowest_by_composition, thermal_window_eV, within_thermal_window
from alloop.units import KB_EV_PER_K

WATER, ETHANOL = np.array([8, 1, 1]), np.array([6, 6, 8, 1, 1, 1, 1, 1, 1])


def test_window_is_harmonic_mean_plus_n_sigma():
    kt = KB_EV_PER_K * 500.0
    # ethanol: 21 modes -> mean 10.5 kT, std sqrt(10.5) kT
    assert thermal_window_eV(9, 500.0, 10.0) == pytest.approx(kt * (10.5 + 10.0 * np.sqrt(10.5)))
    assert thermal_window_eV(9, 500.0, 10.0) == pytest.approx(1.8486, abs=1e-4)
    assert thermal_window_eV(3, 300.0, 0.0) == pytest.approx(1.5 * KB_EV_PER_K * 300.0)
    assert thermal_window_eV(2, 300.0, 0.0) > 0  # a diatomic still has a window
    # a cell of 12 atoms (4 waters): 33 modes (no rotations)
    assert thermal_window_eV(12, 300.0, 2.0, periodic=True) == pytest.approx(
        KB_EV_PER_K * 300.0 * (16.5 + 2.0 * np.sqrt(16.5)))
    low = np.zeros(1)
    edge = thermal_window_eV(12, 300.0, 0.0, periodic=True) - 1e-6  # inside as a cell, outside as a molecule
    box = np.array([8, 1, 1] * 4)
    assert within_thermal_window([edge], [box], low, [box], 300.0, 0.0, periodic=[True]).tolist() == [True]
    assert within_thermal_window([edge], [box], low, [box], 300.0, 0.0).tolist() == [False]


def test_window_rejects_bad_input():
    with pytest.raises(AlloopError):
        thermal_window_eV(0, 300.0, 1.0)
    with pytest.raises(AlloopError):
        thermal_window_eV(3, -1.0, 1.0)


def test_mask_is_per_composition_relative_to_the_lowest_energy():
    w_eth, w_wat = thermal_window_eV(9, 500.0, 10.0), thermal_window_eV(3, 500.0, 10.0)
    ref_e = np.array([-100.0, -99.0, -20.0, np.nan])
    ref_z = [ETHANOL, ETHANOL, WATER, WATER]
    energies = np.array([-100.0 + 0.99 * w_eth, -100.0 + 1.01 * w_eth, -20.0 + 0.5 * w_wat, -20.0 + 2 * w_wat, np.nan])
    numbers = [ETHANOL, ETHANOL, WATER, WATER[::-1], ETHANOL]  # atom order does not matter
    mask = within_thermal_window(energies, numbers, ref_e, ref_z, 500.0, 10.0)
    assert mask.tolist() == [True, False, True, False, False]


def test_frame_of_an_unseen_composition_is_outside():
    mask = within_thermal_window(np.array([-5.0]), [np.array([1, 1])], np.array([-20.0]), [WATER], 300.0, 10.0)
    assert not mask[0]


def test_lowest_by_composition_is_the_minimum_per_composition_in_any_atom_order():
    rng = np.random.default_rng(0)
    numbers = [(ETHANOL, WATER, WATER[::-1], np.array([1, 1]))[k] for k in rng.integers(0, 4, 500)]
    energies = rng.normal(size=500)
    energies[::7] = np.nan  # failed labels count for nothing
    expected: dict = {}
    for e, z in zip(energies, numbers, strict=True):
        if np.isfinite(e):
            expected[composition_key(z)] = min(e, expected.get(composition_key(z), np.inf))
    assert lowest_by_composition(energies, numbers) == expected
    assert lowest_by_composition(np.zeros(0), []) == {}
