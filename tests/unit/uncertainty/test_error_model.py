"""The error model: a latent distance with its calibration, serialised into checkpoint metadata, and Spearman's rho."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.uncertainty.error_model import METADATA_KEY, ErrorModel, spearman
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
