"""The campaign loop end to end: real LocalCluster, real PySCF, real MD, real Zarr store."""

from __future__ import annotations

import json
import os
import re
import threading

import numpy as np
import pytest

from alloop.campaign.loop.runner import resume_campaign, start_campaign
from alloop.cli import main
from alloop.config import load_campaign
from harness.campaigns import check_invariants, write_tiny
from harness.faults import failing_factory

#: the tests that read the tiny campaign of 2 synchronous cycles (``tiny_run``) share one worker, so it runs once
TINY_RUN = pytest.mark.xdist_group("test_campaign_tiny_run")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny campaign (2 cycles, synchronous, periodic), finished: (run directory, its reason, the lines it
    echoed). The tests that read it do not change it."""
    folder = tmp_path_factory.mktemp("tiny")
    lines: list[str] = []
    reason = start_campaign(load_campaign(write_tiny(folder, cycles=2)), folder / "run", progress=False,
                            echo=lines.append)
    return folder / "run", reason, lines


@TINY_RUN
def test_tiny_campaign_end_to_end(tiny_run, capsys):
    run_dir, reason, lines = tiny_run
    assert reason == "2 cycles done"
    out = check_invariants(run_dir, 2)
    assert out["models"] == 3  # bootstrap + one per cycle (periodic)
    assert list(out["cycles"]["cycle"]) == [-1, 0, 1]
    assert out["n_ok"] >= 6 + 4  # bootstrap labels at least
    assert any("MD recorded" in line for line in lines)
    log = (run_dir / "campaign.log").read_text()
    assert log.count("campaign finished") == 1
    # the bootstrap trains from scratch; cycle 0 continues every stage from the bootstrap's models with 30 % of the
    # budget; the last cycle (training.final_retrain, the default) trains afresh with the full budget
    assert log.count("warm start from the previous cycle's model, stage2, theta0") == 1
    assert log.count("final retrain: every stage afresh with the full budget on every label") == 1
    assert re.findall(r"stage1 .*?\((\d+) epochs", log) == ["4", "1", "4"]
    assert log.count("asteroid training on 1 torch thread(s)") == 3  # the worker's threads, said by each training
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    with CampaignStore.open(store_path(run_dir)) as store:
        roles = [c["role"] for c in store.checkpoints()]
    # the final retrain is compared with the model it replaces; if worse, it is kept aside (role 'rejected')
    rejected = roles.count("rejected")
    assert log.count("final retrain: validation force MAE") + log.count("WARNING: final retrain rejected") == 1
    assert log.count("WARNING: final retrain rejected") == rejected
    assert roles.count("model") == 3 and roles.count("theta0") == roles.count("stage2") == 3 - rejected
    from alloop.potentials.checkpoint import model_from_bytes

    with CampaignStore.open(store_path(run_dir)) as store:
        metas = [model_from_bytes(store.checkpoint(c["version"])[0])[1] for c in store.checkpoints()
                 if c["role"] == "model"]
    assert [bool(m.get("final_retrain")) for m in metas] == [False, False, True]
    # resuming a finished campaign does nothing
    said: list[str] = []
    assert resume_campaign(run_dir, progress=False, echo=said.append) == reason
    assert "already finished" in said[0]
    # status sees it
    assert main(["status", str(run_dir), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["frames"]["total"] == out["n_frames"]


@TINY_RUN
def test_status_reads_the_summary_the_loop_stored_and_only_while_it_is_current(tiny_run, tmp_path, capsys):
    """The finished campaign's status comes from the summary stored at its end, the same text and JSON as computed
    afresh; once anything is committed after it (here one frame, in a copy), status computes afresh."""
    import shutil

    from alloop.campaign import status_summary
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    run_dir = tiny_run[0]

    def status(*options: str) -> tuple[str, dict]:
        assert main(["status", str(run_dir), *options]) == 0
        text = capsys.readouterr().out
        assert main(["status", str(run_dir), "--json", *options]) == 0
        return text, json.loads(capsys.readouterr().out)

    (text, stored), (text_fresh, fresh) = status(), status("--recompute")
    assert stored.pop("stored_summary") is True and fresh.pop("stored_summary") is False
    assert text == text_fresh and stored == fresh
    with CampaignStore.open(store_path(run_dir)) as store:
        assert status_summary.read(store) == json.loads(json.dumps(status_summary.compute(store)))
    copy = tmp_path / "store.zarr"
    shutil.copytree(store_path(run_dir), copy)
    with CampaignStore.open(copy, "a") as store:
        store.add_frames(store.get_frames([0]), origin="import")
        store.commit()
        assert status_summary.read(store) is None
    assert main(["status", str(copy), "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["stored_summary"] is False and after["frames"]["total"] == fresh["frames"]["total"] + 1


def test_a_status_summary_that_fails_to_store_costs_the_campaign_nothing(tmp_path, monkeypatch, capsys):
    """The summary is an auxiliary copy: if storing it raises, the campaign logs a warning and finishes, and
    ``alloop status`` computes the counts afresh."""
    from alloop.campaign import status_summary

    def broken(store):
        raise OSError("injected: the summary cannot be written")

    monkeypatch.setattr(status_summary, "save", broken)
    run_dir = tmp_path / "run"
    lines: list[str] = []
    reason = start_campaign(load_campaign(write_tiny(tmp_path, cycles=1)), run_dir, progress=False, echo=lines.append)
    assert reason == "1 cycles done"
    assert sum("WARNING: the status summary was not stored (OSError: injected" in line for line in lines) >= 2
    assert main(["status", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stored_summary"] is False


def test_validation_frames_of_a_cycle_never_trained_in_an_earlier_one(tmp_path):
    """Every training splits by the campaign seed, not the cycle's: over the bootstrap and two cycles, each recorded
    split keeps the earlier training frames in training, so no validation frame of cycle 1 was a training frame of
    cycle 0; the recorded split is the one FrameDataset.split draws from the frames with the campaign seed (the
    expensive labels with at least training.min_validation_frames held out)."""
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path
    from alloop.training.data import FrameDataset

    cfg = load_campaign(write_tiny(tmp_path, cycles=2, min_cheap=4),
                        overrides=["training.validation_fraction=0.5", "selection.energy_window_sigma=null",
                                   "training.min_validation_frames=1"])  # the hash split alone (see test_data.py)
    run_dir = tmp_path / "run"
    assert start_campaign(cfg, run_dir, progress=False, echo=lambda s: None) == "2 cycles done"
    with CampaignStore.open(store_path(run_dir)) as store:
        metas = [store.checkpoint(int(c["version"]))[1] for c in store.checkpoints() if c["role"] == "model"]
        splits = {int(m["cycle"]): m["split"] for m in metas}
        last = {kind: store.get_frames(sorted(sides["train"] + sides["val"])) for kind, sides in splits[1].items()}
    assert sorted(splits) == [-1, 0, 1] and set(splits[1]) == {"expensive", "cheap"}
    for kind in ("expensive", "cheap"):
        for before, after in ((-1, 0), (0, 1)):
            old, new = splits[before][kind], splits[after][kind]
            assert not set(new["val"]) & set(old["train"]), f"{kind}: cycle {after} validates on training frames"
            assert set(old["train"]) <= set(new["train"])  # (a validation frame may move to training only when
            # it was the one forced into validation because no frame drew below the fraction: the bootstrap's here)
        assert len(splits[1][kind]["train"]) > len(splits[-1][kind]["train"])  # the cycles added frames
        ids = sorted(splits[1][kind]["train"] + splits[1][kind]["val"])
        held_out = cfg.training.min_validation_frames if kind == "expensive" else 1  # at least that many (up to half)
        _, _, _, val = FrameDataset.from_atoms(last[kind], labelled=False).split(0.5, cfg.seed, held_out)
        assert sorted(ids[i] for i in val) == sorted(splits[1][kind]["val"])


def test_labeller_failures_are_recorded_and_the_campaign_completes(tmp_path, capsys):
    cfg = load_campaign(write_tiny(tmp_path, cycles=1))
    run_dir = tmp_path / "run"
    start_campaign(cfg, run_dir, progress=False, echo=lambda s: None, labeler_factory=failing_factory(3))
    out = check_invariants(run_dir, 1)
    assert out["n_failed"] > 0 and out["n_ok"] > 0
    assert main(["status", str(run_dir), "--json"]) == 0
    by_status = [f["by_status"] for f in json.loads(capsys.readouterr().out)["labels"]]
    assert sum(s["scf_not_converged"] for s in by_status) == out["n_failed"]
    assert main(["report", str(run_dir)]) == 0
    report = run_dir / "report"
    for name in ("cost.png", "uncertainty.png", "parity.png", "labels.png", "levels.png"):
        assert (report / name).stat().st_size > 1000
    summary = (report / "summary.md").read_text()
    assert "injected failure" in summary and "scf_not_converged" in summary
    assert "frames labelled at both" in summary and "median B of the last model" in summary  # ASTEROID's levels


def test_worker_death_during_labelling_is_survived(tmp_path):
    from alloop.campaign.execution.cluster import open_client
    from alloop.campaign.loop.driver import Campaign
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    cfg = load_campaign(write_tiny(tmp_path, cycles=1))
    run_dir = tmp_path / "run"
    store = CampaignStore.create(store_path(run_dir), cfg.to_dict())
    killed: list[int] = []
    done = threading.Event()
    with open_client(n_workers=2) as client:
        camp = Campaign(cfg, store, client, log=lambda s: None)

        def killer() -> None:  # kills a worker once labels are in flight, however long the campaign takes to get there
            while not done.is_set() and not killed:
                if camp.pool.n_in_flight > 0:
                    pids = client.run(os.getpid)
                    pid = sorted(pids.values())[0]
                    os.kill(pid, 9)
                    killed.append(pid)
                done.wait(0.01)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            camp.run()
        finally:
            done.set()
            thread.join(60)
    store.close()
    assert killed, "no worker was killed"
    out = check_invariants(run_dir, 1)
    assert out["n_ok"] >= 10


@pytest.mark.parametrize("strategy", ["naive"])
def test_naive_strategy_trains_once_at_the_end(tmp_path, strategy):
    cfg = load_campaign(write_tiny(tmp_path, cycles=2, strategy=strategy))
    run_dir = tmp_path / "run"
    start_campaign(cfg, run_dir, progress=False, echo=lambda s: None)
    out = check_invariants(run_dir, 2)
    assert out["models"] == 2  # bootstrap model + the final fine-tune
    versions = np.asarray(out["cycles"]["model_version"])
    assert versions[-1] >= 0 and np.all(versions[1:-1] == -1)
    # the one training on all labels runs afresh with the full budget (training.final_retrain, the default)
    log = (run_dir / "campaign.log").read_text()
    assert "final retrain: every stage afresh" in log and "warm start" not in log
    assert re.findall(r"stage1 .*?\((\d+) epochs", log) == ["4", "4"]


def test_both_strategies_spend_exactly_the_same_label_budget(tmp_path):
    """Naive and periodic with the same binding label limits (bootstrap 6 cheap + 4 expensive, then 4 cheap and at
    most 2 expensive per cycle, against limits of 14 and 8: the second cycle's cheap labels reach the cheap limit
    and its expensive selection still gets its 2): both explore the same cycles (2 x 2 replicas x 40 MD
    steps) and stop with exactly the limits spent (no energy window: every cheap-labelled frame may be chosen)."""
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    spent = {}
    for strategy in ("periodic", "naive"):
        folder = tmp_path / strategy
        folder.mkdir()
        cfg = load_campaign(write_tiny(folder, cycles=4, strategy=strategy, max_cheap=14, max_expensive=8,
                                       min_cheap=4), overrides=["selection.energy_window_sigma=null"])
        run_dir = folder / "run"
        reason = start_campaign(cfg, run_dir, progress=False, echo=lambda s: None)
        rows = check_invariants(run_dir, 2)["cycles"]
        with CampaignStore.open(store_path(run_dir)) as store:
            progress = store.table("progress")
            explored = sorted(int(c) for c, p in zip(progress["cycle"], progress["phase"], strict=True) if p == "explored")
        spent[strategy] = (reason, int(rows["labels_cheap"][-1]), int(rows["labels_expensive"][-1]), explored)
    assert spent["periodic"] == spent["naive"]
    assert spent["periodic"][1:] == (14, 8, [0, 1])
    assert "limit" in spent["periodic"][0] or "budget" in spent["periodic"][0]


def test_asynchronous_mode_never_overshoots_the_label_limits(tmp_path):
    """The pipelined loop explores the next cycle while this one's labels are in flight; frames selected and not
    labelled yet count as spent, so the limits are reached exactly, as in the synchronous loop."""
    cfg = load_campaign(write_tiny(tmp_path, cycles=4, mode="asynchronous", max_cheap=14, max_expensive=8,
                                   min_cheap=4), overrides=["selection.energy_window_sigma=null"])
    run_dir = tmp_path / "run"
    reason = start_campaign(cfg, run_dir, progress=False, echo=lambda s: None)
    rows = check_invariants(run_dir, 2)["cycles"]
    assert (int(rows["labels_cheap"][-1]), int(rows["labels_expensive"][-1])) == (14, 8)
    assert "limit" in reason


def test_two_head_campaign_trains_and_warm_starts_a_two_head_model(tmp_path):
    """training.method two-head: every model has a cheap and an expensive head (the expensive one drives MD);
    each cycle continues the previous two-head model; no ASTEROID stage models are stored."""
    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.potentials.two_head import TwoHeadPotential
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    overrides = ["training.method=two-head", "model.architecture=egnn", "model.hidden_features=8", "model.n_layers=1",
                 "training.final_retrain=false"]
    cfg = load_campaign(write_tiny(tmp_path, cycles=1), overrides=overrides)
    run_dir = tmp_path / "run"
    start_campaign(cfg, run_dir, progress=False, echo=lambda s: None)
    check_invariants(run_dir, 1)
    with CampaignStore.open(store_path(run_dir)) as store:
        roles = [c["role"] for c in store.checkpoints()]
        model, meta = model_from_bytes(store.checkpoint(store.checkpoints()[-1]["version"])[0])
        hashes = set(store.fidelities())
    assert roles == ["model", "model"]  # bootstrap + cycle 0
    assert isinstance(model, TwoHeadPotential) and model.active_head == "expensive"
    assert set(meta["energy_references"]) == hashes  # one reference set per head's fidelity
    log = (run_dir / "campaign.log").read_text()
    assert log.count("warm start from the previous cycle's model") == 1
    assert "cheap head on the cheap validation split" in log


@pytest.mark.parametrize("mode", [pytest.param("synchronous", marks=TINY_RUN), "asynchronous"])
def test_asynchronous_mode_explores_while_the_previous_cycle_trains(tmp_path, request, mode):
    """Asynchronous: cycle 1 explores with the bootstrap's model while cycle 0's trains (its 'explored' mark comes
    before cycle 0's 'trained'); synchronous (the shared ``tiny_run``): with cycle 0's model, after it."""
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    if mode == "synchronous":
        run_dir, reason, _ = request.getfixturevalue("tiny_run")
    else:
        run_dir = tmp_path / "run"
        reason = start_campaign(load_campaign(write_tiny(tmp_path, cycles=2, mode=mode)), run_dir, progress=False,
                                echo=lambda s: None)
    assert reason == "2 cycles done"
    out = check_invariants(run_dir, 2)
    assert out["models"] == 3
    with CampaignStore.open(store_path(run_dir)) as store:
        progress = store.table("progress")
        versions = [int(c["version"]) for c in store.checkpoints() if c["role"] == "model"]
        models = {int(store.checkpoint(v)[1]["cycle"]): v for v in versions}
    order = [(int(c), str(p)) for c, p in zip(progress["cycle"], progress["phase"], strict=True)]
    explored_1, trained_0 = order.index((1, "explored")), order.index((0, "trained"))
    log = (run_dir / "campaign.log").read_text()
    md_model = int(re.search(r"cycle 1: MD recorded \d+ frames with model v(\d+)", log).group(1))
    if mode == "asynchronous":
        assert explored_1 < trained_0 and md_model == models[-1]
        assert "[cycle 0 training] " in log
    else:
        assert trained_0 < explored_1 and md_model == models[0]


def test_committee_pick_trains_stores_and_uses_a_committee(tmp_path):
    """``selection.expensive_pick: committee``: every training but the final retrain also trains two more models
    (role ``committee``, warm-started from the previous members in cycle 0), the expensive pick ranks by their force
    deviation and says so, and the run resumes as finished. With ``training.final_refit`` the final retrain, once
    it passes its guard, is trained again on every label (the validated model kept as role ``validated``)."""
    yaml = write_tiny(tmp_path, cycles=3)
    text = yaml.read_text().replace("expensive_pick: bias}", "expensive_pick: committee}")
    assert "expensive_pick: committee}" in text
    yaml.write_text(text)
    run_dir = tmp_path / "run"
    cfg = load_campaign(yaml, overrides=["training.final_refit=true"])
    assert start_campaign(cfg, run_dir, progress=False, echo=lambda s: None) == "3 cycles done"
    check_invariants(run_dir, 3)
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    with CampaignStore.open(store_path(run_dir)) as store:
        entries = store.checkpoints()
        members = [store.checkpoint(int(e["version"]))[1] for e in entries if e["role"] == "committee"]
    # bootstrap, cycle 0 and cycle 1 train a committee; cycle 2 (the final retrain) does not
    assert [(m["cycle"], m["member"]) for m in members] == [(-1, 1), (-1, 2), (0, 1), (0, 2), (1, 1), (1, 2)]
    log = (run_dir / "campaign.log").read_text()
    assert log.count("committee member 2 of 2: validation force MAE") == 3
    assert log.count("(warm start)") == 4  # cycles 0 and 1 continue both members
    picks = re.findall(r"cycle (\d): \d+ of \d+ cheap-labelled frames go to .*?\((.*?), median (B|committee force "
                       r"deviation) ", log)
    assert picks and all(how == "committee deviation x distance" and what == "committee force deviation"
                         for _, how, what in picks), picks
    assert resume_campaign(run_dir, progress=False, echo=lambda s: None) == "3 cycles done"  # nothing to redo
    from ase.build import molecule

    import alloop

    version = [int(e["version"]) for e in entries if e["role"] == "committee"][-1]
    calc, newest = alloop.calculator(run_dir, version=version), alloop.calculator(run_dir)
    atoms = molecule("H2O")
    energies = [c.get_potential_energy(atoms) for c in (calc, newest)]  # both at the expensive fidelity's references
    assert calc.model_info["role"] == "committee" and abs(energies[0] - energies[1]) < 1.0, energies
    roles = [e["role"] for e in entries]
    assert roles.count("validated") + roles.count("rejected") == 1  # the final retrain: refit, or kept aside
    assert log.count("final refit: the same recipe on all") == roles.count("validated")
    if "validated" in roles:
        validated = alloop.calculator(run_dir, version=[int(e["version"]) for e in entries if e["role"] == "validated"][0])
        assert validated.model_info["role"] == "validated" and abs(validated.get_potential_energy(atoms)
                                                                    - energies[1]) < 1.0
