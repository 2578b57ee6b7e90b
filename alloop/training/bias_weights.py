"""ASTEROID's bias weighting: the bias of every cheap frame and the weights of stage 2.

``B_j = mean over atoms and xyz of |F(x_j; theta_0) - f_j|`` (eV/A): the L1
force discrepancy of a cheap label f_j to the model theta_0 trained on
expensive labels only, divided by 3 k_j. Weights ``w_j = exp(-B_j / gamma)``
with gamma chosen from ``gamma_grid x typical B`` (typical B: the median; the grid is the
``training.gamma_grid`` of :class:`~alloop.config.training.TrainingConfig`, passed by the stages' settings).
B itself is :func:`alloop.uncertainty.bias.model_bias`, the same B that routes
frames to expensive labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.training.data import FrameDataset
from alloop.uncertainty.bias_score import BIAS_BATCH_SIZE, model_bias


def dataset_bias(model: Potential, dataset: FrameDataset, batch_size: int = BIAS_BATCH_SIZE) -> np.ndarray:
    """B_j (eV/A) for every frame of a labelled dataset, in dataset order: :func:`model_bias` against its forces."""
    if dataset.forces is None:
        raise AlloopError("the bias needs labelled (cheap) frames")
    return model_bias(model, dataset, dataset.forces, batch_size)


def bias_weights(bias: np.ndarray, gamma: float) -> np.ndarray:
    """w_j = exp(-B_j / gamma), floored at the smallest positive float64 (no weight underflows to exactly 0)."""
    if not gamma > 0:
        raise AlloopError(f"gamma must be positive, got {gamma}")
    b = np.asarray(bias, dtype=np.float64)
    if np.any(b < 0) or not np.all(np.isfinite(b)):
        raise AlloopError("bias values must be finite and non-negative")
    return np.maximum(np.exp(-b / gamma), np.finfo(np.float64).tiny)


def typical_bias(bias: np.ndarray) -> float:
    """The median bias; the mean if the median is zero; 1.0 if all are zero."""
    b = np.asarray(bias, dtype=np.float64)
    for value in (float(np.median(b)), float(np.mean(b))):
        if value > 0:
            return value
    return 1.0


def gamma_candidates(bias: np.ndarray, grid: Sequence[float]) -> list[float]:
    """Absolute gammas (eV/A): ``grid x typical_bias(bias)``."""
    if len(grid) == 0 or any(g <= 0 for g in grid):
        raise AlloopError("the gamma grid needs positive factors")
    scale = typical_bias(bias)
    return [float(g) * scale for g in grid]
