"""Held-out calibration of the empirical Q-residual / T^2 limits: out-of-fold scores, split by frame.

A PCA's own fitting rows have a smaller residual than new rows, far smaller
when the rows are few against the features (a per-element group of ~20 atoms
against 64 latent features leaves almost no residual in the fitted rows).
Quantiles of the fitting rows' Q therefore flag most new in-distribution
atoms. Cross-validation fixes this: frames are dealt into K folds (a seeded
random permutation); the PCA of a group is fitted on the rows of K-1 folds
and Q / T^2 are computed for the rows of the held-out fold; the limits are
quantiles over all out-of-fold values. The model itself is then fitted on
every row. Splitting by frame, not by atom, matters: the atoms of one frame
are correlated, so an atom whose frame-mates were fitted is not new.

The limit is the split-conformal quantile of the n held-out values: the
ceil((n + 1)(1 - alpha))-th smallest (when n < 1/alpha - 1, the largest, or
with ``small_sample_tail`` a log-normal tail fitted to them, since their largest flags
~1/(n + 1) of new values), so
that a new exchangeable value exceeds it with probability at most alpha; the
plain interpolated quantile flags ~(n alpha + 1)/(n + 1), noticeably more than
alpha for the few rows this calibration is for. The fold PCAs see (K-1)/K of
the rows, so their out-of-fold residuals are a little larger than the final
PCA's on new rows: both corrections err on the side of fewer flags.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from alloop.errors import AlloopError
from alloop.uncertainty.pca import PCA

#: "cross_validation": limits from out-of-fold rows (default); "in_sample": from the PCA's own fitting rows
CALIBRATIONS = ("cross_validation", "in_sample")
#: seed of the frame-to-fold permutation (fixed: the fit is a deterministic function of its inputs)
FOLD_SEED = 0


def frame_folds(n_frames: int, n_folds: int, seed: int = FOLD_SEED) -> np.ndarray:
    """Fold index [n_frames] of every frame: a seeded permutation dealt into ``min(n_folds, n_frames)`` folds.

    Fold sizes differ by at most one frame; with fewer frames than folds every frame is its own
    fold (leave one frame out).
    """
    if n_folds < 2:
        raise AlloopError(f"cross-validation needs at least 2 folds, got {n_folds}")
    if n_frames < 2:
        raise AlloopError(f"cross-validation needs at least 2 frames, got {n_frames}")
    k = min(n_folds, n_frames)
    folds = np.empty(n_frames, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(n_frames)] = np.arange(n_frames) % k
    return folds


def atom_folds(ptr: np.ndarray, n_folds: int, seed: int = FOLD_SEED) -> np.ndarray:
    """Fold index [N] of every atom: the fold of its frame (frame offsets ``ptr`` [M + 1])."""
    offsets = np.asarray(ptr, dtype=np.int64)
    sizes = offsets[1:] - offsets[:-1]
    return np.repeat(frame_folds(sizes.size, n_folds, seed), sizes)


def conformal_quantile(values: np.ndarray, alpha: float, small_sample_tail: bool = False) -> float:
    """The ceil((n + 1)(1 - alpha))-th smallest of ``values``: a new exchangeable value exceeds it with
    probability <= alpha. With too few values for that rank (n < 1/alpha - 1) the largest value, or with
    ``small_sample_tail`` (``uncertainty.small_sample_tail``)
    the (1 - alpha) quantile of a log-normal fitted to them (:func:`lognormal_quantile`): the largest of a few
    values flags about 1/(n + 1) of new ones, several times alpha."""
    values = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if values.size == 0:
        raise AlloopError("no values to take a quantile of")
    rank = int(np.ceil((values.size + 1) * (1.0 - alpha)))
    if small_sample_tail and rank > values.size and values.size >= MIN_TAIL_VALUES and values[0] > 0:
        return lognormal_quantile(values, alpha)
    return float(values[min(rank, values.size) - 1])


#: the fewest (positive) values a log-normal tail is fitted to; fewer: the largest value is the limit
MIN_TAIL_VALUES = 8


def lognormal_quantile(values: np.ndarray, alpha: float) -> float:
    """The (1 - alpha) quantile of the log-normal with the mean and standard deviation of log(values) (all > 0)."""
    logs = np.log(np.asarray(values, dtype=np.float64))
    return float(np.exp(logs.mean() + NormalDist().inv_cdf(1.0 - alpha) * logs.std(ddof=1)))


def out_of_fold_scores(rows: np.ndarray, folds: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Q and T^2 [N] of every row under a PCA fitted on the rows of all other folds.

    NaN for the rows of a fold whose complement has fewer than 2 rows (no PCA can be fitted).
    """
    rows, folds = np.asarray(rows, dtype=np.float64), np.asarray(folds)
    if folds.shape != (rows.shape[0],):
        raise AlloopError(f"folds {folds.shape} do not match {rows.shape[0]} rows")
    q, t2 = np.full(rows.shape[0], np.nan), np.full(rows.shape[0], np.nan)
    for fold in np.unique(folds):
        held = folds == fold
        if rows.shape[0] - int(held.sum()) < 2:
            continue
        pca = PCA.fit(rows[~held], n_components)
        q[held], t2[held] = pca.q_residual(rows[held]), pca.t2(rows[held])
    return q, t2
