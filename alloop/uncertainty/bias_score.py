"""Force-disagreement scores that choose frames for expensive labels: ASTEROID's bias B per frame, its
label-free proxy, and a committee's force deviation (not the MD bias force: :mod:`alloop.md.uncertainty_bias`).

``B = mean over atoms and xyz of |F(x; theta_0) - f_cheap|`` (eV/Angstrom):
the L1 norm of the force difference divided by 3n (METHODS.md 1-2), with
theta_0 the model trained on expensive labels only. Large B: the cheap label
is far from what the expensive data implies, so the frame deserves an
expensive label. Without a cheap label, the same quantity between the
cheap-trained and the fine-tuned model is the proxy.

:func:`model_bias` is the one B of the campaign: the B that routes frames to
expensive labels (``campaign.loop.driver``) and the B that weights training
(:func:`alloop.training.bias_weights.dataset_bias`) both come from it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.potentials.inference import Frames, frame_offsets, predict

#: B's batch size: predictions (and so B) can change in the last bits with the batch size
BIAS_BATCH_SIZE = 64


def bias_per_frame(pred_forces: np.ndarray, ref_forces: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Mean |pred - ref| per frame [M] of forces [N, 3] concatenated with frame offsets ``ptr`` [M + 1].

    A frame whose reference forces are missing (NaN, e.g. a failed label) gets NaN.
    """
    pred, ref = np.asarray(pred_forces, dtype=np.float64), np.asarray(ref_forces, dtype=np.float64)
    ptr = np.asarray(ptr, dtype=np.int64)
    if pred.shape != ref.shape or pred.ndim != 2 or pred.shape[1] != 3:
        raise AlloopError(f"force arrays must both be [N, 3], got {pred.shape} and {ref.shape}")
    if ptr.ndim != 1 or ptr.size < 2 or ptr[0] != 0 or ptr[-1] != pred.shape[0] or np.any(np.diff(ptr) < 1):
        raise AlloopError(f"ptr must be increasing frame offsets from 0 to {pred.shape[0]}")
    sizes = np.diff(ptr)
    per_atom = np.abs(pred - ref).sum(-1)
    frame_of_atom = np.repeat(np.arange(sizes.size), sizes)
    return np.bincount(frame_of_atom, weights=per_atom, minlength=sizes.size) / (3.0 * sizes)


def predict_forces(model: Potential, frames: Sequence[Atoms], batch_size: int = BIAS_BATCH_SIZE) -> np.ndarray:
    """Forces [N, 3] (eV/Angstrom, float64) of ``model`` on the concatenated ``frames`` (kept for benchmarks)."""
    return predict(model, frames, batch_size)[1]


def model_bias(
    model: Potential, frames: Frames, ref_forces: np.ndarray, batch_size: int = BIAS_BATCH_SIZE
) -> np.ndarray:
    """B per frame of ``model`` (theta_0) on ``frames`` (Atoms or a FrameDataset) against reference forces [N, 3]
    (the cheap labels): the one B, for routing frames and for weighting training."""
    return bias_per_frame(predict(model, frames, batch_size)[1], ref_forces, frame_offsets(frames))


def model_disagreement(
    model_a: Potential, model_b: Potential, frames: Sequence[Atoms], batch_size: int = BIAS_BATCH_SIZE
) -> np.ndarray:
    """Label-free proxy per frame: mean |F_a - F_b| (e.g. cheap-trained vs fine-tuned model)."""
    return bias_per_frame(
        predict(model_a, frames, batch_size)[1], predict(model_b, frames, batch_size)[1], frame_offsets(frames)
    )


def committee_deviation(models: Sequence[Potential], frames: Frames, batch_size: int = BIAS_BATCH_SIZE) -> np.ndarray:
    """Query by committee: per frame, the largest over atoms of the committee's force standard deviation,
    ``max_i sqrt(mean_m |F_m,i - mean_m F_m,i|^2)`` (eV/A; DP-GEN's ``max_devi_f``). Needs two models or more."""
    if len(models) < 2:
        raise AlloopError(f"a committee needs at least 2 models, got {len(models)}")
    forces = np.stack([predict(m, frames, batch_size)[1] for m in models])  # [members, N, 3]
    spread = np.sqrt(((forces - forces.mean(axis=0)) ** 2).sum(-1).mean(axis=0))  # [N]
    ptr = frame_offsets(frames)
    return np.maximum.reduceat(spread, ptr[:-1]) if spread.size else np.zeros(ptr.size - 1)
