"""Conformal upper bounds on per-frame force errors: split conformal, and weighted for a declared temperature shift.

Split conformal: with n calibration frames exchangeable with a new frame, the ceil((n + 1) c)-th smallest of their
nonconformity scores bounds the new frame's score with probability >= c (:func:`conformal_upper`). The score is the
frame's force error divided by its predicted error (a normalised bound: ``upper = factor x predicted``), or the
error itself without a prediction (one bound for every frame).

Calibration frames drawn at one temperature are not exchangeable with frames of another. For a declared target
temperature the likelihood ratio of the two Boltzmann ensembles is known up to a constant,
``w(x) = exp(-E(x) (1/kT_target - 1/kT_cal))`` (E: the frame's potential energy, eV), and weighted conformal
prediction (Tibshirani, Foygel Barber, Candes & Ramdas, NeurIPS 2019) restores the guarantee: the bound for a
frame x is the c-quantile of the calibration scores weighted ``p_i = w_i / (sum_j w_j + w(x))``, the remaining mass
``w(x) / (...)`` at infinity (:func:`weighted_conformal_upper`). Its price is the effective sample size
``(sum w)^2 / sum w^2`` (:func:`effective_sample_size`): a few calibration frames carry the weight when the shift is
large, and the bound becomes infinite once their mass cannot reach c. The ratio assumes both ensembles are canonical
on the same surface (the energies: one model's or one level's, of the same molecule).

Tested on synthetic shifts; a campaign's model applies it through its error model
(:meth:`alloop.uncertainty.error_model.ErrorModel.shifted_upper`, ``alloop evaluate --temperature``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ase.units import kB

from alloop.errors import AlloopError


def conformal_upper(values: np.ndarray, coverage: float) -> tuple[float, bool]:
    """The split-conformal upper quantile of ``values`` at ``coverage``: the ceil((n + 1) coverage)-th smallest,
    and whether n sufficed (else the largest value, returned with False)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    rank = math.ceil((v.size + 1) * coverage)
    if rank > v.size:
        return float(v[-1]), False
    return float(v[rank - 1]), True


def log_boltzmann_ratio(energies_eV: np.ndarray, temperature_K: float, target_temperature_K: float) -> np.ndarray:
    """log w = -E (1/kT_target - 1/kT_cal) per frame (up to a constant, which every use normalises away)."""
    if temperature_K <= 0 or target_temperature_K <= 0:
        raise AlloopError(f"temperatures must be > 0 K, got {temperature_K:g} and {target_temperature_K:g}")
    e = np.asarray(energies_eV, dtype=np.float64)
    if not np.all(np.isfinite(e)):
        raise AlloopError("energies must be finite")
    return -e * (1.0 / (kB * target_temperature_K) - 1.0 / (kB * temperature_K))


def boltzmann_weights(energies_eV: np.ndarray, temperature_K: float, target_temperature_K: float) -> np.ndarray:
    """The likelihood ratio target / calibration ensemble of frames with potential energies ``energies_eV``, scaled
    so that the largest weight is 1."""
    log_w = log_boltzmann_ratio(energies_eV, temperature_K, target_temperature_K)
    return np.exp(log_w - log_w.max()) if log_w.size else log_w


def effective_sample_size(weights: np.ndarray) -> float:
    """(sum w)^2 / sum w^2: n for equal weights, 1 when one frame carries all of it."""
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0 or np.any(w < 0) or not np.any(w > 0):
        raise AlloopError("weights must be >= 0, with at least one > 0")
    return float(w.sum() ** 2 / (w * w).sum())


def weighted_conformal_upper(values: np.ndarray, weights: np.ndarray, test_weights: np.ndarray | float,
                             coverage: float) -> np.ndarray:
    """Per test frame: the smallest calibration value v with ``sum_{v_i <= v} w_i / (sum w + w_test) >= coverage``
    (infinity when the calibration mass never reaches it). Equal weights give :func:`conformal_upper`'s rank."""
    v, w = np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    if v.ndim != 1 or v.shape != w.shape or v.size == 0:
        raise AlloopError(f"need one weight per calibration value, got {v.shape} and {w.shape}")
    if not 0.0 < coverage < 1.0:
        raise AlloopError(f"coverage must be in (0, 1), got {coverage}")
    t = np.atleast_1d(np.asarray(test_weights, dtype=np.float64))
    if np.any(w < 0) or np.any(t < 0) or not np.all(np.isfinite(np.concatenate([w, t]))):
        raise AlloopError("weights must be finite and >= 0")
    order = np.argsort(v, kind="stable")
    v, cumulative = v[order], np.cumsum(w[order])
    need = coverage * (w.sum() + t)  # [T]
    rank = np.searchsorted(cumulative, need * (1.0 - 1e-12), side="left")  # first index reaching the mass
    out = np.full(t.size, np.inf)
    inside = rank < v.size
    out[inside] = v[rank[inside]]
    return out


