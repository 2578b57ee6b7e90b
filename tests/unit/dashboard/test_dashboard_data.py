"""What the dashboard shows, computed from a real store (no browser): every panel, the budget left, the page's
Bokeh models, and the watcher that re-reads the store only after a new commit, writing nothing."""

from __future__ import annotations

import pytest
from dashboard_store import store_files, write_store

from alloop.dashboard.data import read_snapshot
from alloop.dashboard.page import Page
from alloop.dashboard.server import StoreWatcher
from alloop.store import CampaignStore, find_store, tables


@pytest.fixture
def run_dir(tmp_path):
    return write_store(tmp_path)


def _snapshot(path):
    with CampaignStore.open(find_store(path), "r") as store:
        return read_snapshot(store)


def test_every_panel_from_a_store(run_dir):
    snap = _snapshot(run_dir)
    assert snap["name"] == "tiny" and snap["state"] == "running or stopped"
    assert snap["commit"]["seq"] == 1 and snap["commit"]["cycle"] == 0 and snap["commit"]["phase"] == "explored"
    # one point per model: cumulative CPU s of both fidelities; v1's evaluation-set MAE from the evaluation table
    assert snap["learning"] == {"cycle": [-1, 0], "model_version": [0, 1], "cpu_s": [23.0, 27.5],
                                "val_force_mae_eV_per_A": [0.5, 0.3], "eval_force_mae_eV_per_A": [0.4, 0.25]}
    assert snap["predicted"]["cycle"] == [0]
    assert snap["predicted"]["md_predicted_eV_per_A"] == [pytest.approx(0.25)]
    assert snap["predicted"]["eval_predicted_eV_per_A"] == [0.3]
    assert snap["predicted"]["eval_measured_eV_per_A"] == [0.25]
    assert snap["coverage"] == {"cycle": [-1, 0], "model_version": [0, 1], "covered_fraction": [0.5, 0.75],
                                "median_q": [1.2, 0.8]}
    assert snap["flags"] == {"cycle": [0], "md_frames": [4], "flag_rate": [0.5]}  # the bootstrap runs no MD
    assert snap["labels"] == {"cycle": [-1, 0, -1], "fidelity": ["hf-sto3g (cheap)"] * 2 + ["hf-631g (expensive)"],
                              "index": [0, 0, 1], "ok": [3, 2, 2], "failed": [0, 1, 0]}
    assert snap["timeline"] == {"cycle": [-1, -1, -1, 0], "phase": ["sampled", "labelled", "trained", "explored"],
                                "start": [100.0, 100.0, 110.0, 130.0], "end": [100.0, 110.0, 130.0, 160.0],
                                "seconds": [0.0, 10.0, 20.0, 30.0]}


def test_budget_left_and_targets(run_dir):
    budget = _snapshot(run_dir)["budget"]
    limits = {row["item"]: row for row in budget["limits"]}
    assert limits["cycles"] == {"item": "cycles", "spent": 1.0, "limit": 2.0, "left": 1.0, "in_flight": None}
    cpu = limits["labelling CPU s (both fidelities)"]
    assert (cpu["spent"], cpu["limit"], cpu["left"]) == (pytest.approx(27.5), 100.0, pytest.approx(72.5))
    cheap, expensive = limits["cheap labels (hf-sto3g)"], limits["expensive labels (hf-631g)"]
    assert (cheap["spent"], cheap["limit"], cheap["left"], cheap["in_flight"]) == (6, 100, 94, 0)  # failure counted
    assert (expensive["spent"], expensive["limit"], expensive["left"], expensive["in_flight"]) == (2, 30, 28, 1)
    targets = {t["item"].split(",")[0]: t for t in budget["targets"]}
    assert targets["flag rate"]["latest"] == 0.5 and targets["flag rate"]["target"] == 0.05
    validation = targets["validation force MAE (eV/A)"]
    assert validation["latest"] == 0.3 and validation["target"] is None
    assert targets["predicted force error of the MD (eV/A)"]["latest"] == pytest.approx(0.25)


