"""Importance weights of a selected set of frames for a target ensemble, by kernel mean matching (Huang et al.,
NeurIPS 2006; Gretton et al. 2009): the weights w (mean 1, 0 <= w <= ``bound``) under which the selected frames'
kernel mean embedding is closest to the target's, i.e. the weighted squared MMD

    MMD^2(w) = w^T K_ss w / n^2 - 2 w^T K_st 1 / (n m) + 1^T K_tt 1 / m^2

is smallest, with ``ridge`` x I added to K_ss (regularised KMM: shrinks the weights towards 1). ``w_i`` then
estimates the density ratio target / selection at frame i without estimating either density (which 30 frames in a
few hundred dimensions could not). Frames are compared as in kernel herding
(:mod:`alloop.uncertainty.herding`): descriptors standardised by the target's mean and scale, RBF kernel with the
target's median-heuristic bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alloop.uncertainty.herding import median_bandwidth, squared_distances, standardise

#: the largest weight one frame may get (in units of the mean weight): bounds the variance of a weighted loss
DEFAULT_BOUND = 10.0
#: added to the diagonal of the selected frames' kernel matrix (whose diagonal is 1): chosen on the synthetic
#: pools of the tests (tests/unit/test_benchmark_importance.py), where 0.3 keeps a selection drawn like the target at
#: an effective sample size of 0.8-0.9 n (0: 0.3-0.4 n) and still moves an over-sampled class most of the way back
DEFAULT_RIDGE = 0.3


@dataclass(frozen=True)
class MatchedWeights:
    weights: np.ndarray  # [n], mean 1
    mmd2_before: float  # squared MMD of the selected frames (equal weights) to the target
    mmd2_after: float  # with the weights
    effective_sample_size: float  # (sum w)^2 / sum w^2
    bandwidth: float


def rbf(x: np.ndarray, y: np.ndarray, h: float) -> np.ndarray:
    return np.exp(-squared_distances(x, y) / (2.0 * h * h))


def weighted_mmd2(k_ss: np.ndarray, k_st: np.ndarray, k_tt_mean: float, w: np.ndarray) -> float:
    """The squared MMD between the selected frames weighted by ``w`` (mean 1) and the target."""
    n = w.size
    return float(w @ k_ss @ w / n**2 - 2.0 * w @ k_st.mean(axis=1) / n + k_tt_mean)


def kernel_mean_matching(selected: np.ndarray, target: np.ndarray, bound: float = DEFAULT_BOUND,
                         ridge: float = DEFAULT_RIDGE) -> MatchedWeights:
    """KMM weights of ``selected`` [n, D] for ``target`` [m, D] (descriptors), mean 1 and in [0, ``bound``]; the
    objective's kernel matrix gets ``ridge`` x I, which keeps the weights from fitting the selection's sampling noise."""
    from scipy.optimize import minimize

    if bound < 1.0:
        raise ValueError(f"bound must be >= 1 (the mean weight), got {bound}")
    z_target, z_selected = standardise(target, selected)
    assert z_target is not None and z_selected is not None
    h = median_bandwidth(z_target)
    k_ss, k_st = rbf(z_selected, z_selected, h), rbf(z_selected, z_target, h)
    k_tt_mean = float(rbf(z_target, z_target, h).mean())
    n = len(selected)
    kappa = k_st.mean(axis=1)

    k_reg = k_ss + ridge * np.eye(n)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        return float(w @ k_reg @ w / n**2 - 2.0 * w @ kappa / n), 2.0 * (k_reg @ w / n**2 - kappa / n)

    result = minimize(objective, np.ones(n), jac=True, method="SLSQP", bounds=[(0.0, bound)] * n,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - n, "jac": lambda w: np.ones(n)}],
                      options={"maxiter": 500, "ftol": 1e-12})
    w = np.clip(result.x, 0.0, bound)
    w *= n / w.sum()
    ones = np.ones(n)
    return MatchedWeights(weights=w, mmd2_before=weighted_mmd2(k_ss, k_st, k_tt_mean, ones),
                          mmd2_after=weighted_mmd2(k_ss, k_st, k_tt_mean, w),
                          effective_sample_size=float(w.sum() ** 2 / (w**2).sum()), bandwidth=h)


def weighted_shares(labels: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> list[float]:
    """The share of each class 0..n_classes-1 among ``labels``, weighted."""
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=float)
    return [float(w[labels == k].sum() / w.sum()) for k in range(n_classes)]
