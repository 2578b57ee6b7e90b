"""LLPR: the exact Bayesian linear-regression variance, the likelihood fit of its scale and regulariser, and a real
model's LLPR away from its training frames."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from alloop.errors import AlloopError
from alloop.potentials.egnn import EGNN
from alloop.potentials.inference import (
    last_layer_feature_batches,
    last_layer_force_feature_batches,
    predict_last_layer_features,
)
from alloop.uncertainty.llpr import LLPR, fit_llpr, force_rows, frame_sums, gaussian_nll, gram

K = 5


def _frames(rng: np.random.Generator, n: int, atoms: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """n frames of ``atoms`` atoms with anisotropic random features [n * atoms, K] and their offsets."""
    scales = np.array([3.0, 1.0, 0.3, 0.1, 0.03])
    return rng.normal(size=(n * atoms, K)) * scales, np.arange(0, n * atoms + 1, atoms)


def test_llpr_is_the_bayesian_posterior_predictive_variance_of_a_linear_model():
    rng = np.random.default_rng(0)
    sigma, alpha = 0.2, 4.0  # noise sd, prior precision of the weights
    train, ptr = _frames(rng, 40)
    x = frame_sums(train, ptr)  # E = sum_i w . f_i = w . sum_i f_i
    xtx, n = gram([x[:25], x[25:]])  # two batches
    assert n == 40 and xtx == pytest.approx(x.T @ x, rel=1e-12)
    llpr = LLPR.from_gram(xtx, n, regulariser=alpha * sigma**2, variance_scale=sigma**2, target="energy")
    posterior = np.linalg.inv(alpha * np.eye(K) + x.T @ x / sigma**2)  # Bishop (3.54)
    test, test_ptr = _frames(rng, 6)
    sums = frame_sums(test, test_ptr)
    exact = np.einsum("ij,jk,ik->i", sums, posterior, sums)
    assert llpr.variances(sums) == pytest.approx(exact, rel=1e-9)
    assert llpr.frame_std(sums, np.arange(len(sums) + 1)) == pytest.approx(np.sqrt(exact), rel=1e-9)
    # and it is the spread of the posterior-mean model's error over draws of the weights and the noise
    draws = 20000
    w = rng.normal(size=(draws, K)) / np.sqrt(alpha)
    y = w @ x.T + sigma * rng.normal(size=(draws, n))
    w_hat = np.linalg.solve(x.T @ x + alpha * sigma**2 * np.eye(K), x.T @ y.T).T
    empirical = ((w_hat - w) @ sums.T).var(axis=0)
    assert empirical == pytest.approx(exact, rel=0.05)


@pytest.mark.parametrize("target", ["energy", "forces", "local"])
def test_the_likelihood_fit_recovers_the_noise_scale_and_the_regulariser(target):
    rng = np.random.default_rng(1)
    sigma2, lam = 0.04, 2.0  # 2.0 lies inside the spectrum of X^T X (eigenvalues ~0.08 to ~800)
    train, ptr = _frames(rng, 30)
    xtx, n = gram([frame_sums(train, ptr)])
    truth = LLPR.from_gram(xtx, n, regulariser=lam, variance_scale=sigma2, target=target)
    rows = rng.normal(size=(3000, K)) * np.array([3.0, 1.0, 0.3, 0.1, 0.03])  # held-out rows
    sd = np.sqrt(truth.variances(rows))
    # local: an atom's three force components share its variance; else one residual per row
    residuals = sd[:, None] * rng.normal(size=(len(rows), 3)) if target == "local" else sd * rng.normal(size=len(rows))
    fitted = fit_llpr(xtx, n, rows, residuals, target=target)
    assert fitted.target == target
    assert fitted.variance_scale == pytest.approx(sigma2, rel=0.1)
    assert 0.6 * lam < fitted.regulariser < 1.6 * lam
    # the maximum-likelihood fit explains the residuals at least as well as the true parameters
    assert gaussian_nll(fitted.variances(rows), residuals) <= gaussian_nll(truth.variances(rows), residuals) + 1e-12


def test_frame_std_and_expected_abs_error_follow_the_row_variances():
    rng = np.random.default_rng(2)
    train, ptr = _frames(rng, 20)
    llpr = LLPR.from_gram(*gram([force_rows(train.reshape(-1, 3, K))]), regulariser=0.5, variance_scale=0.01)
    rows = force_rows(rng.normal(size=(4, 3, K)))  # 2 frames of 2 atoms: 6 rows each
    var = llpr.variances(rows).reshape(2, 6)
    frame_ptr = np.array([0, 6, 12])
    assert llpr.frame_std(rows, frame_ptr) == pytest.approx(np.sqrt(var.mean(axis=1)))
    assert llpr.expected_abs_error(rows, frame_ptr) == pytest.approx(np.sqrt(2 / np.pi) * np.sqrt(var).mean(axis=1))


def test_bad_input_is_refused_in_one_line():
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(30, K))
    xtx, n = gram([rows])
    with pytest.raises(AlloopError, match="target"):
        LLPR.from_gram(xtx, n, 1.0, target="stress")
    with pytest.raises(AlloopError, match="must be > 0"):
        LLPR.from_gram(xtx, n, 0.0)
    with pytest.raises(AlloopError, match="residuals must be"):
        fit_llpr(xtx, n, rows, np.zeros(29))
    with pytest.raises(AlloopError, match="all zero"):
        fit_llpr(xtx, n, rows, np.zeros((30, 3)))
    with pytest.raises(AlloopError, match="offsets"):
        frame_sums(rows, np.array([0, 5]))
    with pytest.raises(AlloopError, match=r"\[N, 3, K\]"):
        force_rows(rows)
    with pytest.raises(AlloopError, match="no training rows"):
        gram([])


def _ethanols(n: int, seed: int, amplitude: float = 0.05) -> list:
    frames = []
    for k in range(n):
        atoms = molecule("CH3CH2OH")
        atoms.rattle(amplitude, seed=seed + k)
        frames.append(atoms)
    return frames


def test_a_models_llpr_grows_away_from_its_training_frames():
    model = EGNN([1, 6, 8], hidden_features=16, n_layers=2, seed=3).double()
    train = _ethanols(40, seed=0)
    stretched = molecule("CH3CH2OH")
    stretched.positions *= 1.5  # bonds 50 % longer: far outside the rattled training frames
    frames = [*train, *_ethanols(5, seed=1000), stretched]
    ptr = np.arange(0, 9 * len(frames) + 1, 9)
    sums = frame_sums(predict_last_layer_features(model, frames), ptr)
    forces = force_rows(np.concatenate([f for f, _ in last_layer_force_feature_batches(model, frames)]))
    xtx, n = gram(frame_sums(f, p) for f, p in last_layer_feature_batches(model, train, batch_size=16))
    assert xtx == pytest.approx(sums[:40].T @ sums[:40], rel=1e-9)
    force_xtx, _ = gram(force_rows(f) for f, _ in last_layer_force_feature_batches(model, train, batch_size=16))
    # the energy rows span few directions (one molecule), the 27 force rows per frame many: a smaller factor
    for xtx_, rows, row_ptr, factor in ((xtx, sums, np.arange(len(frames) + 1), 5.0),
                                        (force_xtx, forces, 3 * ptr, 2.0)):
        llpr = LLPR.from_gram(xtx_, n, regulariser=1e-8 * np.linalg.eigvalsh(xtx_).max())
        std = llpr.frame_std(rows, row_ptr)
        assert std[-1] > factor * std[: len(train)].max()  # the stretched frame
        assert std[len(train) : -1].max() < 2 * std[: len(train)].max()  # new frames like the training ones
