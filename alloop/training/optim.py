"""The optimisation pieces of the training recipe: learning-rate schedules by step and an EMA of the weights.

- :func:`learning_rate`: ``"cosine"`` is a linear warm-up from ``lr / 10`` to
  ``lr`` over the first ``warmup_steps`` steps, then a cosine decay to
  ``min_lr`` at ``total_steps``; ``"none"`` keeps ``lr``. (``"plateau"`` is
  handled by the trainer with torch's ReduceLROnPlateau.)
- :class:`WeightAverage`: an exponential moving average of the parameters,
  ``theta_ema <- d theta_ema + (1 - d) theta`` after each optimiser step with
  ``d = min(decay, (1 + t) / (10 + t))`` (so the first steps are not frozen at
  the initial weights). The average is a full model copy, evaluated and
  checkpointed instead of the raw weights: it smooths the last steps' noise.
  Buffers (reference energies, output scale) are copied, not averaged.
"""

from __future__ import annotations

import copy
import math
from typing import Generic, TypeVar

import torch

SCHEDULES = ("cosine", "plateau", "none")


def learning_rate(step: int, total_steps: int, lr: float, min_lr: float, warmup_steps: int, schedule: str) -> float:
    """The learning rate for optimiser step ``step`` (0-based) of ``total_steps``."""
    if schedule != "cosine":
        return lr
    if step < warmup_steps:
        return lr * (0.1 + 0.9 * step / max(1, warmup_steps))
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


M = TypeVar("M", bound=torch.nn.Module)


class WeightAverage(Generic[M]):
    """EMA of a model's parameters in a separate copy (``.model``), updated with :meth:`update`."""

    def __init__(self, model: M, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.model: M = copy.deepcopy(model)
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for avg, p in zip(self.model.parameters(), model.parameters(), strict=True):
            avg.lerp_(p.detach(), 1.0 - d)
        self.sync_buffers(model)
        self.updates += 1

    @torch.no_grad()
    def sync_buffers(self, model: torch.nn.Module) -> None:
        for avg, b in zip(self.model.buffers(), model.buffers(), strict=True):
            avg.copy_(b)
