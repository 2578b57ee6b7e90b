"""PCA of per-atom feature vectors: scores, Q-residual, Hotelling T^2, Jackson-Mudholkar limit.

For a feature row x (mean mu, kept loadings P_k [F, k], kept eigenvalues
lambda_1..k of the sample covariance):

    t   = P_k^T (x - mu)
    Q   = |x - mu - P_k t|^2          (squared prediction error, off the subspace)
    T^2 = sum_i t_i^2 / lambda_i      (Hotelling, inside the subspace)

Number of components: ``k_eff = min(k, rank, n_samples - 1)``, where rank
counts the eigenvalues above ``rank_tol * lambda_max``. Directions of zero
training variance (constant features, or more features than samples) are
therefore never kept: Q sees any novelty along them, and T^2 never divides
by zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from alloop.errors import AlloopError


@dataclass
class PCA:
    mean: np.ndarray  # [F]
    components: np.ndarray  # [F, k] orthonormal columns
    eigenvalues: np.ndarray  # [F] every eigenvalue of the covariance, descending, >= 0
    n_samples: int

    @property
    def n_components(self) -> int:
        return int(self.components.shape[1])

    @classmethod
    def fit(cls, x: np.ndarray, n_components: int, rank_tol: float = 1e-10) -> PCA:
        """Fit on rows of ``x`` [N, F] (N >= 2)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise AlloopError(f"PCA needs at least 2 feature rows [N, F], got shape {x.shape}")
        if n_components < 1:
            raise AlloopError(f"n_components must be >= 1, got {n_components}")
        if not np.isfinite(x).all():
            raise AlloopError("PCA training features contain NaN or inf")
        mean = x.mean(axis=0)
        xc = x - mean
        cov = xc.T @ xc / (x.shape[0] - 1)
        evals, evecs = np.linalg.eigh(cov)
        evals, evecs = np.clip(evals[::-1], 0.0, None), evecs[:, ::-1]
        top = evals[0] if evals.size else 0.0
        rank = int(np.sum(evals > rank_tol * top)) if top > 0 else 0
        k = min(n_components, rank, x.shape[0] - 1)
        return cls(mean=mean, components=evecs[:, :k].copy(), eigenvalues=evals, n_samples=int(x.shape[0]))

    def _centred(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean.size:
            raise AlloopError(f"features must have shape [N, {self.mean.size}], got {x.shape}")
        return x - self.mean

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Scores t [N, k]."""
        return self._centred(x) @ self.components

    def q_residual(self, x: np.ndarray) -> np.ndarray:
        """Q [N]: squared norm of the part of x - mu outside the kept subspace."""
        xc = self._centred(x)
        resid = xc - (xc @ self.components) @ self.components.T
        return np.einsum("nf,nf->n", resid, resid)

    def t2(self, x: np.ndarray) -> np.ndarray:
        """Hotelling T^2 [N] over the kept components (0 if none are kept)."""
        t = self.scores(x)
        return np.einsum("nk,nk->n", t, t / self.eigenvalues[: self.n_components])

    def jackson_mudholkar(self, alpha: float) -> float:
        """Q limit at significance ``alpha`` (Jackson & Mudholkar 1979), see METHODS.md section 2.

        theta_j = sum of lambda_i^j over all discarded eigenvalues. When
        h0 <= 0 (a very spread residual spectrum) the formula is undefined and
        Box's chi-square approximation g * chi2_h(1 - alpha), g = theta_2/theta_1,
        h = theta_1^2/theta_2, is used instead. With no residual variance at all
        the limit is 0 (any residual is novel).
        """
        if not 0.0 < alpha < 1.0:
            raise AlloopError(f"alpha must be in (0, 1), got {alpha}")
        rest = self.eigenvalues[self.n_components :]
        theta1, theta2, theta3 = (float(np.sum(rest**j)) for j in (1, 2, 3))
        if theta1 <= 0.0 or theta2 <= 0.0:
            return 0.0
        h0 = 1.0 - 2.0 * theta1 * theta3 / (3.0 * theta2**2)
        z = NormalDist().inv_cdf(1.0 - alpha)
        base = z * math.sqrt(2.0 * theta2 * h0**2) / theta1 + 1.0 + theta2 * h0 * (h0 - 1.0) / theta1**2
        if h0 <= 0.0 or base <= 0.0:
            from scipy.stats import chi2

            return float(theta2 / theta1 * chi2.ppf(1.0 - alpha, theta1**2 / theta2))
        return float(theta1 * base ** (1.0 / h0))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean,
            "components": self.components,
            "eigenvalues": self.eigenvalues,
            "n_samples": np.array(self.n_samples, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PCA:
        return cls(
            mean=np.asarray(arrays["mean"], dtype=np.float64),
            components=np.asarray(arrays["components"], dtype=np.float64),
            eigenvalues=np.asarray(arrays["eigenvalues"], dtype=np.float64),
            n_samples=int(arrays["n_samples"]),
        )
