"""The stop rules of long campaigns without a cluster: the deadline (schedule.deadline, schedule.max_hours) on an
injected clock, the per-fidelity CPU budgets, a cycle that brings nothing new, whether the newest model has every
label, and the stop rules a resume may change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from ase.build import molecule

from alloop.campaign.phases import deadline as deadline_module
from alloop.campaign.phases.budget import cycle_quota, expensive_quota
from alloop.campaign.phases.deadline import Deadline
from alloop.campaign.phases.settings import campaign_settings
from alloop.campaign.phases.stop_rules import N_LABELS_KEY, nothing_new, trained_on_every_label
from alloop.config import CampaignConfig
from alloop.config.loading import apply_stop_overrides
from alloop.errors import ConfigError
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.store.campaign import CampaignStore
from alloop.store.schema import FrameFlag

FIDELITIES = {"cheap": "hf-sto3g", "expensive": {"name": "hf-631g", "method": "hf", "basis": "6-31g"}}


def _cfg(**schedule) -> CampaignConfig:
    return CampaignConfig.from_dict({"system": {"structures": "H2O"}, "fidelities": FIDELITIES,
                                     "selection": {"max_cheap_per_cycle": 10, "max_expensive_per_cycle": 4},
                                     "schedule": {"bootstrap": {"n_samples": 4, "n_expensive": 2}, **schedule}})


def _label(fid, cpu: float, status: LabelStatus = LabelStatus.OK) -> LabelResult:  # noqa: ANN001 (Fidelity)
    return LabelResult(energy_eV=-1.0, forces_eV_per_A=np.zeros((3, 3)), status=status, cpu_seconds=cpu,
                       fidelity_name=fid.name, fidelity_hash=fid.hash())


def test_the_deadline_is_the_earlier_of_a_time_and_hours_after_the_start(monkeypatch):
    start = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc).timestamp()
    both = Deadline.of(campaign_settings(_cfg(deadline="2030-01-01T13:00:00Z", max_hours=2)).stop, start)
    assert both.at_s == start + 3600 and both.source == "schedule.deadline 2030-01-01T13:00:00+00:00"
    hours = Deadline.of(campaign_settings(_cfg(deadline="2030-01-01T15:00:00Z", max_hours=0.5)).stop, start)
    assert hours.at_s == start + 1800 and hours.source.startswith("schedule.max_hours 0.5 h after this run started")
    monkeypatch.setattr(deadline_module, "clock", lambda: start + 1799.0)
    assert hours.reason() is None
    monkeypatch.setattr(deadline_module, "clock", lambda: start + 1800.0)
    assert hours.reason() == f"deadline reached: {hours.source}"
    never = Deadline.of(campaign_settings(_cfg()).stop, start)
    assert never.at_s is None and never.reason() is None and never.local_time() == "never"


def test_a_deadline_without_a_zone_is_local_time():
    local = datetime(2030, 6, 1, 18, 0)
    rules = campaign_settings(_cfg(deadline="2030-06-01T18:00")).stop
    assert Deadline.of(rules, 0.0).at_s == local.timestamp()  # the driver's machine's local time
    cfg = _cfg(deadline=local.date())  # YAML reads 2030-06-01 as a date: midnight
    assert cfg.schedule.deadline == datetime(2030, 6, 1)
    again = CampaignConfig.from_dict(_cfg(deadline="2030-06-01T18:00+02:00").to_dict())  # what a store keeps
    assert again.schedule.deadline == datetime(2030, 6, 1, 18, tzinfo=timezone(timedelta(hours=2)))


def test_each_fidelity_stops_at_its_own_cpu_budget(tmp_path):
    """cheap: 50 CPU s (budget 60 s): 10 s remain, 5 s per label: 2 more labels; then 55 s used: spent (what
    remains would not pay for one more), the campaign's cheap quota is 0 and says which budget. expensive: 30 s
    spent of 36 s (10 s per label): none more, the cheap labels go on."""
    cfg = _cfg(budget_cpu_hours={"cheap": 60 / 3600, "expensive": 36 / 3600})
    fids = {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity}
    limits = campaign_settings(cfg).budget
    with CampaignStore.create(tmp_path / "s.zarr", cfg.to_dict()) as store:
        assert (cycle_quota(limits, store, fids).n_cheap, cycle_quota(limits, store, fids).n_expensive) == (10, 3)
        ids = store.add_frames([molecule("H2O")] * 12)
        store.add_labels(fids["cheap"], ids[:10], [_label(fids["cheap"], 5.0)] * 10)
        store.add_labels(fids["expensive"], ids[:3], [_label(fids["expensive"], 10.0)] * 3)
        store.commit()
        quota = cycle_quota(limits, store, fids)
        assert (quota.n_cheap, quota.n_expensive, quota.reason) == (2, 0, "")
        assert quota.expensive_reason.startswith("expensive CPU budget 0.01 h spent (0.00833 h used")
        assert "schedule.budget_cpu_hours.expensive" in quota.expensive_reason
        store.add_labels(fids["cheap"], ids[10:11], [_label(fids["cheap"], 5.0)])
        store.commit()
        quota = cycle_quota(limits, store, fids)
        assert quota.n_cheap == 0 and quota.reason.startswith("cheap CPU budget 0.0167 h spent (0.0153 h used")
        # the cheap labels of a cycle spent the cheap budget: its expensive pick still follows its own budget only
        assert expensive_quota(limits, store, fids).n_expensive == 0
        roomy = campaign_settings(_cfg(budget_cpu_hours={"cheap": 60 / 3600})).budget
        assert expensive_quota(roomy, store, fids).n_expensive == 4


def test_frames_selected_without_a_label_count_against_their_fidelity_budget(tmp_path):
    from alloop.store import ledger

    cfg = _cfg(budget_cpu_hours={"cheap": 60 / 3600})
    fids = {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity}
    with CampaignStore.create(tmp_path / "s.zarr", cfg.to_dict()) as store:
        ids = store.add_frames([molecule("H2O")] * 12)
        store.add_labels(fids["cheap"], ids[:6], [_label(fids["cheap"], 5.0)] * 6)
        ledger.select(store, 0, ids[6:12], "cheap", [""] * 6)  # in flight: 6 x 5 s
        store.commit()
        quota = cycle_quota(campaign_settings(cfg).budget, store, fids)
        assert quota.n_cheap == 0 and "cheap CPU budget" in quota.reason


def _md_frames(store: CampaignStore, cycle: int, flags: list[int]) -> None:
    store.add_frames([molecule("H2O")] * len(flags), origin="md", cycle=cycle, flags=np.array(flags, np.uint32))


def test_a_cycle_brings_nothing_new_when_nothing_is_flagged_and_no_replica_stopped(tmp_path):
    with CampaignStore.create(tmp_path / "s.zarr", {}) as store:
        store.add_frames([molecule("H2O")] * 2, origin="bootstrap", cycle=-1)
        _md_frames(store, 0, [0, int(FrameFlag.SELECTED_CHEAP), 0])  # a fill-up pick is not news
        _md_frames(store, 1, [0, int(FrameFlag.FLAGGED | FrameFlag.SELECTED_CHEAP)])
        _md_frames(store, 2, [0, int(FrameFlag.UNSTABLE)])  # a replica stopped by a guard
        store.commit()
        assert nothing_new(store, 0) == ("nothing new in cycle 0: none of its 3 MD frames was flagged and no "
                                         "replica was stopped by a guard")
        assert nothing_new(store, 1) is None and nothing_new(store, 2) is None
        assert nothing_new(store, 3) is None  # no MD frames: no verdict


def test_the_newest_model_knows_whether_it_has_every_label(tmp_path):
    cfg = _cfg()
    fids = {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity}
    with CampaignStore.create(tmp_path / "s.zarr", cfg.to_dict()) as store:
        assert trained_on_every_label(store, fids) is False  # no model
        ids = store.add_frames([molecule("H2O")] * 4)
        store.add_labels(fids["cheap"], ids[:3], [_label(fids["cheap"], 1.0)] * 3)
        store.add_labels(fids["expensive"], ids[:2], [_label(fids["expensive"], 1.0)] * 2)
        store.add_checkpoint(b"old", {"cycle": -1})
        assert trained_on_every_label(store, fids) is None  # records nothing
        store.add_checkpoint(b"m", {"cycle": -1, N_LABELS_KEY: {"cheap": 3, "expensive": 2}})
        store.add_checkpoint(b"t", {}, role="theta0")
        assert trained_on_every_label(store, fids) is True
        store.add_labels(fids["cheap"], ids[3:4], [_label(fids["cheap"], 1.0, LabelStatus.FAILED)])
        assert trained_on_every_label(store, fids) is True  # a failed label is nothing to train on
        store.add_labels(fids["expensive"], ids[2:3], [_label(fids["expensive"], 1.0)])
        assert trained_on_every_label(store, fids) is False
        store.commit()


def test_a_resume_may_change_only_the_stop_rules():
    stored = _cfg(deadline="2030-01-01T00:00:00").to_dict()
    data = apply_stop_overrides(stored, ["schedule.deadline=null", "schedule.budget_cpu_hours.cheap=2",
                                         "schedule.max_hours=47.5", "schedule.stop_when_nothing_new=true"])
    s = CampaignConfig.from_dict(data).schedule
    assert s.deadline is None and s.budget_cpu_hours.cheap == 2 and s.max_hours == 47.5 and s.stop_when_nothing_new
    for item in ("md.temperature_K=400", "schedule.n_cycles=9", "schedule.bootstrap.n_samples=2", "schedule=3"):
        with pytest.raises(ConfigError, match=rf"^--set {item}: a resumed campaign changes only its stop rules "):
            apply_stop_overrides(stored, [item])
