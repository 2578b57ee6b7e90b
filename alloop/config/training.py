"""The ``training`` section: the training recipe's defaults and checks, for campaigns and ``alloop train`` alike.

:class:`TrainingConfig` holds every default of the recipe (a model trained from scratch) and
:data:`PRETRAINED_DEFAULTS` the ones that differ when the model starts from pretrained weights
(``alloop train --model sevennet-0``); :func:`alloop.training.recipe.asteroid_settings` maps a section to the
stages' settings, and :func:`alloop.training.recipe.section_from_options` builds a section from ``alloop train``'s
options, so both paths share one recipe.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from alloop.config.base import Section
from alloop.errors import AlloopError
from alloop.training.methods import CAMPAIGN_METHODS, DEFAULT_METHOD, METHODS, campaign_method

#: the recipe's defaults that differ when the model starts from pretrained weights (a preset with a ``base``, such
#: as ``sevennet-0``): fine-tuning SevenNet-0 wants small batches, fewer steps and a lower energy weight. Chosen on
#: the 500 K ethanol pool by benchmarks/sevennet_recipe.py (selection-frame force MAE at N = 55: 0.020 eV/A).
#: A campaign applies them too (keys its file does not give), with a warm cycle's peak learning rate at 0.3 x: the
#: full peak knocks a fine-tuned SevenNet-0 out of its minimum (campaigns/universal-quickstart.yaml).
PRETRAINED_DEFAULTS: dict[str, Any] = {"steps": 1200, "batch_size": 4, "energy_weight": 0.1,
                                       "warm_start_lr_factor": 0.3}
#: the step budget of stages 1-2 when none is given (from scratch); stage 3's default is a third of it
DEFAULT_STEPS = 3000
#: the peak learning rate of stage 3 when none is given, x the peak of stages 1-2
FINETUNE_LR_FACTOR = 0.3
#: the epochs of score matching (``alloop train`` only) when no budget in epochs is given
SCORE_MATCHING_EPOCHS = 100
#: the temperature (K) of score matching's unlabelled frames when none is given (``alloop train --temperature-K``)
SCORE_MATCHING_TEMPERATURE_K = 300.0


class TrainingConfig(Section):
    """ASTEROID training: stage 1 on expensive, bias-weighted stage 2 on cheap, stage 3 fine-tuning.

    The recipe (alloop.training.trainer): a fixed budget of optimiser steps with warm-up + cosine learning rate,
    an EMA of the weights, MSE (or MAE/Huber) loss; early stopping only as a guard. With ``warm_start`` each
    cycle after the first continues every stage from the previous cycle's model with a shorter budget.
    """

    NULL_MEANS_NONE: ClassVar[frozenset[str]] = frozenset({"ema_decay", "rollback_factor"})

    method: str = Field(
        default=DEFAULT_METHOD,
        description="a method of the registry alloop.training.methods that a campaign runs: "
        f"{', '.join(CAMPAIGN_METHODS)}. standard: the expensive labels only (the measured best on a GFN-xTB "
        "baseline, docs/training.md); asteroid and asteroid-no-weights: ASTEROID's stages on cheap and expensive "
        "labels; two-head: one representation, a cheap and an expensive energy head (representation and cheap "
        "head on the cheap labels with stage-2 settings, then the expensive head alone, with stage-3 settings); the "
        "model `alloop refine` can refine at test time; score-matching is refused in a campaign (its MD frames are "
        "samples of the model's own Boltzmann distribution): use `alloop train --method score-matching`. A method "
        "that trains on cheap labels stops the campaign with an error when the store has none with status ok",
    )
    loss: Literal["mse", "mae", "huber"] = "mse"
    energy_weight: float = Field(default=0.5, ge=0, lt=1, description="rho in Eq. 1 (per-atom energy vs force term)")
    learning_rate_pretrain: float = Field(default=1e-2, gt=0, lt=1, description="stages 1 and 2 (peak of the schedule)")
    learning_rate_finetune: float | None = Field(
        default=None, gt=0, lt=1, description="stage 3 (peak of the schedule); default 0.3 x learning_rate_pretrain"
    )
    batch_size: int = Field(default=8, ge=1)
    steps: int | None = Field(default=None, ge=1, description=f"optimiser steps of stages 1 and 2 (default "
                              f"{DEFAULT_STEPS} unless max_epochs is given)")
    finetune_steps: int | None = Field(default=None, ge=1, description="optimiser steps of stage 3 (default steps / 3)")
    max_epochs: int | None = Field(default=None, ge=1, description="a budget in epochs instead of steps (every stage)")
    patience_epochs: int | None = Field(
        default=None, ge=1, description="early-stopping guard on the validation force MAE (default: half the run)"
    )
    ema_decay: float | None = Field(default=0.99, ge=0, lt=1, description="EMA of the weights; null: none")
    rollback_factor: float | None = Field(
        default=2.0, gt=1,
        description="a validation force MAE above this multiple of the best so far puts the best weights back, "
        "resets the optimiser and halves the learning rate (at most 3 times per stage); null: never",
    )
    warm_start: bool = Field(default=True, description="cycles after the first continue from the previous models")
    warm_start_fraction: float = Field(
        default=0.3, gt=0, le=1,
        description="share of the budget of stages 1 and 2 (and score matching) when warm; stage 3 keeps its full budget",
    )
    warm_sample_cheap: int | None = Field(
        default=2000, ge=10,
        description="a warm-started cycle trains on at most this many cheap labels: every label of the frames "
        "explored in this cycle and the one before, the rest a seeded sample of the older ones, drawn anew each "
        "cycle (replay of the campaign's own data); its bias B, Q-residual fit and validation frames come from "
        "them too. The bootstrap, cycles without a warm start and the final retrain train on every label; null: "
        "every label in every cycle",
    )
    warm_sample_expensive: int | None = Field(
        default=500, ge=10,
        description="the same bound on the expensive labels of a warm-started cycle (its stages 1 and 3, its "
        "error model's fit and calibration); null: every label",
    )
    final_retrain: bool = Field(
        default=True,
        description="the last scheduled cycle (schedule.n_cycles - 1) trains from the campaign's starting point "
        "(scratch, or the pretrained model) with the full budget on every label, instead of a warm start: the short "
        "warm runs steer the next cycle's MD, the last model is the one the campaign delivers",
    )
    final_refit: bool | None = Field(
        default=None, validate_default=True,
        description="(default: on with final_retrain, which the quickstarts measured: docs/benchmarks.md) after the "
        "final retrain has passed its guard on the validation frames, train it once more, "
        "the same recipe and seed, on every expensive label (no holdout: the validation frames become training "
        "frames). The campaign delivers the refit model; the validated one is kept as role 'validated' and its "
        "validation force MAE stays the model's recorded estimate. Doubles the final retrain's CPU; with two "
        "task slots the two trainings run at once (a refit of a rejected retrain is discarded)",
    )
    calibration_folds: int = Field(
        default=1, ge=1, le=10,
        description="with final_refit: the delivered model's error model is calibrated on this many disjoint folds of "
        "held-out frames (cross-validation: fold 0 is the final retrain's validation set, folds 1..k-1 hold out the "
        "next frames by the split's draws, each a training of its own beside the retrain and the refit), so a "
        "30-label campaign calibrates on up to 30 frames instead of 6; 1: the validation frames alone. Costs k - 1 "
        "more trainings of the final cycle",
    )
    error_exponent: float | None = Field(
        default=None, ge=0, le=4,
        description="the power b of the latent distance in each model's predicted force error (a x distance^b, "
        "calibrated on its held-out frames); null: b fitted with a (from the 5-7 held-out frames of a 30-label "
        "campaign b scatters from 0 to 3.4, where 60 labelled test frames give 0.75-1.2 for the same models); a "
        "number: b fixed, only a fitted. It also weighs the predicted error against the distance in the "
        "expensive pick. Not yet measured in a campaign over seeds",
    )
    final_steps_factor: float = Field(
        default=1.0, ge=1, le=20,
        description="the final retrain's budget of every stage, x steps and finetune_steps (e.g. a short budget "
        "for the bootstrap and warm cycles of a slow pretrained model, the full recipe for the model delivered)",
    )
    warm_start_lr_factor: float = Field(
        default=1.0, gt=0, le=1,
        description="peak learning rate of a warm-started stage, x its learning rate (a model already near its "
        "minimum is kicked out of it by the full peak: measured on SevenNet-0 fine-tuning)",
    )
    threads: int | None = Field(
        default=None, ge=1,
        description="torch threads of a training task (default: execution.threads_per_worker). In the synchronous "
        "mode nothing else runs while a cycle trains, so a slow model (SevenNet-0) can use every core of its machine; "
        "in the asynchronous mode the training shares the cores with the next cycle's MD and labels. With "
        "final_refit, the final retrain and its refit run at once as two tasks, on half these threads each",
    )
    validation_fraction: float = Field(default=0.1, gt=0, lt=1)
    min_validation_frames: int = Field(
        default=6, ge=1,
        description="at least this many expensive labels are held out for validation (the lowest of the split's "
        "hash draws; at most half of them): the model's error calibration needs 5 held-out frames, and a hash "
        "share alone held out 2 and 6 of the same 12 bootstrap labels for two seeds",
    )
    gamma_grid: tuple[float, ...] = Field(
        default=(1.0,), min_length=1,
        description="gamma candidates in units of the median bias B; one value fixes gamma, several are searched "
        "with full-length runs on a selection split of the expensive training frames",
    )
    score_matching_vectors: int = Field(default=1, ge=1, le=16, description="sliced score matching projections "
                                        "(unused: score matching is not a campaign method; kept so older files load)")
    outside_molecules: tuple[str, ...] | None = Field(
        default=None, min_length=1,
        description="ase.build.molecule names outside the campaign: forgetting is scored on them against the "
        "original (pretrained) model, and replay frames are drawn from them; default: the small CHO molecules of "
        "alloop.system.outside made of the campaign's elements, other than its own compositions",
    )
    replay_fraction: float = Field(
        default=0.0, ge=0, lt=1,
        description="share of every training batch drawn from outside molecules labelled by the original model "
        "(forces only; floor(f x batch_size + 1/2) frames, at least 1, at most batch_size - 1); needs pretrained "
        "weights; 0: off. Measured to hurt when the labels are at another level of theory than the pretraining "
        "(docs/training.md)",
    )

    @field_validator("method")
    @classmethod
    def _campaign_method(cls, value: str) -> str:
        if value not in METHODS:
            names = [f"'{name}'" for name in CAMPAIGN_METHODS]
            raise ValueError(f"must be {', '.join(names[:-1])} or {names[-1]} (got {value!r})")
        try:
            campaign_method(value)
        except AlloopError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("final_refit")
    @classmethod
    def _refit_needs_final_retrain(cls, value: bool | None, info: ValidationInfo) -> bool:
        if value is None:
            return bool(info.data.get("final_retrain", True))
        if value and info.data.get("final_retrain") is False:
            raise ValueError("a refit on every label follows the final retrain: set training.final_retrain: true too")
        return value

    @field_validator("calibration_folds")
    @classmethod
    def _folds_need_a_refit(cls, value: int, info: ValidationInfo) -> int:
        if value > 1 and not info.data.get("final_refit"):
            raise ValueError("cross-validated calibration calibrates the refit on every label: set "
                             "training.final_refit: true too (or calibration_folds: 1)")
        return value

    @field_validator("max_epochs")
    @classmethod
    def _one_budget(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and (info.data.get("steps") is not None or info.data.get("finetune_steps") is not None):
            raise ValueError("give the budget in steps (steps, finetune_steps) or in max_epochs, not both")
        return value

    @field_validator("patience_epochs")
    @classmethod
    def _patience(cls, value: int | None, info: ValidationInfo) -> int | None:
        epochs = info.data.get("max_epochs")
        if value is not None and epochs is not None and value > epochs:
            raise ValueError(f"must be <= max_epochs ({epochs}) (got {value})")
        return value

    @field_validator("gamma_grid")
    @classmethod
    def _gammas(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(g <= 0 for g in value):
            raise ValueError(f"every gamma must be > 0 (got {list(value)})")
        if len(set(value)) != len(value):
            raise ValueError(f"gammas must be distinct (got {list(value)})")
        return tuple(sorted(value))

    @field_validator("outside_molecules")
    @classmethod
    def _molecules(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from alloop.system.outside import molecule_elements

        if value is None:
            return None
        for name in value:
            try:
                molecule_elements(name)
            except AlloopError as exc:
                raise ValueError(str(exc)) from None
        if len(set(value)) != len(value):
            raise ValueError(f"molecules must be distinct (got {list(value)})")
        return value

    @field_validator("replay_fraction")
    @classmethod
    def _replay(cls, value: float, info: ValidationInfo) -> float:
        batch = info.data.get("batch_size")
        if value > 0 and batch is not None and batch < 2:
            raise ValueError(f"replay needs batch_size >= 2 (got batch_size {batch})")
        return value

    def stage_steps(self) -> tuple[int | None, int | None]:
        """(steps of stages 1-2, steps of stage 3); None when the budget is in epochs."""
        if self.max_epochs is not None:
            return None, None
        steps = DEFAULT_STEPS if self.steps is None else self.steps
        return steps, (max(1, steps // 3) if self.finetune_steps is None else self.finetune_steps)

    def finetune_lr(self) -> float:
        """The peak learning rate of stage 3: ``learning_rate_finetune``, else 0.3 x ``learning_rate_pretrain``."""
        if self.learning_rate_finetune is not None:
            return self.learning_rate_finetune
        return FINETUNE_LR_FACTOR * self.learning_rate_pretrain
