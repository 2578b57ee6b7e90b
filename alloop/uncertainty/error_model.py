"""A model's predicted force error: its latent distance to the training frames, calibrated to eV/A.

:class:`ErrorModel` joins a :class:`~alloop.uncertainty.latent_distance.LatentDistance` (fitted on the latent
features of the frames the model learned from) and, when held-out labelled frames were available, an
:class:`~alloop.uncertainty.predicted_error.ErrorCalibration` that maps a frame's distance to its expected force MAE
and to an upper bound at a stated coverage. It travels inside the model's checkpoint metadata (key
``error_model``, a base64 ``.npz``), so every trained model carries its own calibration: ``alloop evaluate``, the MD
task and the status read it from there.

A campaign's error model also keeps its calibration frames' ensemble (:class:`CalibrationEnsemble`: their potential
energies under the model, formulas and the MD temperature they were drawn at). For frames of a declared other
temperature :meth:`ErrorModel.shifted_upper` weights the calibration ratios by the Boltzmann likelihood ratio
(weighted conformal prediction, :mod:`alloop.uncertainty.conformal`) and reports the effective sample size. The
guarantee assumes the calibration frames are Boltzmann samples at their temperature; a campaign's held-out frames
are a random share of frames the loop *selected*, so the weighting corrects the temperature, not the selection.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass

import numpy as np

from alloop.errors import AlloopError
from alloop.system.molecules import frame_molecules
from alloop.uncertainty.conformal import effective_sample_size, log_boltzmann_ratio, weighted_conformal_upper
from alloop.uncertainty.latent_distance import LatentDistance
from alloop.uncertainty.predicted_error import ErrorCalibration

#: checkpoint metadata key of a model's error model
METADATA_KEY = "error_model"
#: coverage of the upper bound (a frame's error is below it with about this probability)
DEFAULT_COVERAGE = 0.9


@dataclass(frozen=True)
class FrameErrors:
    """Per frame [M]: the latent distance, the predicted force error and its upper bound (eV/A; NaN uncalibrated)."""

    distance: np.ndarray
    predicted: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class CalibrationEnsemble:
    """The calibration frames' ensemble, one entry per frame in the order of :attr:`ErrorCalibration.ratios`: the
    potential energy under the delivered model (eV; any per-composition reference), the Hill formula, and the MD
    temperature the frames were drawn at."""

    energies_eV: tuple[float, ...]
    formulas: tuple[str, ...]
    temperature_K: float

    def __post_init__(self) -> None:
        if len(self.energies_eV) != len(self.formulas) or not self.energies_eV:
            raise AlloopError(f"a calibration ensemble needs one formula per energy, got {len(self.energies_eV)} "
                              f"energies and {len(self.formulas)} formulas")
        if not (self.temperature_K > 0 and np.all(np.isfinite(self.energies_eV))):
            raise AlloopError("a calibration ensemble needs finite energies and a temperature > 0 K")

    @classmethod
    def joined(cls, parts: list[CalibrationEnsemble]) -> CalibrationEnsemble:
        """The frames of ``parts`` (one temperature) in order."""
        if not parts or len({p.temperature_K for p in parts}) != 1:
            raise AlloopError("calibration ensembles join at one temperature")
        return cls(tuple(e for p in parts for e in p.energies_eV), tuple(f for p in parts for f in p.formulas),
                   parts[0].temperature_K)

    @classmethod
    def of_frames(cls, energies_eV: np.ndarray, numbers: np.ndarray, offsets: np.ndarray,
                  temperature_K: float) -> CalibrationEnsemble:
        return cls(tuple(float(e) for e in np.asarray(energies_eV).ravel()),
                   tuple(str(f) for f in frame_molecules(numbers, offsets)), float(temperature_K))


@dataclass(frozen=True)
class ShiftedBound:
    """Per frame [M]: the weighted upper bound (eV/A; inf where the calibration frames' weight cannot reach the
    coverage) and the effective sample size of the calibration frames of its formula (0: none of its formula)."""

    upper: np.ndarray
    effective_sample_size: np.ndarray


@dataclass(frozen=True)
class ErrorModel:
    """A latent distance and, if it could be calibrated, the map from it to a force error in eV/A (and, for a
    campaign's model, the calibration frames' ensemble)."""

    distance: LatentDistance
    calibration: ErrorCalibration | None
    ensemble: CalibrationEnsemble | None = None

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    def shifted_upper(self, predicted: np.ndarray, energies_eV: np.ndarray, formulas: np.ndarray,
                      temperature_K: float) -> ShiftedBound:
        """The bound at the calibration's coverage for frames of a declared ``temperature_K``: per frame its
        ``predicted`` error times the Boltzmann-weighted conformal quantile of the calibration ratios of its formula
        (``energies_eV``: the frames' energies under this model, [M])."""
        cal, ens = self.calibration, self.ensemble
        if cal is None or ens is None or len(cal.ratios) != len(ens.energies_eV):
            raise AlloopError("this model's error model keeps no calibration ensemble (energies and ratios of its "
                              "calibration frames: models trained before they were kept, or outside a campaign); "
                              "no bound for another temperature")
        p, e = np.asarray(predicted, dtype=np.float64), np.asarray(energies_eV, dtype=np.float64)
        f = np.asarray(formulas).astype(str)
        if not p.shape == e.shape == f.shape or p.ndim != 1:
            raise AlloopError(f"need one prediction, energy and formula per frame, got {p.shape}, {e.shape}, "
                              f"{f.shape}")
        ratios, cal_energies = np.asarray(cal.ratios), np.asarray(ens.energies_eV)
        cal_formulas = np.asarray(ens.formulas).astype(str)
        upper, ess = np.full(p.shape, np.inf), np.zeros(p.shape)
        for formula in np.unique(f):
            here, known = f == formula, cal_formulas == formula
            if not known.any():
                continue
            cal_log = log_boltzmann_ratio(cal_energies[known], ens.temperature_K, temperature_K)
            test_log = log_boltzmann_ratio(e[here], ens.temperature_K, temperature_K)
            top = max(cal_log.max(), test_log.max())  # one scale for both (frames far hotter: calibration weights 0)
            factors = weighted_conformal_upper(ratios[known], np.exp(cal_log - top), np.exp(test_log - top),
                                               cal.coverage)
            upper[here] = factors * p[here]
            ess[here] = effective_sample_size(np.exp(cal_log - cal_log.max()))
        return ShiftedBound(upper, ess)

    def frame_errors(self, numbers: np.ndarray, features: np.ndarray, ptr: np.ndarray) -> FrameErrors:
        """The frames' distances and predicted errors (frames given as concatenated atoms with offsets ``ptr``)."""
        d = self.distance.frame_scores(numbers, features, ptr)
        if self.calibration is None:
            nan = np.full(d.shape, np.nan)
            return FrameErrors(d, nan, nan.copy())
        return FrameErrors(d, self.calibration.predict(d), self.calibration.upper(d))

    def to_text(self) -> str:
        """The model as base64 text (an ``.npz`` of the distance's arrays and a JSON header)."""
        ens = self.ensemble
        header = {"format": 1, "reduce": self.distance.reduce,
                  "calibration": None if self.calibration is None else self.calibration.to_dict(),
                  "ensemble": None if ens is None else {"energies_eV": list(ens.energies_eV),
                                                        "formulas": list(ens.formulas),
                                                        "temperature_K": ens.temperature_K}}
        arrays = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8).copy(),
                  **self.distance.to_arrays()}
        buf = io.BytesIO()
        np.savez_compressed(buf, allow_pickle=False, **arrays)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> ErrorModel:
        try:
            with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            header = json.loads(arrays.pop("header").tobytes().decode())
            distance = LatentDistance.from_arrays(arrays, reduce=header["reduce"])
            calibration = header["calibration"]
            ens = header.get("ensemble")  # absent in error models saved before ensembles were kept
            ensemble = None if ens is None else CalibrationEnsemble(
                tuple(ens["energies_eV"]), tuple(ens["formulas"]), float(ens["temperature_K"]))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise AlloopError(f"not a serialised error model: {exc}") from None
        return cls(distance, None if calibration is None else ErrorCalibration.from_dict(calibration), ensemble)

    @classmethod
    def from_metadata(cls, metadata: dict) -> ErrorModel | None:
        """The error model in a checkpoint's metadata, or None (a model trained before error models existed, or
        outside a campaign)."""
        text = metadata.get(METADATA_KEY)
        return None if text is None else cls.from_text(text)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of two [n] arrays (average ranks for ties; NaN when either is constant)."""
    rx, ry = _ranks(np.asarray(x, dtype=np.float64)), _ranks(np.asarray(y, dtype=np.float64))
    if rx.size < 2 or np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(values.size, dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]
