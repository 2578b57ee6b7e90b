"""Batched inference of a Potential on many frames: the one loop every caller uses.

Frames are a sequence of ASE Atoms or anything packed like a
:class:`~alloop.training.data.FrameDataset` (``numbers`` [N], ``positions``
[N, 3] in Angstrom, frame ``offsets`` [M + 1]; periodic frames also ``cells``
[M, 3, 3] and ``pbc`` [M, 3], which the batches carry). Consecutive frames form a
batch in the model's dtype; the batch size can change the last bits of a
prediction (sums run over a batch's atoms), so each caller keeps its own. A batch
also stops before its estimated neighbour pairs pass :data:`MAX_BATCH_PAIRS`
(:func:`batch_bounds`): a model's memory grows with its pairs (SevenNet-0's forces
take about 1.2 GB per frame of 64 waters, 192 atoms in a periodic cell), so 32
such frames in one call would need tens of GB; molecules of up to 23 atoms keep
whole batches of 64. The
model runs in eval mode (its mode is restored) under ``torch.no_grad``: forces
still come from autograd with respect to the positions, but no graph is kept.
Results are float64 numpy arrays: energies in eV, forces in eV/Angstrom.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from ase import Atoms

from alloop.errors import AlloopError
from alloop.potentials.base import AtomsBatch, Potential, model_dtype


@runtime_checkable
class PackedFrames(Protocol):
    """Frames packed end to end (a FrameDataset is one)."""

    @property
    def numbers(self) -> np.ndarray: ...

    @property
    def positions(self) -> np.ndarray: ...

    @property
    def offsets(self) -> np.ndarray: ...


Frames = Sequence[Atoms] | PackedFrames


def pack(frames: Frames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(numbers [N] int64, positions [N, 3] float64, offsets [M + 1] int64) of ``frames``."""
    if isinstance(frames, PackedFrames):
        return (np.asarray(frames.numbers, dtype=np.int64), np.asarray(frames.positions, dtype=np.float64),
                frame_offsets(frames))
    if len(frames) == 0:
        raise AlloopError("no frames to predict")
    numbers = np.concatenate([a.numbers for a in frames]).astype(np.int64)
    positions = np.concatenate([a.positions for a in frames]).astype(np.float64)
    return numbers, positions, frame_offsets(frames)


def pack_cells(frames: Frames) -> tuple[np.ndarray, np.ndarray] | None:
    """(cells [M, 3, 3], pbc [M, 3]) of ``frames`` when any is periodic, else None."""
    if isinstance(frames, PackedFrames):
        pbc, cells = getattr(frames, "pbc", None), getattr(frames, "cells", None)
        return None if pbc is None or not np.asarray(pbc).any() else (np.asarray(cells), np.asarray(pbc))
    if not any(a.pbc.any() for a in frames):
        return None
    return np.stack([a.cell.array for a in frames]), np.stack([a.pbc for a in frames])


def frame_offsets(frames: Frames) -> np.ndarray:
    """Offsets [M + 1] of each frame's atoms when ``frames`` are concatenated."""
    if isinstance(frames, PackedFrames):
        return np.asarray(frames.offsets, dtype=np.int64)
    return np.concatenate([[0], np.cumsum([len(a) for a in frames])]).astype(np.int64)


#: a batch's estimated neighbour pairs at most (its first frame is always taken, however large)
MAX_BATCH_PAIRS = 32768
#: neighbours per atom assumed in a periodic cell (liquid water within 5 A has about 50)
DENSE_NEIGHBOURS = 60


def batch_bounds(offsets: np.ndarray, periodic: np.ndarray | None, batch_size: int,
                 max_pairs: int | None = None) -> list[tuple[int, int]]:
    """(start, stop) frame ranges of consecutive frames: at most ``batch_size`` frames and at most ``max_pairs``
    (default :data:`MAX_BATCH_PAIRS`) estimated neighbour pairs (a molecule of n atoms: n x min(n - 1,
    DENSE_NEIGHBOURS); a frame of a periodic cell, ``periodic`` true: n x DENSE_NEIGHBOURS), at least one frame
    each."""
    max_pairs = MAX_BATCH_PAIRS if max_pairs is None else max_pairs
    sizes = np.diff(offsets)
    dense = np.zeros(sizes.size, dtype=bool) if periodic is None else np.asarray(periodic, dtype=bool)
    pairs = sizes * np.where(dense, DENSE_NEIGHBOURS, np.minimum(sizes - 1, DENSE_NEIGHBOURS))
    bounds, start = [], 0
    while start < sizes.size:
        stop, total = start + 1, int(pairs[start])
        while stop < sizes.size and stop - start < batch_size and total + int(pairs[stop]) <= max_pairs:
            total += int(pairs[stop])
            stop += 1
        bounds.append((start, stop))
        start = stop
    return bounds


