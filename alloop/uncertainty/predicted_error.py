"""An uncertainty signal turned into a predicted force error (eV/A), with a conformal upper bound.

Fitted on frames with a known error that are exchangeable with the frames it is applied to (held-out labelled frames
of the same ensemble: never frames chosen *because* they were uncertain). The map is a power law, ``error ~ a *
signal^b`` (least squares in log-log, or b given and only a fitted), rescaled so that its mean over the calibration
frames equals their mean error: the mean prediction over a set of frames estimates their force MAE. The upper bound
is the prediction times the conformal quantile of the leave-one-out ratios error_i / prediction_i (each frame's
prediction from the map fitted without it, so the ratios are those of new frames, as in split conformal prediction,
without halving the few frames there are): a new exchangeable frame's error lies below it with probability close to
``coverage`` (jackknife+; tested on synthetic data). With n calibration frames that quantile needs n >= coverage /
(1 - coverage); below that the largest ratio seen stands in (and :attr:`exact` is False). The leave-one-out ratios
are kept (:attr:`ratios`): a bound for frames of another temperature weights them
(:meth:`alloop.uncertainty.error_model.ErrorModel.shifted_upper`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from alloop.errors import AlloopError
from alloop.uncertainty.conformal import conformal_upper

#: the smallest signal used in the log-log fit (signals of 0 are clipped to it)
TINY = 1e-12


@dataclass(frozen=True)
class ErrorCalibration:
    """``predict(signal)``: the expected force error (eV/A); ``upper(signal)``: the bound at ``coverage``."""

    scale: float  # a of error ~ a * signal^b
    exponent: float  # b
    coverage: float
    factor: float  # upper = factor * predict
    n: int
    exact: bool  # whether n sufficed for the conformal quantile at this coverage
    ratios: tuple[float, ...] = ()  # the calibration frames' leave-one-out error / prediction (empty: not kept)

    @classmethod
    def fit(cls, signal: np.ndarray, error: np.ndarray, coverage: float = 0.9,
            exponent: float | None = None) -> ErrorCalibration:
        """Fit on the calibration frames' signals and true force errors (both [n], finite, errors > 0); with
        ``exponent`` the power b is that number and only the scale a is fitted (a few frames pin a scale down far
        better than a slope)."""
        s, e = np.asarray(signal, dtype=np.float64), np.asarray(error, dtype=np.float64)
        if s.shape != e.shape or s.ndim != 1 or s.size < 2:
            raise AlloopError(f"need at least 2 calibration frames with one signal and one error each, got "
                              f"{s.shape} and {e.shape}")
        if not (np.all(np.isfinite(s)) and np.all(np.isfinite(e)) and np.all(e > 0)):
            raise AlloopError("calibration signals must be finite and errors finite and positive")
        if not 0.0 < coverage < 1.0:
            raise AlloopError(f"coverage must be in (0, 1), got {coverage}")
        if exponent is not None and not (math.isfinite(exponent) and exponent >= 0):
            raise AlloopError(f"a fixed exponent must be finite and >= 0, got {exponent}")
        x = np.log(np.maximum(s, TINY))
        scale, power = _power_law(x, e, exponent)
        keep = ~np.eye(s.size, dtype=bool)
        loo = np.array([_power_law(x[keep[i]], e[keep[i]], exponent) for i in range(s.size)])  # [n, (scale, power)]
        ratios = e / (loo[:, 0] * np.exp(loo[:, 1] * x))
        factor, exact = conformal_upper(ratios, coverage)
        return cls(scale, power, coverage, factor, int(s.size), exact, tuple(float(r) for r in ratios))

    def predict(self, signal: np.ndarray) -> np.ndarray:
        s = np.maximum(np.asarray(signal, dtype=np.float64), TINY)
        return self.scale * s ** self.exponent

    def upper(self, signal: np.ndarray) -> np.ndarray:
        return self.factor * self.predict(signal)

    def signal_at(self, force_error_eV_per_A: float) -> float:
        """The signal whose *upper bound* equals ``force_error_eV_per_A``: frames above it may exceed that error
        with more than 1 - coverage probability (the flag limit of a user's error target)."""
        if force_error_eV_per_A <= 0:
            raise AlloopError(f"a force error target must be > 0, got {force_error_eV_per_A}")
        if self.exponent == 0.0:
            return math.inf if self.factor * self.scale <= force_error_eV_per_A else 0.0
        return float((force_error_eV_per_A / (self.factor * self.scale)) ** (1.0 / self.exponent))

    def to_dict(self) -> dict[str, float | int | bool | list[float]]:
        return {**asdict(self), "ratios": list(self.ratios)}

    @classmethod
    def from_dict(cls, data: dict) -> ErrorCalibration:
        """From :meth:`to_dict` (a calibration saved before the ratios were kept has none)."""
        return cls(float(data["scale"]), float(data["exponent"]), float(data["coverage"]), float(data["factor"]),
                   int(data["n"]), bool(data["exact"]), tuple(float(r) for r in data.get("ratios", ())))


def _power_law(log_signal: np.ndarray, error: np.ndarray, fixed: float | None = None) -> tuple[float, float]:
    """(a, b) of error ~ a * signal^b: b the ``fixed`` one, else from least squares in log-log (never negative: a
    larger uncertainty never predicts a smaller error); a such that the mean prediction equals the mean error."""
    exponent = 0.0 if fixed is None else float(fixed)
    if fixed is None and np.ptp(log_signal) > 0:
        exponent = max(float(np.polyfit(log_signal, np.log(error), 1)[0]), 0.0)
    return float(error.mean() / np.exp(exponent * log_signal).mean()), exponent