def test_a_store_without_a_campaign_config(tmp_path):
    """A store made by ``alloop import`` (or just created): empty panels, no budget, and a page that says so."""
    CampaignStore.create(tmp_path / "store.zarr").close()
    snap = _snapshot(tmp_path)
    assert snap["name"] is None and snap["budget"] is None and snap["commit"]["seq"] == 0
    assert all(not any(snap[panel].values()) for panel in
               ("learning", "predicted", "coverage", "flags", "labels", "timeline"))
    page = Page(snap)
    assert "no campaign config" in page.budget.text and "commit #0" in page.status.text
    assert page.figures["labels"].title.text.endswith("(no labels yet)")


def test_the_page_shows_the_snapshot(run_dir):
    snap = _snapshot(run_dir)
    page = Page(snap)
    assert "commit #1" in page.status.text and "<b class='cycle'>cycle 0</b>" in page.status.text
    assert "phase explored" in page.status.text
    labels = page.sources["labels"].data
    assert labels["x"] == [-1.2, -0.2, -0.8] and labels["total"] == [3, 3, 2]  # two fidelities side by side
    assert page.sources["timeline"].data["right_min"] == [0.0, 10 / 60, 0.5, 1.0]
    assert page.sources["coverage"].data["covered_percent"] == [50.0, 75.0]
    assert page.figures["predicted"].title.text == "predicted vs measured force error"  # not empty
    for row in ("cycles", "labelling CPU s (both fidelities)", "cheap labels (hf-sto3g)", "72.5", "0.0500"):
        assert row in page.budget.text
    assert page.seq == 1


def test_the_watcher_reads_again_only_after_a_commit_and_writes_nothing(run_dir):
    path = find_store(run_dir)
    before = store_files(path)
    watcher = StoreWatcher(path)
    first = watcher.snapshot
    assert watcher.refresh() is first  # no new commit: nothing read again
    assert store_files(path) == before  # read-only: no lock file, nothing touched
    with CampaignStore.open(path, "a") as store:  # the loop's next commit: cycle 0 trained
        tables.append(store, tables.PROGRESS, cycle=[0], phase=["trained"], time=[200.0])
        store.commit(cycle=0, phase="trained")
    newer = watcher.refresh()
    assert newer is not first and newer["commit"]["seq"] == 2 and newer["commit"]["phase"] == "trained"
    assert newer["timeline"]["seconds"][-1] == 40.0
    assert watcher.refresh() is newer


def test_a_session_keeps_its_page_when_the_store_cannot_be_read_and_recovers(run_dir):
    """A session's refresh: a damaged commit record keeps the last page with the reason; readable again, the
    reason goes; after a new commit, the page shows it."""
    from bokeh.document import Document

    from alloop.dashboard.server import session

    path = find_store(run_dir)
    doc = Document()
    session(StoreWatcher(path), 0.5)(doc)
    (callback,) = doc.callbacks.session_callbacks
    status = doc.get_model_by_name("status")
    assert "commit #1" in status.text and doc.title == "alloop dashboard: tiny"
    record = (path / "zarr.json").read_bytes()
    (path / "zarr.json").write_bytes(record[:20])  # a damaged commit record (as a user's mistake could leave it)
    callback.callback()
    assert "could not read the store now (StoreError: the commit record" in status.text and "commit #1" in status.text
    (path / "zarr.json").write_bytes(record)
    callback.callback()  # readable again, no new commit: the reason goes
    assert "commit #1" in status.text and "could not" not in status.text
    with CampaignStore.open(path, "a") as store:
        tables.append(store, tables.PROGRESS, cycle=[0], phase=["labelled-cheap"], time=[170.0])
        store.commit(cycle=0, phase="labelled-cheap")
    callback.callback()
    assert "commit #2" in status.text and "phase labelled-cheap" in status.text and "could not" not in status.text
    assert doc.get_model_by_name("timeline").data["phase"][-1] == "labelled-cheap"
