"""MD tasks per topology and bath temperature: a task holds one molecule's replicas at one temperature, each replica
with its own starting structure as its guards' reference."""

from __future__ import annotations

from ase.build import molecule

from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.explore import md_requests, replica_groups
from alloop.campaign.phases.settings import campaign_settings
from alloop.config import CampaignConfig
from alloop.system.conformers import conformer_starts


def test_one_temperature_splits_over_the_slots_as_before():
    assert replica_groups([0, 1, 2, 3, 4], [500.0] * 5, slots=2) == [[0, 1, 2], [3, 4]]
    assert replica_groups([0, 1], [500.0] * 2, slots=8) == [[0], [1]]


def test_a_ladder_gives_each_temperature_its_own_tasks():
    temps = [500.0, 800.0, 500.0, 800.0, 500.0, 800.0]
    assert replica_groups(list(range(6)), temps, slots=2) == [[0, 2, 4], [1, 3, 5]]
    assert replica_groups(list(range(6)), temps, slots=4) == [[0, 2], [4], [1, 3], [5]]
    assert replica_groups(list(range(6)), [500.0, 700.0, 900.0] * 2, slots=2) == [[0, 3], [1, 4], [2, 5]]


def _context(structures, slots=2, **md) -> PhaseContext:
    cfg = CampaignConfig.from_dict({"system": {"structures": "H2O"}, "md": md})
    return PhaseContext(settings=campaign_settings(cfg), store=None, client=None, structures=structures,
                        fidelities={}, slots=slots, progress=None, log=print)


def test_md_requests_carry_each_group_at_its_temperature():
    ctx = _context([molecule("H2O")], temperature_K=400, n_replicas=4, temperature_ladder_K=[400, 900])
    requests = md_requests(ctx, {r: b"" for r in range(4)}, b"model", b"uq")
    assert [(sorted(q.states), q.md.temperature_K) for q in requests] == [([0, 2], 400), ([1, 3], 900)]
    assert all(q.elements == (1, 8) for q in requests)


def test_each_molecule_gets_its_own_tasks_and_each_replica_its_own_reference():
    ethanol = conformer_starts(molecule("CH3CH2OH"), 3)
    ctx = _context([*ethanol, molecule("H2O")], slots=2, n_replicas=6)
    requests = md_requests(ctx, {r: b"" for r in range(6)}, b"model", b"uq")
    assert [(sorted(q.states), q.atoms.get_chemical_formula()) for q in requests] == [
        ([0, 2, 4], "C2H6O"), ([1, 3, 5], "H2O")]  # one task per topology (two slots, two topologies)
    for r, start in zip((0, 2, 4), ethanol, strict=True):  # the rotamers in turn, each the reference of its replica
        assert requests[0].references[r] is start
    assert all(q.elements == (1, 6, 8) for q in requests)  # the campaign's elements: descriptor widths agree


def test_a_ladder_reaches_every_molecule():
    ctx = _context([molecule("CH4"), molecule("H2O")], temperature_K=400, n_replicas=4,
                   temperature_ladder_K=[400, 900])
    assert [ctx.replica_temperature(r) for r in range(4)] == [400, 400, 900, 900]  # by rank within the molecule
    requests = md_requests(ctx, {r: b"" for r in range(4)}, b"model", b"uq")
    assert [(sorted(q.states), q.atoms.get_chemical_formula(), q.md.temperature_K) for q in requests] == [
        ([0], "CH4", 400), ([1], "H2O", 400), ([2], "CH4", 900), ([3], "H2O", 900)]


def test_replica_groups_split_topologies_apart():
    assert replica_groups([0, 1, 2, 3], [500.0] * 4, slots=2, topologies=["a", "b", "a", "b"]) == [[0, 2], [1, 3]]
    assert replica_groups([0, 1, 2, 3], [500.0] * 4, slots=4, topologies=["a", "b", "a", "b"]) == [
        [0], [2], [1], [3]]
