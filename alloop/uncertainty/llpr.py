"""Last-layer prediction rigidity (LLPR; Bigi, Chong, Ceriotti & Grasselli, MLST 2024): a model's own variance.

An energy model is linear in the parameters w of its last layer: E = sum_i w . f_i, with f_i the atom's last-layer
features (:meth:`~alloop.potentials.base.Potential.last_layer_features`), and so are its forces,
F_ja = -w . d(sum_i f_i)/dx_ja. Every prediction y is then y = w . x for a feature row x, and treating w as a
Bayesian linear regression on the training rows X gives the posterior covariance
``Sigma = sigma^2 (X^T X + lambda I)^-1`` and a prediction's variance ``x^T Sigma x``. Three forms (``target``):

* ``energy``: rows are frames' summed features f* = sum_i f_i (the paper's form); a frame's energy variance.
* ``forces``: rows are the force features -d f*/dx_ja, one per atom and Cartesian component
  (:func:`~alloop.potentials.inference.last_layer_force_feature_batches`: K backward passes per batch), X those of
  the training frames: each force component's variance, the exact last-layer variance of a model trained on forces.
* ``local``: rows are the atoms' own f_i, X the training frames' summed features: the local prediction rigidity
  (Chong et al., JCTC 2023), used as each force component's variance of that atom. For one molecule the summed
  features of all frames lie near one direction, every atom's f_i far from it, so this form barely tells frames apart
  (benchmarks/llpr_bench.py measures it); it is kept for comparison.

A frame's standard deviation is the root mean variance over its rows (its energy; its force components, eV/A).
sigma^2 and lambda maximise the Gaussian likelihood of held-out residuals (frames the model did not train on): each
residual r ~ N(0, sigma^2 u(lambda)) with u = x^T (X^T X + lambda I)^-1 x, so for each lambda sigma^2 = mean(r^2 / u)
in closed form, and lambda minimises the profiled negative log-likelihood ``sum log u + n log sigma^2`` over a grid
of log lambda spanning the spectrum of X^T X, refined by a bounded scalar search. A uniform factor on the features
(the output scale, e3nn's weight normalisation) only rescales lambda, which the fit absorbs.

Everything is float64; X^T X is accumulated per batch of frames (:func:`gram`) and eigendecomposed once, so a
variance costs a projection on K eigenvectors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from alloop.errors import AlloopError

TARGETS = ("energy", "forces", "local")
#: log10 span of the lambda grid, relative to the largest eigenvalue of X^T X (from 1e-12 x it to 1e3 x it)
GRID_LOG10 = (-12.0, 3.0)
GRID_POINTS = 61
#: unscaled variances are clipped at this fraction of their largest (a zero would make the likelihood infinite)
TINY = 1e-300


def frame_sums(features: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Per frame [M, K]: the sum of its atoms' features [N, K] (frame offsets ``ptr`` [M + 1])."""
    f, ptr = _rows(features), _offsets(ptr, len(features))
    return np.add.reduceat(f, ptr[:-1], axis=0)


def force_rows(force_features: np.ndarray) -> np.ndarray:
    """Force features [N, 3, K] as rows [3N, K], atom-major (x, y, z of atom 0, then of atom 1, ...)."""
    f = np.asarray(force_features, dtype=np.float64)
    if f.ndim != 3 or f.shape[1] != 3:
        raise AlloopError(f"force features must be [N, 3, K], got shape {f.shape}")
    return f.reshape(-1, f.shape[2])


