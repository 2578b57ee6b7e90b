"""The training recipe's values come only from the ``training`` section (TrainingConfig): the settings classes take no
recipe defaults of their own, every key of the section reaches the stages' settings, and ``alloop train`` and a
campaign build the same settings from the same section."""

from __future__ import annotations

from dataclasses import fields

import pytest

from alloop.cli import build_parser
from alloop.config import CampaignConfig
from alloop.config.training import SCORE_MATCHING_EPOCHS, SCORE_MATCHING_TEMPERATURE_K, TrainingConfig
from alloop.errors import AlloopError
from alloop.training.recipe import asteroid_settings
from alloop.training.score_matching import ScoreMatchingSettings
from alloop.training.settings import TrainSettings
from alloop.training.stages import AsteroidSettings

#: the section's keys that shape the stages' settings (asteroid_settings reads every one of them)
STAGE_KEYS = {"loss", "energy_weight", "learning_rate_pretrain", "learning_rate_finetune", "batch_size", "steps",
              "finetune_steps", "max_epochs", "patience_epochs", "ema_decay", "rollback_factor", "warm_start_fraction",
              "final_steps_factor", "warm_start_lr_factor", "validation_fraction", "min_validation_frames", "gamma_grid",
              "score_matching_vectors", "replay_fraction"}
#: the keys that steer what trains when in a campaign (the method, warm starts, the final retrain, threads, the
#: outside molecules of replay and forgetting), not the stages' settings
CAMPAIGN_KEYS = {"method", "warm_start", "final_retrain", "final_refit", "calibration_folds", "error_exponent", "threads",
                 "outside_molecules",
                 "warm_sample_cheap", "warm_sample_expensive"}


def _recipe(training: TrainingConfig | None = None, **kw) -> AsteroidSettings:
    """The stages' settings of ``training`` (default: the default section)."""
    return asteroid_settings(TrainingConfig() if training is None else training,
                             **{"seed": 0, "threads": None, "temperature_K": SCORE_MATCHING_TEMPERATURE_K, **kw})


def test_every_key_of_the_section_is_accounted_for():
    """A new key of the section is either mapped to the stages' settings (and to STAGE_KEYS here) or steers the
    campaign: it cannot be a recipe value that the settings classes default on their own."""
    assert set(TrainingConfig.model_fields) == STAGE_KEYS | CAMPAIGN_KEYS
    assert not STAGE_KEYS & CAMPAIGN_KEYS


def test_a_budget_and_the_stages_have_no_default():
    with pytest.raises(AlloopError, match="give the run's budget"):
        TrainSettings()
    with pytest.raises(AlloopError, match="exactly one"):
        TrainSettings(max_steps=10, max_epochs=2)
    with pytest.raises(TypeError):
        AsteroidSettings()  # type: ignore[call-arg]


def test_the_settings_defaults_are_the_sections_defaults():
    """The mapping of the default section equals the classes' defaults in every field but the budgets (and stage 3's
    peak): ``AsteroidSettings`` built from the recipe's stages is ``asteroid_settings(TrainingConfig())``."""
    recipe, section = _recipe(), TrainingConfig()
    steps, finetune_steps = section.stage_steps()
    assert recipe.stage1 == recipe.stage2 == TrainSettings(max_steps=steps)
    assert recipe.stage3 == TrainSettings(max_steps=finetune_steps, lr=section.finetune_lr())
    assert recipe.score == ScoreMatchingSettings()
    assert recipe == AsteroidSettings(recipe.stage1, recipe.stage2, recipe.stage3)
    assert (recipe.stage1.batch_size, recipe.stage1.lr, recipe.gamma_grid) == (section.batch_size,
                                                                               section.learning_rate_pretrain, (1.0,))
    assert recipe.score.max_epochs == SCORE_MATCHING_EPOCHS and recipe.score.batch_size == section.batch_size


def _not_defaults(default, expected: dict) -> None:
    """No value of ``expected`` is the class's default (so a settings field left at its default would fail)."""
    for name, value in expected.items():
        assert getattr(default, name) != value, f"{type(default).__name__}.{name}: pick a non-default value"


def test_every_value_of_the_section_reaches_the_settings():
    section = TrainingConfig(loss="huber", energy_weight=0.3, learning_rate_pretrain=2e-3, learning_rate_finetune=7e-4,
                             batch_size=3, steps=11, finetune_steps=5, patience_epochs=4, ema_decay=0.9,
                             rollback_factor=3.0, validation_fraction=0.3, min_validation_frames=9, gamma_grid=(0.5, 2.0),
                             score_matching_vectors=2, replay_fraction=0.25)
    s = _recipe(section, temperature_K=400.0)
    stage = {"loss": "huber", "energy_weight": 0.3, "lr": 2e-3, "batch_size": 3, "max_steps": 11, "patience": 4,
             "ema_decay": 0.9, "rollback_factor": 3.0, "replay_fraction": 0.25}
    score = {"n_vectors": 2, "batch_size": 3, "lr": 2e-3, "patience": 4, "temperature_K": 400.0}
    for settings, expected, default in ((s.stage1, stage, TrainSettings(max_steps=1)),
                                        (s.stage2, stage, TrainSettings(max_steps=1)),
                                        (s.stage3, {**stage, "lr": 7e-4, "max_steps": 5}, TrainSettings(max_steps=1)),
                                        (s.score, score, ScoreMatchingSettings())):
        _not_defaults(default, expected)
        assert {name: getattr(settings, name) for name in expected} == expected
    assert (s.val_fraction, s.min_val_frames, s.gamma_grid) == (0.3, 9, (0.5, 2.0))
    defaults = {f.name: f.default for f in fields(AsteroidSettings)}
    assert (defaults["val_fraction"], defaults["min_val_frames"], defaults["gamma_grid"]) != (0.3, 9, (0.5, 2.0))


def test_a_budget_in_epochs_reaches_every_stage():
    s = _recipe(TrainingConfig(max_epochs=6))
    for stage in (s.stage1, s.stage2, s.stage3):
        assert (stage.max_epochs, stage.max_steps, stage.eval_every) == (6, None, 1)
    assert s.score.max_epochs == 6
    default = _recipe()  # a budget in steps: no epochs anywhere (no number of epochs of the settings' own)
    assert {stage.max_epochs for stage in (default.stage1, default.stage2, default.stage3)} == {None}


def test_alloop_train_and_a_campaign_build_the_recipe_of_the_default_section():
    """Without recipe options, ``alloop train`` (from scratch) trains with ``asteroid_settings(TrainingConfig())``; so
    does a campaign without a ``training`` section: the two paths build equal settings."""
    from alloop.campaign.phases.settings import campaign_settings
    from alloop.commands.train import recipe_settings

    args = build_parser().parse_args(["train", "--expensive", "a.extxyz", "-o", "m.safetensors", "--seed", "4"])
    section, cli = recipe_settings(args, pretrained=False)
    assert section == TrainingConfig()
    assert cli == _recipe(seed=4, threads=1, split_seed=4)
    cfg = CampaignConfig.from_dict({"system": {"structures": "H2O"}, "seed": 4, "execution": {"threads_per_worker": 1},
                                    "md": {"temperature_K": SCORE_MATCHING_TEMPERATURE_K}})
    assert cfg.training == TrainingConfig()
    assert campaign_settings(cfg).training.stages(0, warm=False) == cli
