"""The error model fitted with a trained model: calibrated on held-out frames when there are enough, and its
predictions rank the true errors of a model that is wrong in a known way."""

from __future__ import annotations

import torch
from training_synthetic import label_frames, perturbed, truth_potential

from alloop.potentials.inference import predict_features
from alloop.training.data import FrameDataset
from alloop.training.error_fit import MIN_CALIBRATION_FRAMES, HeldOut, fit_error_model, frame_force_mae


def _data(seed: int, n: int, *sigmas: float) -> FrameDataset:
    """``n`` ethanol frames per distortion ``sigma`` (Angstrom), labelled by the truth."""
    frames = [a for k, s in enumerate(sigmas) for a in perturbed(["CH3CH2OH"], n, seed=seed + 100 * k, sigma=s)]
    return FrameDataset.from_atoms(label_frames(frames, truth_potential()))


def _wrong_model():
    """The truth with 10 % larger weights: its force error grows with the forces, so with the distortion."""
    model = truth_potential()
    with torch.no_grad():
        model.weights.mul_(1.1)
    return model


def test_the_error_model_is_calibrated_on_held_out_frames_and_predicts_larger_errors_far_away():
    model = _wrong_model()
    train, held = _data(0, 20, 0.03), _data(1, 4, 0.02, 0.05, 0.1, 0.2)
    error_model, line = fit_error_model(model, train, HeldOut(model, train, held))
    assert error_model.calibrated and error_model.calibration.n == 16 and "calibrated on 16 held-out frames" in line
    assert error_model.calibration.exponent > 0
    far, near = _data(2, 12, 0.25), _data(3, 12, 0.03)
    near_pred = error_model.frame_errors(near.numbers, predict_features(model, near), near.offsets).predicted
    far_pred = error_model.frame_errors(far.numbers, predict_features(model, far), far.offsets).predicted
    assert far_pred.mean() > near_pred.mean()
    assert frame_force_mae(model, far).mean() > frame_force_mae(model, near).mean()  # the premise: far is worse


def test_too_few_held_out_frames_leave_the_error_model_uncalibrated_and_say_so():
    model, train = _wrong_model(), _data(0, 10, 0.05)
    few = _data(1, MIN_CALIBRATION_FRAMES - 1, 0.05)
    error_model, line = fit_error_model(model, train, HeldOut(model, train, few))
    assert not error_model.calibrated and f"{MIN_CALIBRATION_FRAMES} needed" in line
    assert not fit_error_model(model, train, None)[0].calibrated


def test_cross_validation_folds_pool_their_frames_once_each():
    """Several held-out folds calibrate together, each frame under its own fold's model, a frame two folds held out
    once (the first fold's)."""
    import numpy as np

    model, other = _wrong_model(), truth_potential()
    train = _data(0, 20, 0.03)
    a, b = _data(1, 3, 0.02, 0.1), _data(2, 3, 0.05, 0.2)  # 6 frames each
    folds = [HeldOut(model, train, a, np.arange(6)), HeldOut(other, train, b, np.arange(4, 10))]
    error_model, line = fit_error_model(model, train, folds)
    assert error_model.calibration.n == 10  # type: ignore[union-attr]  # frames 4 and 5 of the second fold: once
    assert "calibrated on 10 held-out frames of 2 cross-validation folds" in line
    single, _ = fit_error_model(model, train, folds[:1])
    assert single.calibration.n == 6  # type: ignore[union-attr]
