"""The campaign config turned once into each part's typed settings (alloop.campaign.phases.settings)."""

from __future__ import annotations

import pickle

from alloop.campaign.phases.settings import campaign_settings
from alloop.config import CampaignConfig
from alloop.training.recipe import asteroid_settings


def _cfg(**sections) -> CampaignConfig:
    return CampaignConfig.from_dict({"system": {"structures": "H2O"}, "seed": 3, **sections})


def test_md_and_guard_settings():
    ex = campaign_settings(_cfg(md={"ensemble": "nve", "temperature_K": 400, "temperature_range_K": [100, 900],
                                    "max_bond_stretch": 1.5, "min_distance_A": 0.6, "segment_steps": 50,
                                    "record_every": 5, "n_replicas": 3, "reactions": "stop"})).explore
    assert (ex.md.integrator, ex.md.temperature_K, ex.md.timestep_fs) == ("verlet", 400, 0.5)
    assert ex.guards.thresholds() == {"max_bond_stretch": 1.5, "min_distance_A": 0.6, "min_temperature_K": 100,
                                      "max_temperature_K": 900, "reactions": "stop"}
    assert (ex.n_replicas, ex.segment_steps, ex.record_every, ex.restart_from) == (3, 50, 5, "last-stable")
    assert pickle.loads(pickle.dumps(ex)) == ex  # goes to workers inside an MDRequest


def test_uncertainty_selection_budget_and_stop_settings():
    s = campaign_settings(_cfg(uncertainty={"limit": "empirical-frame", "calibration": "in-sample", "alpha": 0.05},
                               selection={"max_cheap_per_cycle": 12, "max_expensive_per_cycle": 4,
                                          "energy_window_sigma": None},
                               schedule={"strategy": "naive", "n_cycles": 2, "max_labels": {"cheap": 40},
                                         "min_flag_rate": 0.1}))
    u = s.training.uncertainty
    assert (u.limit, u.calibration, u.alpha) == ("empirical_frame", "in_sample", 0.05)
    assert s.selection.energy_window_sigma is None and s.selection.temperature_K == 500.0
    assert (s.budget.max_cheap_per_cycle, s.budget.max_expensive_per_cycle, s.budget.max_cheap) == (12, 4, 40)
    assert s.budget.max_expensive is None and s.budget.budget_cpu_seconds is None
    assert not s.periodic and (s.stop.n_cycles, s.stop.min_flag_rate) == (2, 0.1)


def test_training_plan_gives_each_cycle_its_seed_and_warm_budget():
    cfg = _cfg(training={"steps": 100, "warm_start_fraction": 0.5}, md={"temperature_K": 300})
    plan = campaign_settings(cfg).training
    assert plan.hyperparameters["seed"] == 3 and plan.method == "standard" and not plan.from_checkpoint
    assert plan.stages(-1, warm=False) == asteroid_settings(cfg.training, 3, 1, 300.0, split_seed=3)
    warm = plan.stages(2, warm=True)
    assert warm == asteroid_settings(cfg.training, 5, 1, 300.0, warm=True, split_seed=3) and warm.stage1.max_steps == 50
    assert warm.split_key == plan.stages(0, warm=False).split_key == 3  # one validation split for every cycle


def test_temperature_ladder_gives_each_replica_its_bath():
    ex = campaign_settings(_cfg(md={"temperature_K": 500, "n_replicas": 4, "temperature_ladder_K": [500, 800]})).explore
    assert [ex.replica_temperature(r) for r in range(4)] == [500, 800, 500, 800]
    assert ex.md_at(500) is ex.md and ex.md_at(800).temperature_K == 800
    assert ex.md_at(800).timestep_fs == ex.md.timestep_fs and ex.temperature_K == 500  # the target stays
    plain = campaign_settings(_cfg(md={"temperature_K": 400})).explore
    assert plain.ladder_K == () and plain.replica_temperature(7) == 400
