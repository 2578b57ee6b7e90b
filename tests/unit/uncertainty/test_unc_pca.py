"""PCA Q-residual / T^2 against direct numpy, and the Jackson-Mudholkar limit by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.uncertainty import PCA


def _correlated(rng, n, f=10):
    mix = rng.normal(size=(f, f)) * np.linspace(2.0, 0.1, f)[:, None]
    return rng.normal(size=(n, f)) @ mix + rng.normal(size=f)


def test_q_and_t2_match_direct_svd():
    rng = np.random.default_rng(0)
    train, fresh = _correlated(rng, 300), _correlated(rng, 50)
    k = 4
    pca = PCA.fit(train, k)
    mu = train.mean(axis=0)
    _, s, vt = np.linalg.svd(train - mu, full_matrices=False)
    p = vt[:k].T
    lam = s[:k] ** 2 / (train.shape[0] - 1)
    xc = fresh - mu
    q_direct = np.sum((xc - xc @ p @ p.T) ** 2, axis=1)
    t2_direct = np.sum((xc @ p) ** 2 / lam, axis=1)
    assert np.allclose(pca.q_residual(fresh), q_direct, rtol=1e-10, atol=1e-12)
    assert np.allclose(pca.t2(fresh), t2_direct, rtol=1e-10)
    assert np.allclose(pca.eigenvalues[:k], lam)
    assert pca.eigenvalues.sum() == pytest.approx(np.trace(np.cov(train.T)))


def test_jackson_mudholkar_by_hand():
    # kept 4 and 2; discarded 1, 0.5, 0.25
    pca = PCA(np.zeros(5), np.eye(5)[:, :2], np.array([4.0, 2.0, 1.0, 0.5, 0.25]), 100)
    theta1 = 1.0 + 0.5 + 0.25
    theta2 = 1.0 + 0.25 + 0.0625
    theta3 = 1.0 + 0.125 + 0.015625
    h0 = 1.0 - 2.0 * theta1 * theta3 / (3.0 * theta2**2)
    z = 1.6448536269514722  # standard normal 0.95 quantile
    expected = theta1 * (z * math.sqrt(2 * theta2 * h0**2) / theta1 + 1 + theta2 * h0 * (h0 - 1) / theta1**2) ** (1 / h0)
    assert pca.jackson_mudholkar(0.05) == pytest.approx(expected, rel=1e-12)
    assert 2.0 < expected < 8.0
    assert pca.jackson_mudholkar(0.01) > pca.jackson_mudholkar(0.05)


def test_jackson_mudholkar_is_calibrated_for_gaussian_rows():
    rng = np.random.default_rng(1)
    scales = np.array([3.0, 2.0, 1.5, 1.0, 0.8, 0.6, 0.5, 0.4])
    train = rng.normal(size=(20000, 8)) * scales
    fresh = rng.normal(size=(20000, 8)) * scales
    pca = PCA.fit(train, 3)
    flagged = np.mean(pca.q_residual(fresh) > pca.jackson_mudholkar(0.05))
    assert abs(flagged - 0.05) < 0.01


def test_zero_variance_features_and_too_many_components():
    rng = np.random.default_rng(2)
    x = np.zeros((40, 6))
    x[:, :2] = rng.normal(size=(40, 2))  # rank 2, four constant features
    pca = PCA.fit(x, 5)
    assert pca.n_components == 2
    fresh = np.zeros((3, 6))
    fresh[:, 4] = [0.0, 1.0, 2.0]  # novelty along a direction never seen
    assert np.all(np.isfinite(pca.t2(fresh)))
    assert np.allclose(pca.q_residual(fresh), [0.0, 1.0, 4.0], atol=1e-12)
    assert pca.jackson_mudholkar(0.05) == 0.0  # no residual variance: any residual is novel
    few = PCA.fit(rng.normal(size=(3, 6)), 5)  # fewer rows than components
    assert few.n_components == 2


def test_bad_input():
    with pytest.raises(AlloopError):
        PCA.fit(np.ones((1, 3)), 2)
    pca = PCA.fit(np.random.default_rng(0).normal(size=(10, 3)), 2)
    with pytest.raises(AlloopError, match="shape"):
        pca.q_residual(np.ones((2, 4)))
    with pytest.raises(AlloopError, match="alpha"):
        pca.jackson_mudholkar(1.5)
