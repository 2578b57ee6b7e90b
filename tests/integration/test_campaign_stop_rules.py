"""Stop rules of days-long campaigns on the tiny campaign (real PySCF, LocalCluster, store): the wall-clock
deadline in both loop modes, the per-fidelity CPU budgets, and the stop after a cycle that brings nothing new.

No test waits for a clock: the deadline check reads ``alloop.campaign.phases.deadline.clock``, which the deadline
tests move far ahead right after a chosen phase is committed, so the deadline passes at the same point of the work
on any machine.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from alloop.campaign.loop.runner import resume_campaign, start_campaign
from alloop.campaign.phases import deadline as deadline_module
from alloop.campaign.phases.stop_rules import trained_on_every_label
from alloop.cli import main
from alloop.config import load_campaign
from alloop.store import ledger, tables
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from alloop.store.schema import FrameFlag
from harness.campaigns import check_invariants, write_tiny

LATER_S = 1e9  # what the clock jumps by once the chosen phase is committed (about 32 years)


def late_clock(monkeypatch) -> dict[str, bool]:  # noqa: ANN001 (pytest's fixture)
    """The deadline's clock, ``LATER_S`` seconds ahead once the returned flag ``now`` is set."""
    late = {"now": False}
    monkeypatch.setattr(deadline_module, "clock", lambda: time.time() + (LATER_S if late["now"] else 0.0))
    return late


def deadline_passes_after(monkeypatch, cycle: int, phase: str) -> None:  # noqa: ANN001 (pytest's fixture)
    """From the commit of ``phase`` of ``cycle`` on, the deadline has passed."""
    late = late_clock(monkeypatch)
    mark_phase = ledger.mark_phase

    def mark(store, at_cycle, at_phase, note=None):  # noqa: ANN001 (ledger.mark_phase's signature)
        mark_phase(store, at_cycle, at_phase, note=note)
        late["now"] = late["now"] or (at_cycle, at_phase) == (cycle, phase)

    monkeypatch.setattr(ledger, "mark_phase", mark)


def check_stopped_store(run_dir, done: set[tuple[int, str]], not_done: set[tuple[int, str]], reason: str) -> None:
    """Not finished, the phases as expected, the last commit says why, and the newest model was trained on every
    committed ok label (its validation split holds every expensive one)."""
    with CampaignStore.open(store_path(run_dir)) as store:
        marks = set(zip(map(int, store.table("progress")["cycle"]), map(str, store.table("progress")["phase"]),
                        strict=True))
        assert ledger.finished_reason(store) is None and done <= marks and not (not_done & marks), marks
        assert store.record["phase"] == ledger.STOPPED and store.record["note"] == {"reason": reason}
        cfg = store.config
        from alloop.config import CampaignConfig

        campaign = CampaignConfig.from_dict(cfg, check_files=False)
        fids = {"cheap": campaign.cheap_fidelity, "expensive": campaign.expensive_fidelity}
        assert trained_on_every_label(store, fids) is True
        split = store.checkpoint(-1, role="model")[1]["split"]["expensive"]
        ok = ledger.labelled_ids(store, fids["expensive"], ok_only=True)
        assert sorted(split["train"] + split["val"]) == sorted(ok.tolist())
        assert store.checkpoint(-1, role="model")[1]["n_labels"]["cheap"] == ledger.labelled_ids(
            store, fids["cheap"], ok_only=True).size


