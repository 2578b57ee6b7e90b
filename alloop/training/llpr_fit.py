"""A trained model's last-layer prediction rigidity (:mod:`alloop.uncertainty.llpr`) from its frames.

X^T X comes from the frames the model learned from (accumulated batch by batch), sigma^2 and lambda from labelled
frames it did not train on (its validation frames, or any held-out frames of the same ensemble): their residuals,
prediction minus label, energies per frame (target ``energy``) or force components (``forces``, ``local``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.potentials.inference import (
    last_layer_feature_batches,
    last_layer_force_feature_batches,
    predict,
)
from alloop.training.data import FrameDataset
from alloop.uncertainty.llpr import LLPR, TARGETS, fit_llpr, force_rows, frame_sums, gram

#: frames per model call (force rows take one backward pass per feature per batch)
BATCH_SIZE = 16


def _row_batches(model: Potential, data: FrameDataset, target: str,
                 training: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per batch: the rows of ``target`` and their offsets per frame. Local rows are the atoms' own features, except
    in training (``training``), where every form's X holds what the model was fitted to: frame sums for energies."""
    if target == "forces":
        for forces, ptr in last_layer_force_feature_batches(model, data, BATCH_SIZE):
            yield force_rows(forces), 3 * ptr
        return
    for features, ptr in last_layer_feature_batches(model, data, BATCH_SIZE):
        if target == "energy" or training:
            yield frame_sums(features, ptr), np.arange(ptr.size)
        else:
            yield features, ptr


def llpr_rows(model: Potential, data: FrameDataset, target: str) -> tuple[np.ndarray, np.ndarray]:
    """Every row of ``target`` on ``data`` [n, K] and their offsets per frame [M + 1]."""
    if target not in TARGETS:
        raise AlloopError(f"unknown LLPR target '{target}': use one of {', '.join(TARGETS)}")
    rows, sizes = [], []
    for part, ptr in _row_batches(model, data, target, training=False):
        rows.append(part)
        sizes.append(np.diff(ptr))
    return np.concatenate(rows), np.concatenate([[0], np.cumsum(np.concatenate(sizes))])


def llpr_residuals(model: Potential, data: FrameDataset, target: str) -> np.ndarray:
    """Prediction minus label on labelled ``data``: energies [M] (eV), force components [3N] (forces) or [N, 3]
    (local), eV/A."""
    energy_label, forces_label = data.labels()
    energy, forces = predict(model, data)
    if target == "energy":
        return energy - energy_label
    residuals = forces - forces_label
    return residuals.reshape(-1) if target == "forces" else residuals


def fit_model_llpr(model: Potential, training: FrameDataset, held_out: FrameDataset, target: str = "forces") -> LLPR:
    """The LLPR of ``model`` trained on ``training``, its scale and regulariser fitted on ``held_out``'s residuals."""
    if target not in TARGETS:
        raise AlloopError(f"unknown LLPR target '{target}': use one of {', '.join(TARGETS)}")
    xtx, n = gram(rows for rows, _ in _row_batches(model, training, target, training=True))
    rows, _ = llpr_rows(model, held_out, target)
    return fit_llpr(xtx, n, rows, llpr_residuals(model, held_out, target), target)


def frame_llpr_std(llpr: LLPR, model: Potential, data: FrameDataset) -> np.ndarray:
    """Per frame [M]: the LLPR standard deviation of its energy (eV) or force components (eV/A)."""
    rows, ptr = llpr_rows(model, data, llpr.target)
    return llpr.frame_std(rows, ptr)
