"""The hyperparameters of one supervised training run (:class:`TrainSettings`), validated on construction.

The recipe's values have one home, the ``training`` section (:class:`~alloop.config.training.TrainingConfig`),
and one mapping to the stages' settings (:func:`alloop.training.recipe.asteroid_settings`, for campaigns and
``alloop train`` alike). So a run's budget has no default here (it depends on the stage), and the defaults of the
other values the section holds are the section's own defaults (:data:`RECIPE`), which cannot disagree with it. The
remaining fields are the trainer's own constants, which the section does not expose (warm-up, schedule, optimiser,
gradient clipping, evaluation batches, at most ``max_rollbacks`` rollbacks).
"""

from __future__ import annotations

from dataclasses import dataclass

from alloop.config.training import TrainingConfig
from alloop.errors import AlloopError
from alloop.training.loss import LOSS_TYPES
from alloop.training.optim import SCHEDULES
from alloop.training.replay import replay_per_batch

#: the recipe's defaults (a model trained from scratch), where the settings' defaults come from
RECIPE = TrainingConfig()


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters of one training run (see the module docstring).

    The budget, which has no default: ``max_steps`` optimiser steps, or ``max_epochs`` passes over the training set
    (exactly one of them). ``patience`` counts epochs (rounded up to whole
    evaluations, one every ``eval_every`` epochs; ``None``: half the run);
    ``lr_patience`` (plateau schedule) counts evaluations. ``rollback_factor``: an evaluation
    whose validation force MAE exceeds this multiple of the best so far (or is not finite)
    restores the best weights, resets the optimiser and halves the learning rate for the
    rest of the run, at most ``max_rollbacks`` times (``None``: never).
    """

    max_epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = RECIPE.batch_size
    lr: float = RECIPE.learning_rate_pretrain
    min_lr: float = 1e-5  # the end of the cosine (capped at lr)
    warmup_fraction: float = 0.05
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    scheduler: str = "cosine"
    lr_factor: float = 0.5
    lr_patience: int = 5
    ema_decay: float | None = RECIPE.ema_decay
    patience: int | None = RECIPE.patience_epochs
    min_improvement: float = 1e-4
    select: str = "final"
    energy_weight: float = RECIPE.energy_weight
    loss: str = RECIPE.loss
    grad_clip: float | None = 10.0
    seed: int = 0
    threads: int | None = None
    fit_references: bool = True
    eval_every: int | None = None
    eval_batch_size: int = 64
    replay_fraction: float = RECIPE.replay_fraction
    rollback_factor: float | None = RECIPE.rollback_factor
    max_rollbacks: int = 3

    def __post_init__(self) -> None:
        if (self.max_steps is None) == (self.max_epochs is None):
            raise AlloopError("give the run's budget: max_steps or max_epochs (exactly one; "
                              f"got max_steps {self.max_steps}, max_epochs {self.max_epochs})")
        if (self.max_epochs is not None and self.max_epochs < 0) or (self.max_steps is not None and self.max_steps < 0):
            raise AlloopError(f"max_steps and max_epochs must be >= 0, got {self.max_steps}, {self.max_epochs}")
        if self.batch_size < 1 or (self.patience is not None and self.patience < 1):
            raise AlloopError("batch_size and patience must be >= 1")
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
