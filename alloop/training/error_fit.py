"""Fit a trained model's :class:`~alloop.uncertainty.error_model.ErrorModel` from its training and held-out frames.

The latent distance is fitted on the latent features of the frames the model learned its final stage from. The
calibration needs frames with a known error that the model did not train on: the validation frames of its
training (``HeldOut``). When the delivered model was refitted on every frame (``training.final_refit``) no frame is
held out from it; the calibration is then the validated model's (its distance fitted on its own training frames,
its errors on the validation frames), applied to the refit's distances: the refit learned more frames, so its
errors are, if anything, smaller than predicted.

``ensemble_of`` (a campaign's training) describes the calibration frames' ensemble (their energies under the
delivered model, formulas, MD temperature), which the error model keeps for bounds at a declared other temperature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from alloop.potentials.base import Potential
from alloop.potentials.baseline import learned_part
from alloop.potentials.inference import predict, predict_energies, predict_features
from alloop.system.molecules import frame_molecules
from alloop.training.data import FrameDataset
from alloop.training.metrics import per_frame_errors
from alloop.uncertainty.error_model import DEFAULT_COVERAGE, CalibrationEnsemble, ErrorModel, FrameErrors, spearman
from alloop.uncertainty.latent_distance import LatentDistance
from alloop.uncertainty.predicted_error import ErrorCalibration

#: the fewest held-out frames a calibration is fitted on (fewer: the model predicts no error in eV/A)
MIN_CALIBRATION_FRAMES = 5
#: frames per model call
BATCH_SIZE = 64
#: the calibration frames' ensemble, from the frames (see the module's docstring)
EnsembleOf = Callable[[FrameDataset], CalibrationEnsemble]


@dataclass(frozen=True)
class HeldOut:
    """A model, the frames it trained on and labelled frames it did not (the calibration frames), with their
    indices in the set they were split from (frames held out by two folds calibrate once: the first fold's)."""

    model: Potential
    training: FrameDataset
    frames: FrameDataset
    indices: np.ndarray | None = None


def frame_force_mae(model: Potential, data: FrameDataset) -> np.ndarray:
    """Per frame [M]: the mean absolute force error over atoms and components (eV/A)."""
    energy, forces = predict(model, data, BATCH_SIZE)
    return per_frame_errors(data, energy, forces, "mae")[0]


def frame_distances(distance: LatentDistance, model: Potential, data: FrameDataset) -> np.ndarray:
    """Per frame [M]: the latent distance of ``data`` under ``model``'s features."""
    return distance.frame_scores(data.numbers, predict_features(model, data, BATCH_SIZE), data.offsets)


def fit_distance(model: Potential, training: FrameDataset) -> LatentDistance:
    return LatentDistance.fit(training.numbers, predict_features(model, training, BATCH_SIZE))


def fit_error_model(model: Potential, training: FrameDataset, held_out: HeldOut | Sequence[HeldOut] | None,
                    coverage: float = DEFAULT_COVERAGE, *,
                    ensemble_of: EnsembleOf | None = None, exponent: float | None = None) -> tuple[ErrorModel, str]:
    """The error model of ``model`` (trained on ``training``) and a one-line account of its calibration; several
    ``held_out`` (cross-validation folds) pool their frames, each frame's distance and error under its own fold's
    model; ``exponent``: the distance's power fixed (only the scale fitted; None: fitted too)."""
    distance = fit_distance(model, training)
    folds = _distinct([] if held_out is None else [held_out] if isinstance(held_out, HeldOut) else list(held_out))
    n = sum(len(h.frames) for h in folds)
    if n < MIN_CALIBRATION_FRAMES:
        return ErrorModel(distance, None), (f"error model: latent distance only; {n} held-out frames, "
                                            f"{MIN_CALIBRATION_FRAMES} needed to calibrate it in eV/A")
    signal, error = (np.concatenate(parts) for parts in zip(*(_signal_error(h, model, training, distance)
                                                              for h in folds), strict=True))
    calibration = ErrorCalibration.fit(signal, np.maximum(error, 1e-12), coverage, exponent)
    own = len(folds) == 1 and folds[0].model is model and folds[0].training is training
    whose = "" if own else (" (the validated model's, before the refit)" if len(folds) == 1 else
                            f" of {len(folds)} cross-validation folds (each fold's model, before the refit)")
    line = (f"error model: calibrated on {calibration.n} held-out frames{whose}: predicted error ~ "
            f"{calibration.scale:.3g} x distance^{calibration.exponent:.2f}{'' if exponent is None else ' (fixed)'} eV/A, "
            f"{100 * coverage:.0f} % bound "
            f"{calibration.factor:.2f} x that" + ("" if calibration.exact else " (too few frames for that coverage: "
                                                    "the largest ratio seen)"))
    ensemble = None
    if ensemble_of is not None:
        ensemble = CalibrationEnsemble.joined([ensemble_of(h.frames) for h in folds])
        line += f"; its frames' ensemble kept ({ensemble.temperature_K:g} K)"
    return ErrorModel(distance, calibration, ensemble), line


def _distinct(folds: list[HeldOut]) -> list[HeldOut]:
    """The folds with every frame once (in the first fold holding it out); folds left without frames dropped."""
    seen: set[int] = set()
    out = []
    for h in folds:
        if h.indices is None:
            out.append(h)
            continue
        keep = np.array([int(i) not in seen for i in h.indices], dtype=bool)
        seen.update(int(i) for i in h.indices)
        if keep.all():
            out.append(h)
        elif keep.any():
            out.append(HeldOut(h.model, h.training, h.frames.subset(np.flatnonzero(keep)), h.indices[keep]))
    return out


def _signal_error(held_out: HeldOut, model: Potential, training: FrameDataset,
                  distance: LatentDistance) -> tuple[np.ndarray, np.ndarray]:
    """The held-out frames' latent distances (under the model that held them out, its distance fitted on its own
    training frames) and true force MAE (eV/A)."""
    own = held_out.model is model and held_out.training is training
    cal_distance = distance if own else fit_distance(held_out.model, held_out.training)
    return (frame_distances(cal_distance, held_out.model, held_out.frames),
            frame_force_mae(held_out.model, held_out.frames))


def frame_predictions(model: Potential, metadata: dict,
                      data: FrameDataset) -> tuple[FrameErrors, np.ndarray] | None:
    """The model's own error model (in its checkpoint ``metadata``) on labelled ``data``: per frame its predicted
    errors and the true force MAE (eV/A); None for a model without a calibrated error model."""
    error_model = ErrorModel.from_metadata(metadata)
    if error_model is None or error_model.calibration is None:
        return None
    features = predict_features(learned_part(model), data, BATCH_SIZE)
    return error_model.frame_errors(data.numbers, features, data.offsets), frame_force_mae(model, data)


def predicted_error_metrics(model: Potential, metadata: dict, data: FrameDataset) -> dict[str, float] | None:
    """How the model's own error model (in its checkpoint ``metadata``) did on labelled ``data``: the mean and 95th
    percentile of the predicted per-frame force error (eV/A; the mean estimates the force MAE), Spearman's rho
    between predicted and true per-frame force MAE, and the share of frames whose error lies below the predicted
    bound at its stated coverage. None for a model without a calibrated error model."""
    found = frame_predictions(model, metadata, data)
    if found is None:
        return None
    predicted, true = found
    coverage = ErrorModel.from_metadata(metadata).calibration.coverage  # type: ignore[union-attr]
    return {"predicted_force_mae_eV_per_A": float(predicted.predicted.mean()),
            "predicted_force_p95_eV_per_A": float(np.percentile(predicted.predicted, 95)),
            "error_spearman": spearman(predicted.predicted, true),
            "bound_coverage": float(np.mean(true <= predicted.upper)),
            "bound_coverage_stated": coverage}


def shifted_bound_metrics(model: Potential, metadata: dict, data: FrameDataset,
                          temperature_K: float) -> dict[str, float] | None:
    """The model's bound for frames declared to come from ``temperature_K`` (its calibration ratios weighted by the
    Boltzmann likelihood ratio, :meth:`ErrorModel.shifted_upper`) on labelled ``data``: the share of frames under
    it, the share whose bound is infinite (the calibration frames' weight cannot reach the coverage), the mean
    effective sample size of the weighted calibration frames and the median finite bound (eV/A). None for a model
    without a calibrated error model; an :class:`AlloopError` for one that keeps no calibration ensemble."""
    found = frame_predictions(model, metadata, data)
    if found is None:
        return None
    predicted, true = found
    error_model = ErrorModel.from_metadata(metadata)
    assert error_model is not None  # frame_predictions found one
    bound = error_model.shifted_upper(predicted.predicted, predict_energies(model, data, BATCH_SIZE),
                                      frame_molecules(data.numbers, data.offsets), temperature_K)
    finite = np.isfinite(bound.upper)
    assert error_model.ensemble is not None  # shifted_upper checked it
    return {"declared_temperature_K": float(temperature_K),
            "calibration_temperature_K": error_model.ensemble.temperature_K,
            "shifted_bound_coverage": float(np.mean(true <= bound.upper)),
            "shifted_bound_infinite_share": float(np.mean(~finite)),
            "shifted_effective_sample_size": float(np.mean(bound.effective_sample_size)),
            "shifted_bound_median_eV_per_A": float(np.median(bound.upper[finite])) if finite.any() else float("inf")}
