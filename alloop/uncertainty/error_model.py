"""A model's predicted force error: its latent distance to the training frames, calibrated to eV/A.

:class:`ErrorModel` joins a :class:`~alloop.uncertainty.latent_distance.LatentDistance` (fitted on the latent
features of the frames the model learned from) and, when held-out labelled frames were available, an
:class:`~alloop.uncertainty.predicted_error.ErrorCalibration` that maps a frame's distance to its expected force MAE
and to an upper bound at a stated coverage. It travels inside the model's checkpoint metadata (key
``error_model``, a base64 ``.npz``), so every trained model carries its own calibration: ``alloop evaluate``, the MD
task and the status read it from there.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass

import numpy as np

from alloop.errors import AlloopError
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
class ErrorModel:
    """A latent distance and, if it could be calibrated, the map from it to a force error in eV/A."""

    distance: LatentDistance
    calibration: ErrorCalibration | None

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    def frame_errors(self, numbers: np.ndarray, features: np.ndarray, ptr: np.ndarray) -> FrameErrors:
        """The frames' distances and predicted errors (frames given as concatenated atoms with offsets ``ptr``)."""
        d = self.distance.frame_scores(numbers, features, ptr)
        if self.calibration is None:
            nan = np.full(d.shape, np.nan)
            return FrameErrors(d, nan, nan.copy())
        return FrameErrors(d, self.calibration.predict(d), self.calibration.upper(d))

    def to_text(self) -> str:
        """The model as base64 text (an ``.npz`` of the distance's arrays and a JSON header)."""
        header = {"format": 1, "reduce": self.distance.reduce,
                  "calibration": None if self.calibration is None else self.calibration.to_dict()}
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
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise AlloopError(f"not a serialised error model: {exc}") from None
        return cls(distance, None if calibration is None else ErrorCalibration.from_dict(calibration))

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
