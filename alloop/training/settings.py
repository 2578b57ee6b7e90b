"""The hyperparameters of one supervised training run (:class:`TrainSettings`), validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from alloop.errors import AlloopError
from alloop.training.loss import LOSS_TYPES
from alloop.training.optim import SCHEDULES
from alloop.training.replay import replay_per_batch


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters of one training run (see the module docstring).

    The budget is ``max_steps`` optimiser steps when given, else ``max_epochs``
    passes over the training set. ``patience`` counts epochs (rounded up to whole
    evaluations, one every ``eval_every`` epochs; ``None``: half the run);
    ``lr_patience`` (plateau schedule) counts evaluations. ``rollback_factor``: an evaluation
    whose validation force MAE exceeds this multiple of the best so far (or is not finite)
    restores the best weights, resets the optimiser and halves the learning rate for the
    rest of the run, at most ``max_rollbacks`` times (``None``: never).
    """

    max_epochs: int = 200
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 1e-2
    min_lr: float = 1e-5  # the end of the cosine (capped at lr)
    warmup_fraction: float = 0.05
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    scheduler: str = "cosine"
    lr_factor: float = 0.5
    lr_patience: int = 5
    ema_decay: float | None = 0.99
    patience: int | None = None
    min_improvement: float = 1e-4
    select: str = "final"
    energy_weight: float = 0.5
    loss: str = "mse"
    grad_clip: float | None = 10.0
    seed: int = 0
    threads: int | None = None
    fit_references: bool = True
    eval_every: int | None = None
    eval_batch_size: int = 64
    replay_fraction: float = 0.0
    rollback_factor: float | None = 2.0
    max_rollbacks: int = 3

    def __post_init__(self) -> None:
        if self.max_epochs < 0 or self.batch_size < 1 or (self.patience is not None and self.patience < 1):
            raise AlloopError("max_epochs must be >= 0, batch_size and patience >= 1")
        if self.max_steps is not None and self.max_steps < 0:
            raise AlloopError(f"max_steps must be >= 0, got {self.max_steps}")
        if self.lr <= 0 or self.min_lr < 0:
            raise AlloopError(f"need lr > 0 and min_lr >= 0, got lr {self.lr}, min_lr {self.min_lr}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise AlloopError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.optimizer not in ("adam", "adamw"):
            raise AlloopError(f"unknown optimizer '{self.optimizer}' (use adam or adamw)")
        if self.scheduler not in SCHEDULES:
            raise AlloopError(f"unknown scheduler '{self.scheduler}' (use one of {', '.join(SCHEDULES)})")
        if self.loss not in LOSS_TYPES:
            raise AlloopError(f"unknown loss '{self.loss}' (use one of {', '.join(LOSS_TYPES)})")
        if not 0.0 <= self.energy_weight <= 1.0:
            raise AlloopError(f"energy_weight must be in [0, 1], got {self.energy_weight}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise AlloopError(f"ema_decay must be in [0, 1) or None, got {self.ema_decay}")
        if self.select not in ("final", "best"):
            raise AlloopError(f"unknown select '{self.select}' (use final or best)")
        if self.eval_every is not None and self.eval_every < 1:
            raise AlloopError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.rollback_factor is not None and self.rollback_factor <= 1.0:
            raise AlloopError(f"rollback_factor must be > 1 or None, got {self.rollback_factor}")
        if self.max_rollbacks < 0:
            raise AlloopError(f"max_rollbacks must be >= 0, got {self.max_rollbacks}")
        replay_per_batch(self.replay_fraction, self.batch_size)  # the fraction and the batch size allow replay
