"""MD tasks per bath temperature: the temperature ladder's replicas never share an integrator."""

from __future__ import annotations

from types import SimpleNamespace

from ase.build import molecule

from alloop.campaign.phases.explore import md_requests, replica_groups
from alloop.campaign.phases.settings import campaign_settings
from alloop.config import CampaignConfig


def test_one_temperature_splits_over_the_slots_as_before():
    assert replica_groups([0, 1, 2, 3, 4], [500.0] * 5, slots=2) == [[0, 1, 2], [3, 4]]
    assert replica_groups([0, 1], [500.0] * 2, slots=8) == [[0], [1]]


def test_a_ladder_gives_each_temperature_its_own_tasks():
    temps = [500.0, 800.0, 500.0, 800.0, 500.0, 800.0]
    assert replica_groups(list(range(6)), temps, slots=2) == [[0, 2, 4], [1, 3, 5]]
    assert replica_groups(list(range(6)), temps, slots=4) == [[0, 2], [4], [1, 3], [5]]
    assert replica_groups(list(range(6)), [500.0, 700.0, 900.0] * 2, slots=2) == [[0, 3], [1, 4], [2, 5]]


def test_md_requests_carry_each_group_at_its_temperature():
    cfg = CampaignConfig.from_dict({"system": {"structures": "H2O"},
                                    "md": {"temperature_K": 400, "n_replicas": 4, "temperature_ladder_K": [400, 900]}})
    settings = campaign_settings(cfg)
    ctx = SimpleNamespace(settings=settings, reference=molecule("H2O"), slots=2)
    requests = md_requests(ctx, {r: b"" for r in range(4)}, b"model", b"uq")
    assert [(sorted(q.states), q.md.temperature_K) for q in requests] == [([0, 2], 400), ([1, 3], 900)]
