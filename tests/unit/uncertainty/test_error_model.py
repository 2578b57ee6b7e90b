"""The error model: a latent distance with its calibration, serialised into checkpoint metadata, and Spearman's rho."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.uncertainty.error_model import METADATA_KEY, CalibrationEnsemble, ErrorModel, spearman
from alloop.uncertainty.latent_distance import LatentDistance
from alloop.uncertainty.predicted_error import ErrorCalibration


def _atoms(rng: np.random.Generator, n_frames: int, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of 3 atoms (Z = 1, 1, 8) with 6 latent features each; ``spread`` scales the features."""
    numbers = np.tile([1, 1, 8], n_frames)
    features = rng.normal(size=(numbers.size, 6)) * spread + np.where(numbers == 8, 3.0, 0.0)[:, None]
    return numbers, features, np.arange(n_frames + 1) * 3


def _model(calibrated: bool = True) -> ErrorModel:
    rng = np.random.default_rng(0)
    distance = LatentDistance.fit(*_atoms(rng, 40)[:2])
    calibration = ErrorCalibration.fit(np.linspace(0.5, 2.0, 20), 0.01 * np.linspace(0.5, 2.0, 20) ** 2)
    return ErrorModel(distance, calibration if calibrated else None)


def test_the_error_model_survives_the_checkpoint_metadata():
    model = _model()
    numbers, features, ptr = _atoms(np.random.default_rng(1), 10, spread=2.0)
    back = ErrorModel.from_metadata({METADATA_KEY: model.to_text()})
    assert back is not None and back.calibration == model.calibration
    before, after = model.frame_errors(numbers, features, ptr), back.frame_errors(numbers, features, ptr)
    np.testing.assert_allclose(after.distance, before.distance)
    np.testing.assert_allclose(after.upper, before.upper)
    assert np.all(before.upper > before.predicted)
    assert ErrorModel.from_metadata({}) is None  # a model trained before error models existed


def test_frames_farther_from_the_training_atoms_get_a_larger_predicted_error():
    model = _model()
    near = model.frame_errors(*_atoms(np.random.default_rng(2), 20))
    far = model.frame_errors(*_atoms(np.random.default_rng(2), 20, spread=3.0))
    assert far.predicted.mean() > 2 * near.predicted.mean()


def test_an_uncalibrated_model_predicts_no_error_in_eV_per_A():
    errors = _model(calibrated=False).frame_errors(*_atoms(np.random.default_rng(3), 5))
    assert np.all(np.isfinite(errors.distance)) and np.all(np.isnan(errors.predicted)) and np.all(np.isnan(errors.upper))


def test_corrupt_text_is_refused():
    with pytest.raises(AlloopError, match="not a serialised error model"):
        ErrorModel.from_text("bm90IGFuIG5weg==")


def test_spearman_is_a_rank_correlation():
    x = np.array([0.1, 0.5, 0.2, 3.0, 1.0])
    assert spearman(x, x ** 3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(np.corrcoef([0, 1.5, 1.5, 3], [0, 1, 2, 3])[0, 1])
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def _shifted_model(n: int = 40, temperature_K: float = 500.0) -> tuple[ErrorModel, np.ndarray]:
    """A model calibrated on ``n`` frames of water whose error ratio grows with their energy; the energies."""
    rng = np.random.default_rng(4)
    signal = rng.uniform(0.5, 2.0, n)
    energies = rng.normal(0.0, 0.1, n)
    error = 0.01 * signal * np.exp(3.0 * (energies - energies.min()))  # hotter (higher-energy) frames: worse
    calibration = ErrorCalibration.fit(signal, error)
    ensemble = CalibrationEnsemble(tuple(energies), ("H2O",) * n, temperature_K)
    return ErrorModel(_model().distance, calibration, ensemble), energies


def test_the_calibration_ensemble_survives_the_checkpoint_metadata():
    model, _ = _shifted_model()
    back = ErrorModel.from_metadata({METADATA_KEY: model.to_text()})
    assert back is not None and back.ensemble == model.ensemble and back.calibration == model.calibration
    assert len(back.calibration.ratios) == 40  # type: ignore[union-attr]


def test_at_the_calibration_temperature_the_weighted_bound_is_the_plain_one():
    model, energies = _shifted_model()
    predicted = np.array([0.01, 0.02, 0.05])
    bound = model.shifted_upper(predicted, energies[:3], np.array(["H2O"] * 3), 500.0)
    assert model.calibration is not None and model.calibration.exact  # 40 frames suffice for 90 %
    np.testing.assert_allclose(bound.upper, model.calibration.factor * predicted)  # equal weights: split conformal
    np.testing.assert_allclose(bound.effective_sample_size, 40.0)


def test_a_hotter_declared_temperature_widens_the_bound_and_shrinks_the_sample():
    model, energies = _shifted_model()
    predicted = np.full(3, 0.02)
    test_energies = np.full(3, energies.max())  # hot frames
    plain = model.shifted_upper(predicted, test_energies, np.array(["H2O"] * 3), 500.0)
    hot = model.shifted_upper(predicted, test_energies, np.array(["H2O"] * 3), 1000.0)
    assert np.all(hot.upper > plain.upper)
    assert np.all(hot.effective_sample_size < 40.0)
    far = model.shifted_upper(predicted[:1], np.array([energies.max() + 500.0]), np.array(["H2O"]), 1000.0)
    assert np.isinf(far.upper[0]) and far.effective_sample_size[0] == hot.effective_sample_size[0]  # no underflow error


def test_frames_of_a_formula_without_calibration_frames_get_no_finite_bound():
    model, energies = _shifted_model()
    bound = model.shifted_upper(np.array([0.02, 0.02]), energies[:2], np.array(["H2O", "CH4"]), 600.0)
    assert np.isfinite(bound.upper[0]) and np.isinf(bound.upper[1])
    assert bound.effective_sample_size[1] == 0.0


def test_a_model_without_a_calibration_ensemble_refuses_a_shifted_bound():
    with pytest.raises(AlloopError, match="keeps no calibration ensemble"):
        _model().shifted_upper(np.array([0.02]), np.array([0.0]), np.array(["H2O"]), 1000.0)
    with pytest.raises(AlloopError, match="one formula per energy"):
        CalibrationEnsemble((0.0, 1.0), ("H2O",), 500.0)
