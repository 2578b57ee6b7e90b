"""The inner loop of the training recipe: the step budget, the per-step learning rate and one epoch of steps.

A step's batch counts frames (``batch_size``); its forward and backward passes run in consecutive pieces of at
most :data:`MAX_TRAIN_PAIRS` estimated neighbour pairs (:func:`~alloop.potentials.inference.batch_bounds`), whose
gradients add up before the optimiser steps. The loss is a sum over frames over one normaliser
(:mod:`alloop.training.loss`), so a step's gradient is the whole batch's, while its memory is a piece's: a training
step keeps the graph of the forces for the double backward, about 0.23 MB per estimated pair for SevenNet-0
(measured: one frame of 64 waters, 11,520 pairs, 2.9 GB; two frames 5.6 GB). A batch of 4 molecules of up to 55
atoms, or of 32 of up to 20 atoms, is never cut.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from alloop.potentials.base import Potential, model_dtype
from alloop.potentials.inference import batch_bounds
from alloop.training.data import FrameDataset, LabelledBatch
from alloop.training.loss import eq1_loss
from alloop.training.optim import WeightAverage, learning_rate
from alloop.training.replay import ReplayMix
from alloop.training.settings import TrainSettings

#: evaluations per run when ``eval_every`` is not given
EVALUATIONS_PER_RUN = 50
#: an extra loss term of the model, added to every optimiser step's loss
AuxiliaryLoss = Callable[[Potential], torch.Tensor]
#: estimated neighbour pairs of one forward and backward pass of a training step at most (one 64-water frame fits)
MAX_TRAIN_PAIRS = 12_288


@dataclass
class Budget:
    """A run's length: optimiser steps, the epochs they take, evaluate every ``eval_every`` epochs, warm-up steps."""

    steps: int
    epochs: int
    eval_every: int
    warmup: int


def plan_budget(data: FrameDataset, s: TrainSettings, mix: ReplayMix | None = None) -> Budget:
    """The budget of a run of ``s`` on ``data`` (batches of ``mix`` with replay): its steps, epochs and evaluations."""
    per_epoch = math.ceil(len(data) / s.batch_size) if mix is None else mix.n_batches
    if s.max_steps is not None:
        steps = s.max_steps
    else:
        assert s.max_epochs is not None  # TrainSettings: one of the two budgets
        steps = s.max_epochs * per_epoch
    epochs = math.ceil(steps / per_epoch)
    every = s.eval_every or max(1, math.ceil(epochs / EVALUATIONS_PER_RUN))
    return Budget(steps, epochs, every, int(s.warmup_fraction * steps))


class Steps:
    """Counts optimiser steps and sets each step's learning rate (warm-up + cosine, or constant)."""

    def __init__(self, opt: torch.optim.Optimizer, budget: Budget, s: TrainSettings) -> None:
        self.opt, self.budget, self.s, self.done = opt, budget, s, 0
        self.lr_scale = 1.0  # halved by each rollback

    @property
    def left(self) -> int:
        return self.budget.steps - self.done

    def before_step(self) -> None:
        if self.s.scheduler == "cosine":
            lr = self.lr_scale * learning_rate(self.done, self.budget.steps, self.s.lr,
                                               min(self.s.min_lr, self.s.lr), self.budget.warmup, "cosine")
            for group in self.opt.param_groups:
                group["lr"] = lr
        self.done += 1


def train_epoch(model: Potential, data: FrameDataset, steps: Steps, ema: WeightAverage | None,
                 s: TrainSettings, epoch: int, mix: ReplayMix | None = None,
                 auxiliary: AuxiliaryLoss | None = None) -> float:
    dtype = model_dtype(model)
    mean_w = float(data.weight.mean())
    total, count = 0.0, 0
    model.train()
    seed = s.seed * 1_000_003 + epoch
    if mix is None:
        batches = data.batches(s.batch_size, dtype=dtype, shuffle=True, seed=seed)
    else:
        batches = mix.batches(dtype, seed)
    for batch in batches:
        if steps.left <= 0:
            break
        n = batch.weight.numel()
        steps.before_step()
        steps.opt.zero_grad(set_to_none=True)
        loss = backward_in_pieces(model, batch, s, normalizer=n * mean_w)
        if auxiliary is not None:
            extra = auxiliary(model)
            extra.backward()
            loss += float(extra.detach())
        if s.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        steps.opt.step()
        if ema is not None:
            ema.update(model)
        total += loss * n
        count += n
    return total / max(count, 1)


def backward_in_pieces(model: Potential, batch: LabelledBatch, s: TrainSettings, normalizer: float) -> float:
    """Back-propagate the batch's loss (Eq. 1 over ``normalizer``) piece by piece (:data:`MAX_TRAIN_PAIRS`),
    accumulating the parameters' gradients; the batch's loss."""
    atoms = batch.atoms
    periodic = None if atoms.pbc is None else atoms.pbc.any(dim=1).cpu().numpy()
    pieces = batch_bounds(atoms.ptr.cpu().numpy(), periodic, batch.weight.numel(), max_pairs=MAX_TRAIN_PAIRS)
    total = 0.0
    for start, stop in pieces:
        piece = batch if len(pieces) == 1 else batch.frames(start, stop)
        out = model(piece.atoms, compute_forces=True, create_graph=True)
        assert out.forces is not None  # compute_forces
        energy, forces = piece.targets()
        loss = eq1_loss(
            out.energy, out.forces, energy, forces, piece.atoms.batch, piece.n_atoms,
            weight=piece.weight, energy_weight=s.energy_weight, kind=s.loss, normalizer=normalizer,
            energy_mask=piece.energy_mask,
        )
        loss.backward()
        total += float(loss.detach())
    return total
