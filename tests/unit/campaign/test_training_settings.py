"""The training recipe (alloop.training.recipe.asteroid_settings): budgets and learning rates of cold, warm and final
trainings."""

from __future__ import annotations

from alloop.config import CampaignConfig
from alloop.training.recipe import asteroid_settings


def _training(**keys):
    data = {"system": {"structures": "H2O"}, "training": {"steps": 1000, "finetune_steps": 300,
                                                          "learning_rate_pretrain": 1e-2, "learning_rate_finetune": 3e-3,
                                                          **keys}}
    return CampaignConfig.from_dict(data).training


def test_cold_cycle_uses_the_full_budget_and_peak():
    s = asteroid_settings(_training(warm_start_lr_factor=0.3), seed=1, threads=1, temperature_K=500.0, warm=False)
    assert (s.stage1.max_steps, s.stage2.max_steps, s.stage3.max_steps) == (1000, 1000, 300)
    assert (s.stage1.lr, s.stage2.lr, s.stage3.lr, s.score.lr) == (1e-2, 1e-2, 3e-3, 1e-2)


def test_warm_cycle_shortens_stages_1_2_and_scales_their_peak():
    s = asteroid_settings(_training(warm_start_fraction=0.2, warm_start_lr_factor=0.3), seed=1, threads=1,
                          temperature_K=500.0, warm=True)
    assert (s.stage1.max_steps, s.stage2.max_steps, s.stage3.max_steps) == (200, 200, 300)  # stage 3: full budget
    assert abs(s.stage1.lr - 3e-3) < 1e-15 and abs(s.stage2.lr - 3e-3) < 1e-15 and abs(s.score.lr - 3e-3) < 1e-15
    assert s.stage3.lr == 3e-3  # stage 3 starts from the new stage-2 weights: its own peak


def test_default_factor_keeps_the_peak():
    s = asteroid_settings(_training(), seed=1, threads=1, temperature_K=500.0, warm=True)
    assert s.stage1.lr == 1e-2 and s.stage1.max_steps == 300


def test_final_retrain_scales_every_budget_and_keeps_the_peaks():
    s = asteroid_settings(_training(final_steps_factor=4), seed=1, threads=1, temperature_K=500.0, final=True)
    assert (s.stage1.max_steps, s.stage2.max_steps, s.stage3.max_steps) == (4000, 4000, 1200)
    assert (s.stage1.lr, s.stage2.lr, s.stage3.lr) == (1e-2, 1e-2, 3e-3)
    cold = asteroid_settings(_training(final_steps_factor=4), seed=1, threads=1, temperature_K=500.0)
    assert (cold.stage1.max_steps, cold.stage3.max_steps) == (1000, 300)  # only the final retrain is scaled
    default = asteroid_settings(_training(), seed=1, threads=1, temperature_K=500.0, final=True)
    assert (default.stage1.max_steps, default.stage3.max_steps) == (1000, 300)


def test_training_threads_default_to_the_workers_and_can_be_more():
    from alloop.campaign.phases.settings import training_plan

    def plan(**sections):
        return training_plan(CampaignConfig.from_dict({"system": {"structures": "H2O"}, **sections}))

    assert plan(execution={"threads_per_worker": 1}).threads == 1
    assert plan(execution={"threads_per_worker": 1}, training={"threads": 2}).threads == 2
    assert plan(execution={"threads_per_worker": 3}).threads == 3
    assert plan(training={"threads": 2}).stages(0, warm=False).stage1.threads == 2