def _batches(model: Potential, frames: Frames, batch_size: int) -> Iterator[tuple[AtomsBatch, np.ndarray]]:
    """Batches of consecutive frames in the model's dtype, with their frame offsets (from 0), the model in eval mode
    (its mode restored afterwards) under ``torch.no_grad``."""
    numbers, positions, offsets = pack(frames)
    cells = pack_cells(frames)
    n_frames = offsets.size - 1
    if n_frames < 1:
        raise AlloopError("no frames to predict")
    if batch_size < 1:
        raise AlloopError(f"batch_size must be at least 1, got {batch_size}")
    dtype = model_dtype(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            periodic = None if cells is None else np.asarray(np.asarray(cells[1]).any(axis=1), dtype=bool)
            for start, stop in batch_bounds(offsets, periodic, batch_size):
                a, b = int(offsets[start]), int(offsets[stop])
                batch = AtomsBatch.from_arrays(numbers[a:b], positions[a:b], np.diff(offsets[start : stop + 1]),
                                               dtype=dtype, cell=None if cells is None else cells[0][start:stop],
                                               pbc=None if cells is None else cells[1][start:stop])
                yield batch, offsets[start : stop + 1] - a
    finally:
        model.train(was_training)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _run(model: Potential, frames: Frames, batch_size: int, forces: bool) -> list[tuple[np.ndarray, ...]]:
    """(energy, forces or features) per batch of consecutive frames, float64."""
    out: list[tuple[np.ndarray, ...]] = []
    for batch, _ in _batches(model, frames, batch_size):
        res = model(batch, compute_forces=forces)
        second = res.forces if forces else res.features
        assert second is not None  # the model computes forces when asked
        out.append((_numpy(res.energy), _numpy(second)))
    return out


def predict(model: Potential, frames: Frames, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Energies [M] (eV) and forces [N, 3] (eV/Angstrom) of ``model`` on ``frames``, in frame order."""
    parts = _run(model, frames, batch_size, forces=True)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def predict_energies(model: Potential, frames: Frames, batch_size: int = 32) -> np.ndarray:
    """Energies [M] (eV) of ``model`` on ``frames``, in frame order: :func:`predict`'s energies at the same
    ``batch_size``, bit for bit (the same forward pass), without the force pass (a third of :func:`predict`'s time
    for SevenNet-0 on 30 ethanol frames)."""
    return np.concatenate([p[0] for p in _run(model, frames, batch_size, forces=False)])


def predict_features(model: Potential, frames: Frames, batch_size: int = 64) -> np.ndarray:
    """Per-atom latent features [N, D] of ``model`` on ``frames`` (no forces computed)."""
    return np.concatenate([p[1] for p in _run(model, frames, batch_size, forces=False)])


def last_layer_feature_batches(model: Potential, frames: Frames,
                               batch_size: int = 64) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per batch of consecutive frames: the atoms' last-layer features [n, K] (float64,
    :meth:`~alloop.potentials.base.Potential.last_layer_features`) and the batch's frame offsets [m + 1] from 0."""
    for batch, offsets in _batches(model, frames, batch_size):
        yield _numpy(model.last_layer_features(batch)), offsets


def predict_last_layer_features(model: Potential, frames: Frames, batch_size: int = 64) -> np.ndarray:
    """Per-atom last-layer features [N, K] of ``model`` on ``frames`` (float64), in frame order."""
    return np.concatenate([f for f, _ in last_layer_feature_batches(model, frames, batch_size)])


def last_layer_force_feature_batches(model: Potential, frames: Frames,
                                     batch_size: int = 16) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per batch of consecutive frames: the force features [n, 3, K] (float64), -d(sum of the frame's last-layer
    features)/dx of each atom and component (a force component is w . this row), and the batch's frame offsets
    [m + 1] from 0. One backward pass per feature (K per batch); frames of a batch do not interact, so each
    gradient of the batch's total is its frames' own."""
    for batch, offsets in _batches(model, frames, batch_size):
        with torch.enable_grad():
            positions = batch.positions.detach().requires_grad_(True)
            features = model.last_layer_features(batch.with_positions(positions))
            columns = []
            for k in range(features.shape[1]):
                (grad,) = torch.autograd.grad(features[:, k].sum(), positions, retain_graph=k + 1 < features.shape[1],
                                              allow_unused=True)
                columns.append(torch.zeros_like(positions) if grad is None else -grad)
        yield _numpy(torch.stack(columns, dim=-1)), offsets
