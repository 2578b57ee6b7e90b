"""The training recipe's one mapping: a ``training`` section to the stages' settings, for campaigns and ``alloop train``.

A campaign maps its ``training`` section with :func:`asteroid_settings` for every training (shortened
for a warm start, scaled for the final retrain); ``alloop train`` turns its options into the same
section with :func:`section_from_options` (the defaults of :class:`~alloop.config.training.TrainingConfig`,
or :data:`~alloop.config.training.PRETRAINED_DEFAULTS` for a pretrained model; the checks of the section,
reported with the option's name) and maps it with the same function. So the same section gives the same
settings on both paths.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from alloop.config.messages import format_validation_error
from alloop.config.training import PRETRAINED_DEFAULTS, SCORE_MATCHING_EPOCHS, TrainingConfig
from alloop.errors import ConfigError
from alloop.training.score_matching import ScoreMatchingSettings
from alloop.training.stages import AsteroidSettings
from alloop.training.trainer import TrainSettings

#: ``alloop train`` option (argparse dest) -> ``training`` key
OPTION_KEYS = {
    "steps": "steps", "finetune_steps": "finetune_steps", "epochs": "max_epochs", "patience": "patience_epochs",
    "batch_size": "batch_size", "lr": "learning_rate_pretrain", "finetune_lr": "learning_rate_finetune",
    "energy_weight": "energy_weight", "loss": "loss", "ema": "ema_decay", "rollback": "rollback_factor",
    "replay_fraction": "replay_fraction", "gamma_grid": "gamma_grid", "val_fraction": "validation_fraction",
}


def asteroid_settings(training: TrainingConfig, seed: int, threads: int | None, temperature_K: float, *,
                      warm: bool = False, final: bool = False, split_seed: int | None = None) -> AsteroidSettings:
    """The stages' settings of ``training``, seeded with ``seed`` (validation splits with ``split_seed``, None:
    ``seed``), ``threads`` torch threads (None: torch's own); ``temperature_K`` is score matching's. Every value of
    the recipe comes from ``training`` (the settings classes take none of their own).

    ``warm`` (a cycle that continues from the previous cycle's models) shortens the budgets of stages 1-2 by
    ``warm_start_fraction`` and scales their peak learning rate by ``warm_start_lr_factor``; stage 3 keeps its
    full budget and its own peak: it starts from the new stage-2 weights, which sit at the cheap fidelity as far
    from the expensive labels as in the first cycle (at 30 % of its steps the quickstart's stage 3 was still
    improving when its budget ended, and the cycle's model was worse than the one before it). ``final`` (the
    final retrain) multiplies every budget by ``final_steps_factor``.
    """
    fraction = training.warm_start_fraction if warm else (training.final_steps_factor if final else 1.0)
    lr = training.learning_rate_pretrain * (training.warm_start_lr_factor if warm else 1.0)

    def scaled(n: int) -> int:
        return max(1, round(n * fraction))

    def scaled_steps(n: int | None) -> int | None:
        return None if n is None else scaled(n)

    steps, finetune_steps = training.stage_steps()  # None, None for a budget in epochs
    epochs = None if training.max_epochs is None else scaled(training.max_epochs)
    base = TrainSettings(
        max_epochs=epochs, max_steps=scaled_steps(steps), batch_size=training.batch_size, lr=lr, loss=training.loss,
        energy_weight=training.energy_weight, ema_decay=training.ema_decay, rollback_factor=training.rollback_factor,
        patience=training.patience_epochs, eval_every=1 if training.max_epochs is not None else None,
        threads=threads, seed=seed, replay_fraction=training.replay_fraction,
    )
    score_epochs = scaled(training.max_epochs or SCORE_MATCHING_EPOCHS)
    score = ScoreMatchingSettings(
        temperature_K=temperature_K, n_vectors=training.score_matching_vectors, max_epochs=score_epochs,
        batch_size=training.batch_size, lr=lr, patience=training.patience_epochs, threads=threads, seed=seed,
    )
    stage3 = replace(base, lr=training.finetune_lr(),
                     max_steps=scaled_steps(finetune_steps) if final else finetune_steps,
                     max_epochs=epochs if final else training.max_epochs)
    return AsteroidSettings(
        stage1=base, stage2=base, stage3=stage3, score=score, gamma_grid=tuple(training.gamma_grid),
        val_fraction=training.validation_fraction, min_val_frames=training.min_validation_frames,
        seed=seed, split_seed=split_seed,
    )


def section_from_options(options: dict[str, Any], pretrained: bool = False) -> TrainingConfig:
    """The ``training`` section of ``alloop train``'s options (argparse dests of :data:`OPTION_KEYS`; None: the
    default, from :data:`~alloop.config.training.PRETRAINED_DEFAULTS` when ``pretrained``). ``--ema 0`` and
    ``--rollback 0`` mean none. ConfigError ``--option: reason`` for a value the section refuses."""
    data: dict[str, Any] = dict(PRETRAINED_DEFAULTS) if pretrained else {}
    for option, key in OPTION_KEYS.items():
        value = options.get(option)
        if value is None:
            continue
        if option in ("ema", "rollback") and value == 0:
            value = None
        data[key] = value
    if options.get("epochs") is not None and options.get("steps") is None:
        data.pop("steps", None)  # a budget in epochs replaces the pretrained default of steps
    try:
        return TrainingConfig.model_validate(data)
    except ValidationError as exc:
        message = format_validation_error(exc, TrainingConfig)
    for option, key in OPTION_KEYS.items():
        if message.startswith(f"{key}:"):
            message = f"--{option.replace('_', '-')}:{message[len(key) + 1:]}"
            break
    raise ConfigError(message)