@pytest.mark.parametrize("mode", ["synchronous", "asynchronous"])
def test_a_deadline_stops_with_a_model_on_every_label_and_a_resume_finishes(tmp_path, monkeypatch, capsys, mode):
    """Synchronous (schedule.deadline): the deadline passes once cycle 0's cheap labels are committed; the
    expensive pick does not start, a model is trained on every label (cycle 0's cheap ones are new), the run stops,
    resumable. Asynchronous (schedule.max_hours): it passes once cycle 0's expensive pick is committed; its labels
    are not sent, cycle 1's MD (in flight then) finishes. Resuming with the deadline lifted finishes the campaign."""
    key, trigger = ("deadline", "2030-01-01T00:00:00") if mode == "synchronous" else ("max_hours", "1")
    yaml = write_tiny(tmp_path, cycles=2, mode=mode)
    yaml.write_text(yaml.read_text().replace("  n_cycles: 2\n", f"  n_cycles: 2\n  {key}: {trigger}\n"))
    phase = ledger.LABELLED_CHEAP if mode == "synchronous" else ledger.SELECTED_EXPENSIVE
    deadline_passes_after(monkeypatch, 0, phase)
    run_dir, lines = tmp_path / "run", []
    reason = start_campaign(load_campaign(yaml), run_dir, progress=False, echo=lines.append)
    source = ("schedule.deadline 2030-01-01T00:00:00" if mode == "synchronous"
              else "schedule.max_hours 1 h after this run started at ")
    assert reason.startswith(f"deadline reached: {source}")
    assert any(line.startswith(f"campaign stopped: {reason}; 'alloop resume' continues it") for line in lines)
    assert any("the newest model lacks labels: training one on every label" in line for line in lines)
    check_stopped_store(run_dir, {(0, phase)}, {(0, ledger.LABELLED_EXPENSIVE), (0, ledger.TRAINED)}, reason)
    assert main(["status", str(run_dir), "--check"]) == 0
    capsys.readouterr()

    said: list[str] = []
    again = resume_campaign(run_dir, progress=False, echo=said.append, overrides=[f"schedule.{key}=null"])
    assert again == "2 cycles done" and f"resume: schedule.{key}=null (now in the campaign's stored config)" in said
    out = check_invariants(run_dir, 2)
    with CampaignStore.open(store_path(run_dir)) as store:
        assert store.config["schedule"][key] is None
        versions = [int(v) for v in out["cycles"]["model_version"]]
    assert out["models"] == 4 and versions == sorted(versions)  # bootstrap, the deadline's, cycles 0 and 1
    assert main(["status", str(run_dir), "--check"]) == 0


def test_a_deadline_during_labels_lets_those_in_flight_finish(tmp_path, monkeypatch):
    """One label task per worker slot, one label per task: the deadline passes as cycle 0's first cheap label comes
    back; the one still on a worker finishes, the two not sent stay selected without a label, the model is trained
    on what is labelled, and the resume labels the rest and finishes."""
    from alloop.campaign.phases.label import LabelStream

    yaml = write_tiny(tmp_path, cycles=1, min_cheap=4)
    yaml.write_text(yaml.read_text().replace("  n_cycles: 1\n", "  n_cycles: 1\n  max_hours: 24\n"))
    late, add = late_clock(monkeypatch), LabelStream.add

    def first_back(self, key, result):  # noqa: ANN001 (LabelStream.add's signature)
        cycle, role, _ = self.by_key[key]
        add(self, key, result)
        late["now"] = late["now"] or (cycle, role) == (0, "cheap")

    monkeypatch.setattr(LabelStream, "add", first_back)
    cfg = load_campaign(yaml, overrides=["execution.tasks_per_slot=1", "execution.label_batch_seconds=0"])
    run_dir = tmp_path / "run"
    reason = start_campaign(cfg, run_dir, progress=False, echo=lambda line: None)
    assert reason.startswith("deadline reached: schedule.max_hours 24 h")
    with CampaignStore.open(store_path(run_dir)) as store:
        chosen = ledger.selected(store, "cheap", 0)
        labelled = np.intersect1d(chosen, ledger.labelled_ids(store, cfg.cheap_fidelity))
    assert chosen.size == 4 and labelled.size == 2  # the first back and the other one in flight
    check_stopped_store(run_dir, {(0, ledger.EXPLORED)}, {(0, ledger.LABELLED_CHEAP)}, reason)
    assert resume_campaign(run_dir, progress=False, echo=lambda line: None,
                           overrides=["schedule.max_hours=null"]) == "1 cycles done"
    check_invariants(run_dir, 1)


