"""Reaction events in the store: the explore phase adds them to ``md_events`` with its commit (exactly once), and
``alloop status`` / ``alloop report`` show them per cycle, with the labelled frames along them, where malonaldehyde
(no real rotor) prints no basin table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from store_helpers import assert_the_stored_summary_reads_the_same, make_label

from alloop.campaign.execution.md_task import MDRequest, MDTaskResult
from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.explore import _record_events
from alloop.campaign.phases.settings import campaign_settings
from alloop.cli import main
from alloop.config import CampaignConfig
from alloop.errors import ConfigError
from alloop.md import ReactionEvent
from alloop.report.summary import summary_markdown
from alloop.store import CampaignStore, store_path, tables
from alloop.store.reactions import format_reactions, reaction_name, reaction_status

TRANSFER = ReactionEvent(140, (4, 5), (0, 5), 1.52, 1.04)  # H5 from O4 to O0
BACK = ReactionEvent(410, (0, 5), (4, 5), 1.49, 1.06)


def _ctx(store, reactions: str = "events") -> PhaseContext:
    cfg = CampaignConfig.from_dict({"system": {"structures": "H2O"}, "seed": 0,
                                    "md": {"timestep_fs": 0.5, "reactions": reactions}})
    return PhaseContext(settings=campaign_settings(cfg), store=store, client=None, structures=[], fidelities={},
                        slots=1, progress=None, log=lambda _: None)


def _result(events: list[tuple[int, ReactionEvent]]) -> MDTaskResult:
    empty = np.zeros(0)
    return MDTaskResult(replicas=empty, steps=empty, positions=np.zeros((0, 9, 3)), unstable=empty, q_score=empty,
                        t2_score=empty, descriptors=np.zeros((0, 1)), bias_energy=empty, predicted_error=empty,
                        upper_error=empty, final_states={}, last_stable_states={}, stop_reasons={}, model_seconds=0.0,
                        total_seconds=0.0, events=events)


def _moved(atoms, to_o0: bool):
    """``atoms`` with H5 on O4 (as given) or moved to 0.98 A from O0 on the O0-H5 line."""
    out = atoms.copy()
    if to_o0:
        o0, h = out.positions[0], out.positions[5]
        out.positions[5] = o0 + 0.98 * (h - o0) / np.linalg.norm(h - o0)
    return out


def test_the_setting_reaches_the_guards(malonaldehyde):
    for reactions in ("events", "stop"):
        guards = _ctx(None, reactions).settings.explore.guards
        request = MDRequest(model_blob=b"", uq_blob=b"", atoms=malonaldehyde, references={0: malonaldehyde},
                            states={}, n_steps=1, md=None, record_every=1, guards=guards)  # type: ignore[arg-type]
        assert request.replica_guards([0])[0].reactions == reactions
    assert CampaignConfig.from_dict({"system": {"structures": "H2O"}}).md.reactions == "events"
    with pytest.raises(ConfigError, match="md.reactions: must be .events. or .stop."):
        CampaignConfig.from_dict({"system": {"structures": "H2O"}, "md": {"reactions": "ignore"}})


def test_events_commit_once_and_read_back(tmp_path, malonaldehyde, cheap, expensive, capsys):
    path = store_path(tmp_path / "run")
    with CampaignStore.create(path, {}) as store:
        store.add_frames([malonaldehyde], origin="md", cycle=0)
        _record_events(_ctx(store), 0, 3, [_result([(2, TRANSFER)])])
        assert store.has_pending_changes
        with pytest.warns(UserWarning, match="uncommitted"):
            store.close()  # killed before the phase's commit: the event is not in the store
    with CampaignStore.open(path, "a") as store:
        assert tables.read(store, tables.MD_EVENTS) == {} and reaction_status(store) is None
        boot = store.add_frames([malonaldehyde, _moved(malonaldehyde, True)], origin="bootstrap", cycle=-1)
        md0 = store.add_frames([malonaldehyde, _moved(malonaldehyde, True), _moved(malonaldehyde, True)],
                               origin="md", cycle=0)
        md1 = store.add_frames([malonaldehyde], origin="md", cycle=1)
        _record_events(_ctx(store), 0, 3, [_result([(2, TRANSFER)]), _result([(0, TRANSFER), (0, BACK)])])
        _record_events(_ctx(store), 1, 4, [_result([])])
        ids = [*boot, *md0, *md1]
        store.add_labels(cheap, ids, [make_label(int(k), 9) for k in ids])
        store.add_labels(expensive, [boot[0], md0[1]], [make_label(0, 9), make_label(1, 9)])
        store.commit(cycle=1, phase="explored")
    with CampaignStore.open(path, "r") as store:
        rows = tables.read(store, tables.MD_EVENTS)
        status = reaction_status(store)
        report = summary_markdown(store)
    assert rows["replica"].tolist() == [0, 0, 2] and rows["md_step"].tolist() == [140, 410, 140]
    assert rows["time_fs"].tolist() == [70.0, 205.0, 70.0] and rows["model_version"].tolist() == [3, 3, 3]
    assert rows["broken_j"].tolist() == [5, 5, 5] and rows["formed_i"].tolist() == [0, 4, 0]
    np.testing.assert_allclose(rows["broken_A"], [1.52, 1.49, 1.52])
    assert status["cycles"] == {0: {"events": 3, "reactions": {"H5 O4->O0": 2, "H5 O0->O4": 1}},
                                1: {"events": 0, "reactions": {}}}
    assert status["moves"] == [[5, 0, 4]]
    # labelled frames nearer O0 / nearer O4: cheap 3 / 3, expensive 1 / 1
    assert status["sides"] == {"hf-sto3g": {"H5 between O0 / O4": [3, 3]}, "mp2-dz": {"H5 between O0 / O4": [1, 1]}}
    lines = format_reactions(status)
    assert lines[0].endswith("3 in all; cycle 0 3 (H5 O4->O0 x2, H5 O0->O4 x1); cycle 1 0")
    assert "| 0 | 3 | H5 O4->O0 x2, H5 O0->O4 x1 |" in report and "| 1 | 0 | - |" in report
    assert main(["status", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert "conformer basin" not in text  # malonaldehyde has no real rotor: no basin table
    assert "reaction events" in text and "H5 between O0 / O4 3 / 3" in text
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    part = json.loads(capsys.readouterr().out)
    assert part["labelled_basins"] is None and part["reactions"]["total"] == 3
    assert_the_stored_summary_reads_the_same(tmp_path / "run", text, capsys)


def test_reaction_names():
    numbers = np.array([8, 6, 6, 6, 8, 1])
    assert reaction_name((4, 5), (0, 5), numbers) == "H5 O4->O0"
    assert reaction_name((1, 2), (3, 4), numbers) == "C1-C2 -> C3-O4"
    assert reaction_name((4, 5), (0, 5)) == "5 4->0"
    assert format_reactions(None) == []
