"""The predicted force error: coverage and mean on synthetic data with a known error distribution."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.uncertainty.predicted_error import ErrorCalibration, conformal_upper


def _draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Signals and errors with error = 0.02 * signal^1.5 * lognormal noise (sigma 0.4)."""
    signal = rng.lognormal(0.0, 0.6, n)
    return signal, 0.02 * signal ** 1.5 * rng.lognormal(0.0, 0.4, n)


def test_the_bound_covers_new_exchangeable_frames_at_the_stated_rate():
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(200):  # many calibrations of 50 frames, each checked on 200 new frames
        cal = ErrorCalibration.fit(*_draw(rng, 50), coverage=0.9)
        signal, error = _draw(rng, 200)
        hits.append(np.mean(error <= cal.upper(signal)))
    # leave-one-out conformal: the stated coverage on average, within the Monte Carlo and finite-n slack
    assert 0.89 <= np.mean(hits) <= 0.9 + 2 / 51


def test_the_power_law_and_the_mean_are_recovered():
    rng = np.random.default_rng(1)
    cal = ErrorCalibration.fit(*_draw(rng, 2000))
    assert cal.exponent == pytest.approx(1.5, abs=0.05)
    signal, error = _draw(rng, 5000)
    assert cal.predict(signal).mean() == pytest.approx(error.mean(), rel=0.05)  # the predicted MAE of a set


def test_too_few_frames_fall_back_to_the_largest_ratio_and_say_so():
    value, exact = conformal_upper(np.array([1.0, 3.0, 2.0]), 0.9)  # rank ceil(4 * 0.9) = 4 > 3
    assert value == 3.0 and not exact
    assert conformal_upper(np.arange(1.0, 21.0), 0.9) == (19.0, True)  # rank ceil(21 * 0.9) = 19
    cal = ErrorCalibration.fit(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3]))
    assert not cal.exact and cal.n == 3


def test_a_flag_limit_from_an_error_target_inverts_the_bound():
    rng = np.random.default_rng(2)
    cal = ErrorCalibration.fit(*_draw(rng, 300))
    limit = cal.signal_at(0.05)
    assert cal.upper(np.array([limit]))[0] == pytest.approx(0.05)
    assert ErrorCalibration.from_dict(cal.to_dict()) == cal


def test_a_signal_that_does_not_rank_the_error_predicts_a_constant():
    cal = ErrorCalibration.fit(np.array([3.0, 2.0, 1.0, 4.0]), np.array([0.1, 0.2, 0.3, 0.05]))
    assert cal.exponent == 0.0
    assert np.allclose(cal.predict(np.array([0.1, 10.0])), np.mean([0.1, 0.2, 0.3, 0.05]))


def test_bad_input_is_refused():
    with pytest.raises(AlloopError):
        ErrorCalibration.fit(np.array([1.0]), np.array([0.1]))
    with pytest.raises(AlloopError):
        ErrorCalibration.fit(np.array([1.0, 2.0]), np.array([0.1, -0.2]))
    with pytest.raises(AlloopError):
        ErrorCalibration.fit(np.array([1.0, 2.0]), np.array([0.1, 0.2]), coverage=1.0)


def test_a_fixed_exponent_fits_the_scale_alone_and_keeps_the_mean():
    rng = np.random.default_rng(2)
    signal, error = _draw(rng, 6)
    cal = ErrorCalibration.fit(signal, error, exponent=1.0)
    assert cal.exponent == 1.0
    assert cal.scale == pytest.approx(error.mean() / signal.mean())
    assert cal.predict(signal).mean() == pytest.approx(error.mean())
    # the leave-one-out ratios keep the exponent too: frame i against the scale of the other five
    others = ~np.eye(6, dtype=bool)
    loo = np.array([error[k].mean() / signal[k].mean() for k in others])
    np.testing.assert_allclose(cal.ratios, error / (loo * signal))
    with pytest.raises(AlloopError, match="a fixed exponent must be finite and >= 0"):
        ErrorCalibration.fit(signal, error, exponent=-1.0)


def test_with_six_frames_a_fixed_exponent_predicts_a_new_sets_mean_more_steadily():
    """Six calibration frames (a 30-label campaign's held-out share) pin a scale down but not a slope: over many
    draws, the predicted mean error of a wider, hotter set (signals 1.6 x larger) scatters less around the truth with
    the exponent fixed near the true one than fitted, even fixed at 1 against a true 1.5."""
    rng = np.random.default_rng(3)
    spread = {None: [], 1.5: [], 1.0: []}
    for _ in range(300):
        signal, error = _draw(rng, 6)
        hot_signal, hot_error = _draw(rng, 400)
        hot_signal, hot_error = 1.6 * hot_signal, 1.6**1.5 * hot_error  # the same law at 1.6 x the signal
        for exponent in spread:
            cal = ErrorCalibration.fit(signal, error, exponent=exponent)
            spread[exponent].append(np.log(cal.predict(hot_signal).mean() / hot_error.mean()))
    fitted, true, one = (np.std(spread[k]) for k in (None, 1.5, 1.0))
    assert true < 0.7 * fitted and one < fitted, (fitted, true, one)