def test_a_resume_refuses_to_change_what_the_campaign_computes(tmp_path, capsys):
    """A deadline before the bootstrap: nothing runs, the store is left for a resume; --set md.* is refused."""
    yaml = write_tiny(tmp_path, cycles=1)
    yaml.write_text(yaml.read_text().replace("  n_cycles: 1\n", "  n_cycles: 1\n  deadline: 2000-01-01T00:00:00\n"))
    run_dir = tmp_path / "run"
    reason = start_campaign(load_campaign(yaml), run_dir, progress=False, echo=lambda line: None)
    assert reason == "deadline reached: schedule.deadline 2000-01-01T00:00:00"
    with CampaignStore.open(store_path(run_dir)) as store:
        assert store.n_frames == 0 and not store.checkpoints() and ledger.finished_reason(store) is None
    capsys.readouterr()
    assert main(["resume", str(run_dir), "--no-progress", "--set", "md.temperature_K=400"]) == 1
    assert "--set md.temperature_K=400: a resumed campaign changes only its stop rules" in capsys.readouterr().err


def test_each_fidelity_stops_at_its_own_cpu_hour_budget(tmp_path):
    """A cheap budget that the bootstrap's labels alone exceed (0.36 ms) stops the campaign before cycle 0 and says
    which budget; an expensive one as small leaves the cycles without expensive labels and the campaign goes on."""
    reasons, lines = {}, []
    for role in ("cheap", "expensive"):
        folder = tmp_path / role
        folder.mkdir()
        yaml = write_tiny(folder, cycles=1)
        budget = f"  budget_cpu_hours: {{{role}: 1.0e-7}}\n"
        yaml.write_text(yaml.read_text().replace("  n_cycles: 1\n", "  n_cycles: 1\n" + budget))
        reasons[role] = start_campaign(load_campaign(yaml), folder / "run", progress=False, echo=lines.append)
    assert reasons["cheap"].startswith("cheap CPU budget 1e-07 h spent (")
    assert reasons["cheap"].endswith("h used, labels in flight included; schedule.budget_cpu_hours.cheap)")
    with CampaignStore.open(store_path(tmp_path / "cheap" / "run")) as store:
        assert not np.any(store.table("progress")["phase"] == ledger.EXPLORED)
    assert reasons["expensive"] == "1 cycles done"
    assert any(line.startswith("expensive CPU budget 1e-07 h spent (") and line.endswith(": no more expensive labels")
               for line in lines)
    check_invariants(tmp_path / "expensive" / "run", 1)
    with CampaignStore.open(store_path(tmp_path / "expensive" / "run")) as store:
        rows = store.table("selection")
    assert set(rows["cycle"][rows["role"] == "expensive"].tolist()) == {-1}  # the bootstrap's only
    assert np.any((rows["cycle"] == 0) & (rows["role"] == "cheap"))


def test_a_cycle_that_flags_nothing_and_stops_no_replica_ends_the_campaign(tmp_path):
    """Frames flagged only above a predicted force error of 1000 eV/A (never) and guards that cannot fire: cycle 0
    brings nothing new, so the campaign stops after it (of 3 cycles)."""
    yaml = write_tiny(tmp_path, cycles=3, min_cheap=2, bootstrap="{n_samples: 14, n_expensive: 12, amplitude_A: 0.05}")
    overrides = ["uncertainty.max_force_error_eV_per_A=1000", "training.validation_fraction=0.5",
                 "md.max_bond_stretch=100", "md.min_distance_A=0.01", "md.temperature_range_K=[0, 10000000]",
                 "schedule.stop_when_nothing_new=true"]
    run_dir = tmp_path / "run"
    reason = start_campaign(load_campaign(yaml, overrides=overrides), run_dir, progress=False, echo=lambda s: None)
    with CampaignStore.open(store_path(run_dir)) as store:
        meta = store.frame_meta()
        md = (meta["origin"] == 2) & (meta["cycle"] == 0)
        predicted = tables.read(store, tables.MD_PREDICTED)
    n_md = int(md.sum())
    assert reason == (f"nothing new in cycle 0: none of its {n_md} MD frames was flagged and no replica was stopped "
                      "by a guard")
    assert not np.any(meta["flags"][md] & int(FrameFlag.FLAGGED | FrameFlag.UNSTABLE))
    assert len(predicted["frame_id"]) == n_md  # every frame had a predicted error (the flag rule applied)
    out = check_invariants(run_dir, 1)
    assert [int(c) for c in out["cycles"]["cycle"]] == [-1, 0] and float(out["cycles"]["flag_rate"][-1]) == 0.0
