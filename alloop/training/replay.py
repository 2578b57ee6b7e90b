"""Replay: part of every training batch drawn from outside structures pseudo-labelled by the original model.

Fine-tuning a pretrained model on one molecule can damage what it knew about
others (:mod:`alloop.training.forgetting` measures it). With replay, every
batch also holds frames of a pool the original model labelled (the replay
structures of :mod:`alloop.system.outside`, with
:func:`~alloop.training.metrics.pseudo_labelled`), so the loss keeps pulling
the model towards the original's forces there.

The batch rule (:func:`replay_per_batch`): with fraction f > 0 and batch size
b >= 2, every batch holds r = floor(f b + 1/2) replay frames, at least 1 and at
most b - 1, and b - r frames of the training set. An epoch is still one pass
over the training set (the same seeded permutation as without replay), now
b - r frames at a time; replay frames are drawn without replacement from the
pool, reshuffled whenever it runs out, from their own random stream.
f = 0 is no replay: the trainer does not use this module at all.

Replay frames enter the force term only: their energy mask is 0, because the
original's energies are on another reference (SevenNet-0: PBE total
energies) than the campaign's labels. Their frame weight is the training
set's mean weight, so they make up the fraction r/b of a batch's weight on
average. They never enter the energy-reference fit, the output scale or the
validation metrics.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import torch

from alloop.errors import AlloopError
from alloop.training.data import FrameDataset, LabelledBatch

_STREAM = 0x52706C  # numpy SeedSequence entropy of the replay draws, beside the epoch's seed


def replay_per_batch(fraction: float, batch_size: int) -> int:
    """Replay frames per batch: 0 for ``fraction`` 0, else floor(f b + 1/2) clipped to [1, b - 1]."""
    if not 0.0 <= fraction < 1.0:
        raise AlloopError(f"replay_fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return 0
    if batch_size < 2:
        raise AlloopError(f"replay needs batches of at least 2 frames, got batch_size {batch_size}")
    return min(batch_size - 1, max(1, math.floor(fraction * batch_size + 0.5)))


class ReplayMix:
    """The batches of one training run with replay: ``data`` frames and ``pool`` frames, per the module's rule."""

    def __init__(self, data: FrameDataset, pool: FrameDataset, fraction: float, batch_size: int) -> None:
        if not (data.labelled and pool.labelled):
            raise AlloopError("replay needs a labelled training set and a pool labelled by the original model")
        self.n_replay = replay_per_batch(fraction, batch_size)
        if self.n_replay == 0:
            raise AlloopError("replay_fraction 0 means no replay")
        self.per_batch = batch_size - self.n_replay  # training frames per batch
        self.n_data, self.n_pool = len(data), len(pool)
        weight = np.concatenate([data.weight, np.full(len(pool), float(data.weight.mean()))])
        periodic = {}
        if data.pbc is not None or pool.pbc is not None:  # molecules get a zero cell and no pbc beside cells
            rows = [(d.cells, d.pbc) if d.pbc is not None else (np.zeros((len(d), 3, 3)), np.zeros((len(d), 3), bool))
                    for d in (data, pool)]
            periodic = {"cells": np.concatenate([r[0] for r in rows]), "pbc": np.concatenate([r[1] for r in rows])}
        self.frames = FrameDataset(
            np.concatenate([data.numbers, pool.numbers]),
            np.concatenate([data.positions, pool.positions]),
            np.concatenate([data.offsets, pool.offsets[1:] + data.offsets[-1]]),
            energy=np.concatenate([data.energy, pool.energy]),
            forces=np.concatenate([data.forces, pool.forces]),
            weight=weight,
            fidelity=data.fidelity,
            **periodic,
        )

    @property
    def n_batches(self) -> int:
        """Batches per epoch (one pass over the training set)."""
        return math.ceil(self.n_data / self.per_batch)

    def _replay_draws(self, n: int, seed: int) -> np.ndarray:
        """``n`` pool indices: concatenated permutations of the pool."""
        rng = np.random.default_rng((_STREAM, int(seed)))
        rounds = math.ceil(n / self.n_pool)
        return np.concatenate([rng.permutation(self.n_pool) for _ in range(rounds)])[:n]

    def batches(self, dtype: torch.dtype, seed: int) -> Iterator[LabelledBatch]:
        """One epoch's batches; ``energy_mask`` is 1 for training frames and 0 for replay frames."""
        order = np.random.default_rng(seed).permutation(self.n_data)
        drawn = self.n_data + self._replay_draws(self.n_batches * self.n_replay, seed)
        for k in range(self.n_batches):
            own = order[k * self.per_batch : (k + 1) * self.per_batch]
            idx = np.concatenate([own, drawn[k * self.n_replay : (k + 1) * self.n_replay]])
            batch = self.frames.batch(idx, dtype=dtype)
            yield replace(batch, energy_mask=torch.as_tensor(idx < self.n_data, dtype=dtype))
