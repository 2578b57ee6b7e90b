"""Conformal force-error bounds: split conformal, and weighted for a temperature shift with a known Boltzmann ratio."""

from __future__ import annotations

import numpy as np
import pytest
from ase.units import kB

from alloop.errors import AlloopError
from alloop.uncertainty.conformal import (
    boltzmann_weights,
    conformal_upper,
    effective_sample_size,
    force_error_bound,
    weighted_conformal_upper,
)

DOF = 6  # a harmonic system's potential energy at T is Gamma(DOF / 2, kT): the Boltzmann ratio is exact for it


def _frames(rng: np.random.Generator, temperature_K: float, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Potential energies (eV) of a harmonic system at ``temperature_K`` and force errors that grow with the energy
    (an error signal blind to it predicts 0.01 eV/A everywhere)."""
    energy = rng.gamma(DOF / 2, kB * temperature_K, size=m)
    error = 0.01 * (1.0 + energy / (kB * 300.0)) * np.abs(rng.normal(size=m)) + 1e-6
    return energy, error


def test_weighted_conformal_covers_a_hotter_ensemble_where_the_plain_bound_undercovers():
    rng = np.random.default_rng(0)
    plain, weighted, ess = [], [], []
    for _ in range(150):
        energy, error = _frames(rng, 300.0, 300)
        test_energy, test_error = _frames(rng, 500.0, 400)
        kwargs = {"predicted": np.full(300, 0.01), "test_predicted": np.full(400, 0.01)}
        plain.append(np.mean(test_error <= force_error_bound(error, 0.9, **kwargs).upper))
        bound = force_error_bound(error, 0.9, energies_eV=energy, test_energies_eV=test_energy, temperature_K=300.0,
                                  target_temperature_K=500.0, **kwargs)
        weighted.append(np.mean(test_error <= bound.upper))
        ess.append(bound.effective_sample_size)
    se = np.std(weighted) / np.sqrt(len(weighted))
    assert abs(np.mean(weighted) - 0.9) < max(3 * se, 0.015), (np.mean(weighted), se)
    assert np.mean(plain) < 0.85, np.mean(plain)
    assert 30 < np.mean(ess) < 300  # the shift costs calibration frames


def test_without_a_shift_the_weighted_bound_is_the_split_conformal_one():
    rng = np.random.default_rng(1)
    energy, error = _frames(rng, 300.0, 50)
    plain = force_error_bound(error, 0.9, n_test=3)
    same = force_error_bound(error, 0.9, energies_eV=energy, test_energies_eV=energy[:3], temperature_K=300.0,
                             target_temperature_K=300.0, n_test=3)
    np.testing.assert_allclose(same.upper, plain.upper)
    assert plain.upper[0] == conformal_upper(error, 0.9)[0] == np.sort(error)[int(np.ceil(51 * 0.9)) - 1]
    assert same.effective_sample_size == pytest.approx(50.0)


def test_weighted_quantile_by_hand():
    values, weights = np.array([3.0, 1.0, 2.0, 4.0]), np.array([1.0, 1.0, 2.0, 0.0])
    # sorted 1 (w 1), 2 (w 2), 3 (w 1), 4 (w 0); total 4 + test weight 1 = 5
    np.testing.assert_array_equal(weighted_conformal_upper(values, weights, [1.0], 0.6), [2.0])  # 3/5 >= 0.6
    np.testing.assert_array_equal(weighted_conformal_upper(values, weights, [1.0], 0.7), [3.0])  # 4/5
    assert np.isinf(weighted_conformal_upper(values, weights, [1.0], 0.85)[0])  # never 0.85 of 5
    assert weighted_conformal_upper(values, weights, [0.0], 0.85)[0] == 3.0  # 4/4


def test_boltzmann_weights_and_effective_sample_size():
    e = np.array([0.0, 0.1, 0.2])
    w = boltzmann_weights(e, 300.0, 600.0)  # hotter target: higher energies weigh more
    np.testing.assert_allclose(w / w[0], np.exp(e * (1 / (kB * 300.0) - 1 / (kB * 600.0))))
    assert w.max() == 1.0
    assert effective_sample_size(np.ones(7)) == pytest.approx(7.0)
    assert effective_sample_size(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    with pytest.raises(AlloopError, match="weights must be"):
        effective_sample_size(np.zeros(3))


def test_bad_input_is_one_line():
    with pytest.raises(AlloopError, match="target temperature needs"):
        force_error_bound(np.ones(5), 0.9, n_test=2, target_temperature_K=500.0)
    with pytest.raises(AlloopError, match="for neither"):
        force_error_bound(np.ones(5), 0.9, predicted=np.ones(5))
    with pytest.raises(AlloopError, match="temperatures must be > 0"):
        boltzmann_weights(np.ones(2), 0.0, 300.0)