def gram(batches: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
    """X^T X [K, K] of the training rows, given in batches [n, K], and the number of rows."""
    total: np.ndarray | None = None
    n = 0
    for rows in batches:
        x = _rows(rows)
        if total is not None and x.shape[1] != total.shape[0]:
            raise AlloopError(f"feature width changed between batches: {x.shape[1]} after {total.shape[0]}")
        total = x.T @ x if total is None else total + x.T @ x
        n += x.shape[0]
    if total is None:
        raise AlloopError("no training rows for the LLPR")
    return total, n


@dataclass(frozen=True)
class LLPR:
    """``Sigma = variance_scale (X^T X + regulariser I)^-1``, held as the eigenpairs of X^T X.

    Build with :meth:`from_gram` (a given scale and regulariser) or :func:`fit_llpr` (both fitted)."""

    eigenvalues: np.ndarray  # [K] of X^T X, >= 0
    eigenvectors: np.ndarray  # [K, K], columns
    regulariser: float  # lambda
    variance_scale: float  # sigma^2
    target: str  # what the rows predict: "energy", "forces" or "local" (see the module docstring)
    n_train: int  # training rows in X

    @classmethod
    def from_gram(cls, gram: np.ndarray, n_train: int, regulariser: float, variance_scale: float = 1.0,
                  target: str = "forces") -> LLPR:
        g = np.asarray(gram, dtype=np.float64)
        if g.ndim != 2 or g.shape[0] != g.shape[1] or not np.all(np.isfinite(g)):
            raise AlloopError(f"X^T X must be a finite square matrix, got shape {g.shape}")
        if target not in TARGETS:
            raise AlloopError(f"unknown LLPR target '{target}': use one of {', '.join(TARGETS)}")
        if not (regulariser > 0 and variance_scale > 0):
            raise AlloopError(f"the regulariser and the variance scale must be > 0, got {regulariser}, {variance_scale}")
        values, vectors = np.linalg.eigh(0.5 * (g + g.T))
        return cls(np.maximum(values, 0.0), vectors, float(regulariser), float(variance_scale), target, int(n_train))

    def unscaled(self, rows: np.ndarray, regulariser: float | None = None) -> np.ndarray:
        """x^T (X^T X + lambda I)^-1 x of each row x [n, K] (lambda: the regulariser, or the one given)."""
        lam = self.regulariser if regulariser is None else regulariser
        return _projections(self, rows) @ (1.0 / (self.eigenvalues + lam))

    def variances(self, rows: np.ndarray) -> np.ndarray:
        """Per row [n]: ``x^T Sigma x``, the variance of the prediction the row makes."""
        return self.variance_scale * self.unscaled(rows)

    def frame_std(self, rows: np.ndarray, ptr: np.ndarray) -> np.ndarray:
        """Per frame [M]: the root mean variance over its rows (``ptr`` [M + 1]: offsets in rows)."""
        ptr = _offsets(ptr, len(rows))
        return np.sqrt(np.add.reduceat(self.variances(rows), ptr[:-1]) / np.diff(ptr))

    def expected_abs_error(self, rows: np.ndarray, ptr: np.ndarray) -> np.ndarray:
        """Per frame [M]: the expected mean absolute error over its rows' predictions, ``sqrt(2/pi) mean sd``
        (with force rows: the expected force MAE, eV/A)."""
        ptr = _offsets(ptr, len(rows))
        return np.sqrt(2.0 / np.pi) * np.add.reduceat(np.sqrt(self.variances(rows)), ptr[:-1]) / np.diff(ptr)


def fit_llpr(gram: np.ndarray, n_train: int, rows: np.ndarray, residuals: np.ndarray, target: str = "forces") -> LLPR:
    """The LLPR of the training rows' X^T X ``gram`` whose sigma^2 and lambda maximise the likelihood of held-out
    ``residuals`` (prediction minus label): one per row [n] (energy: eV per frame; forces: eV/A per component), or
    [n, c] when c residuals share a row's variance (local: an atom's three force components)."""
    base = LLPR.from_gram(gram, n_train, 1.0, target=target)
    x, r = _rows(rows), np.asarray(residuals, dtype=np.float64)
    if r.shape[:1] != (x.shape[0],) or r.ndim > 2:
        raise AlloopError(f"residuals must be [n] or [n, c] with n = {x.shape[0]} rows, got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise AlloopError("residuals must be finite")
    squares = (r * r).reshape(x.shape[0], -1).sum(axis=1)
    weight = float(r.size // max(x.shape[0], 1))
    projections = _projections(base, x)

    def profile(log_lambda: float) -> tuple[float, float]:
        """(negative log-likelihood up to a constant, sigma^2) at lambda = 10^log_lambda."""
        u = projections @ (1.0 / (base.eigenvalues + 10.0**log_lambda))
        u = np.maximum(u, TINY * max(float(u.max(initial=0.0)), TINY))
        scale = float((squares / u).sum() / (weight * u.size))
        return 0.5 * weight * float(np.log(u).sum() + u.size * np.log(max(scale, TINY))), scale

    top = max(float(base.eigenvalues.max(initial=0.0)), TINY)
    grid = np.log10(top) + np.linspace(*GRID_LOG10, GRID_POINTS)
    best = int(np.argmin([profile(g)[0] for g in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    found = minimize_scalar(lambda g: profile(g)[0], bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    log_lambda = float(found.x) if found.fun <= profile(grid[best])[0] else float(grid[best])
    scale = profile(log_lambda)[1]
    if not scale > 0:
        raise AlloopError("the held-out residuals are all zero: no variance scale can be fitted")
    return LLPR(base.eigenvalues, base.eigenvectors, 10.0**log_lambda, scale, target, base.n_train)


def gaussian_nll(variances: np.ndarray, residuals: np.ndarray) -> float:
    """Mean negative log-likelihood per residual under N(0, variance) (``residuals`` [n] or [n, c]: c residuals
    share each of the n variances)."""
    v, r = np.asarray(variances, dtype=np.float64), np.asarray(residuals, dtype=np.float64)
    r2 = (r * r).reshape(v.size, -1)
    return float(0.5 * (np.log(2 * np.pi * v)[:, None] + r2 / v[:, None]).mean())


def _projections(llpr: LLPR, rows: np.ndarray) -> np.ndarray:
    """(x . v_j)^2 of each row and eigenvector [n, K]."""
    x = _rows(rows)
    if x.shape[1] != llpr.eigenvectors.shape[0]:
        raise AlloopError(f"features must be [n, {llpr.eigenvectors.shape[0]}], got {x.shape}")
    return (x @ llpr.eigenvectors) ** 2


def _rows(rows: np.ndarray) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2 or not np.all(np.isfinite(x)):
        raise AlloopError(f"features must be a finite [n, K] array, got shape {x.shape}")
    return x


def _offsets(ptr: np.ndarray, n_rows: int) -> np.ndarray:
    p = np.asarray(ptr, dtype=np.int64)
    if p.ndim != 1 or p.size < 2 or p[0] != 0 or p[-1] != n_rows or np.any(np.diff(p) < 1):
        raise AlloopError(f"ptr must be increasing frame offsets from 0 to {n_rows}")
    return p
