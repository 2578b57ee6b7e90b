"""Bias uncertainty (ASTEROID's B) per frame, and its label-free proxy.

``B = mean over atoms and xyz of |F(x; theta_0) - f_cheap|`` (eV/Angstrom):
the L1 norm of the force difference divided by 3n (METHODS.md 1-2), with
theta_0 the model trained on expensive labels only. Large B: the cheap label
is far from what the expensive data implies, so the frame deserves an
expensive label. Without a cheap label, the same quantity between the
cheap-trained and the fine-tuned model is the proxy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from ase import Atoms

from alloop.errors import AlloopError
from alloop.potentials.base import AtomsBatch, Potential, model_dtype


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
    per_atom = np.abs(pred - ref).sum(axis=1)
    return np.add.reduceat(per_atom, ptr[:-1]) / (3.0 * np.diff(ptr))



def predict_forces(model: Potential, frames: Sequence[Atoms], batch_size: int = 64) -> np.ndarray:
    """Forces [N, 3] (eV/Angstrom, float64) of ``model`` on the concatenated ``frames``."""
    if not frames:
        raise AlloopError("no frames to predict")
    out = []
    for start in range(0, len(frames), batch_size):
        batch = AtomsBatch.from_atoms(frames[start : start + batch_size], dtype=model_dtype(model))
        out.append(model(batch, compute_forces=True).forces.detach().to(torch.float64).numpy())
    return np.concatenate(out)


def frame_offsets(frames: Sequence[Atoms]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([len(a) for a in frames])]).astype(np.int64)


def model_bias(model: Potential, frames: Sequence[Atoms], ref_forces: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """B per frame of ``model`` (theta_0) against reference forces [N, 3] (the cheap labels)."""
    return bias_per_frame(predict_forces(model, frames, batch_size), ref_forces, frame_offsets(frames))


def model_disagreement(
    model_a: Potential, model_b: Potential, frames: Sequence[Atoms], batch_size: int = 64
) -> np.ndarray:
    """Label-free proxy per frame: mean |F_a - F_b| (e.g. cheap-trained vs fine-tuned model)."""
    return bias_per_frame(
        predict_forces(model_a, frames, batch_size), predict_forces(model_b, frames, batch_size), frame_offsets(frames)
    )