@dataclass(frozen=True)
class ForceErrorBound:
    """Per test frame, an upper bound on its force error (eV/A) at ``coverage``; with a temperature shift, the
    effective sample size of the weighted calibration frames (n without one)."""

    upper: np.ndarray  # [T] eV/A (inf: the calibration frames' mass cannot reach the coverage)
    coverage: float
    n: int
    effective_sample_size: float


def force_error_bound(errors: np.ndarray, coverage: float = 0.9, *, predicted: np.ndarray | None = None,
                      test_predicted: np.ndarray | None = None, energies_eV: np.ndarray | None = None,
                      test_energies_eV: np.ndarray | None = None, temperature_K: float | None = None,
                      target_temperature_K: float | None = None, n_test: int | None = None) -> ForceErrorBound:
    """Upper bounds on test frames' force errors from calibration frames' true ``errors`` [n] (eV/A).

    With ``predicted`` [n] and ``test_predicted`` [T] (a predicted error per frame, > 0) the bound is the
    prediction times the quantile of the ratios error / predicted; without, the quantile of the errors (``n_test``
    frames, one bound each). With ``target_temperature_K`` (and the calibration ensemble's ``temperature_K``, the
    frames' ``energies_eV`` [n] and ``test_energies_eV`` [T] on one surface) the quantile is the weighted one."""
    e = np.asarray(errors, dtype=np.float64)
    scale, test_scale = _scales(e, predicted, test_predicted, n_test)
    scores = e / scale
    if target_temperature_K is None:
        factor, _ = conformal_upper(scores, coverage)
        return ForceErrorBound(factor * test_scale, coverage, e.size, float(e.size))
    if temperature_K is None or energies_eV is None or test_energies_eV is None:
        raise AlloopError("a target temperature needs the calibration temperature and the energies of the "
                          "calibration and test frames")
    cal_log = log_boltzmann_ratio(energies_eV, temperature_K, target_temperature_K)
    test_log = log_boltzmann_ratio(test_energies_eV, temperature_K, target_temperature_K)
    if cal_log.shape != e.shape or test_log.shape != test_scale.shape:
        raise AlloopError(f"need one energy per frame: {cal_log.shape} calibration, {test_log.shape} test")
    top = max(cal_log.max(), test_log.max())
    w, t = np.exp(cal_log - top), np.exp(test_log - top)
    factors = weighted_conformal_upper(scores, w, t, coverage)
    return ForceErrorBound(factors * test_scale, coverage, e.size, effective_sample_size(w))


def _scales(errors: np.ndarray, predicted: np.ndarray | None, test_predicted: np.ndarray | None,
            n_test: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The calibration and test frames' normalisers: their predicted errors, or ones."""
    if errors.ndim != 1 or errors.size == 0 or not np.all(np.isfinite(errors)):
        raise AlloopError(f"errors must be a non-empty, finite [n] array, got shape {errors.shape}")
    if (predicted is None) != (test_predicted is None):
        raise AlloopError("give predicted errors for both the calibration and the test frames, or for neither")
    if predicted is None or test_predicted is None:
        if n_test is None:
            raise AlloopError("without predicted errors, say how many test frames (n_test)")
        return np.ones_like(errors), np.ones(n_test)
    p, q = np.asarray(predicted, dtype=np.float64), np.asarray(test_predicted, dtype=np.float64)
    if p.shape != errors.shape or q.ndim != 1 or not (np.all(p > 0) and np.all(q > 0)):
        raise AlloopError("predicted errors must be > 0, one per calibration frame and one per test frame")
    return p, q
