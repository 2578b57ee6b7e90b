"""``evaluation: {auto: N}``: the tiny water campaign makes its own test set (GFN2-xTB MD, HF/6-31G labels), keeps
it out of training, selection and the label limits, scores every model on it, and never redraws nor relabels it on
resume. Real tblite MD, real PySCF labels, real LocalCluster, real store."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alloop.campaign.loop.runner import resume_campaign, start_campaign
from alloop.campaign.phases.stop_rules import N_LABELS_KEY
from alloop.campaign.phases.train import labelled_arrays
from alloop.cli import main
from alloop.config import load_campaign
from alloop.evaluation import records
from alloop.evaluation.frames import EvaluationFrames
from alloop.store import ledger
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from alloop.store.schema import ORIGIN_CODES
from harness.campaigns import write_tiny

AUTO = "{auto: 4, level: gfn2-xtb, equilibration_fs: 20, spacing_fs: 10}"


def _stop(*args, **kwargs):
    raise RuntimeError("stopped after the bootstrap model was committed (test)")


def _held_out_state(store: CampaignStore, expensive) -> tuple[np.ndarray, int, bytes]:
    """The evaluation frames' ids, the expensive label rows on them, the stored set's bytes."""
    meta = store.frame_meta(columns=["origin"])
    ids = meta["frame_id"][meta["origin"] == ORIGIN_CODES["evaluation"]]
    table = store.label_columns(expensive.hash(), ["frame_id"])
    blob = store.get_blob(records.BLOB)
    assert blob is not None
    return ids, int(np.isin(table["frame_id"], ids).sum()), blob


def test_the_campaign_makes_its_test_set_once_and_keeps_it_apart(tmp_path, capsys, monkeypatch):
    # bootstrap: 4 expensive labels; cycle 0: up to 2 more; the limit is 6, so the set's 4 must not count
    yaml = write_tiny(tmp_path, cycles=1, max_expensive=6, min_cheap=4, evaluation=AUTO)
    cfg = load_campaign(yaml)
    expensive = cfg.expensive_fidelity
    run_dir = tmp_path / "run"
    # 1. the set is made before the bootstrap; stop before cycle 0 explores
    monkeypatch.setattr("alloop.campaign.loop.driver.explore", _stop)
    first: list[str] = []
    with pytest.raises(RuntimeError, match="stopped after the bootstrap"):
        start_campaign(cfg, run_dir, progress=False, echo=first.append)
    monkeypatch.undo()
    assert sum("independent gfn2-xtb MD run(s)" in line for line in first) == 1
    with CampaignStore.open(store_path(run_dir)) as store:
        ids, n_labels, blob = _held_out_state(store, expensive)
        assert ids.size == 4 and n_labels == 4
        assert np.array_equal(ledger.held_out_ids(store), ids)
        frames = EvaluationFrames.from_bytes(blob)
        assert frames.n_frames == 4 and frames.header["source"] == "auto"
        assert frames.header["temperature_K"] == 300 and frames.header["surface"] == "gfn2-xtb"
        # out of the training data, the budget and the label counts a model records
        assert not np.isin(labelled_arrays(store, expensive).frame_ids, ids).any()
        assert ledger.spend(store, {"expensive": expensive}).labels["expensive"] == 4  # the bootstrap's
        assert ledger.spend(store, {"expensive": expensive}, held_out=True).labels["expensive"] == 4
        assert store.checkpoint(-1, role="model")[1][N_LABELS_KEY]["expensive"] == 4
        assert set(records.model_scores(store)) == {int(store.checkpoints()[-1]["version"])}

    # 2. resume: no new MD, no new label of the set, the same set; cycle 0 still gets expensive labels
    lines: list[str] = []
    assert resume_campaign(run_dir, progress=False, echo=lines.append) == "1 cycles done"
    assert not any("MD run(s)" in line for line in lines)
    with CampaignStore.open(store_path(run_dir)) as store:
        again = _held_out_state(store, expensive)
        assert np.array_equal(again[0], ids) and again[1] == 4 and again[2] == blob
        picked = ledger.selected(store, "expensive", 0).size  # 0 if the set's 4 labels counted against the 6
        assert picked >= 1 and ledger.spend(store, {"expensive": expensive}).labels["expensive"] == 4 + picked
        assert not np.isin(ledger.selected(store, "cheap"), ids).any()  # never in a selection pool
        assert not np.isin(labelled_arrays(store, expensive).frame_ids, ids).any()
        models = [int(c["version"]) for c in store.checkpoints() if c["role"] == "model"]
        assert sorted(records.model_scores(store)) == models and len(models) == 2

    # 3. status says what the set is and what its labels cost, apart from the budget
    assert main(["status", str(run_dir), "--json"]) == 0
    part = json.loads(capsys.readouterr().out)["evaluation"]
    assert part["auto"]["n_runs"] == 1 and part["auto"]["labels"]["hf-631g"]["labels"] == 4
    assert main(["status", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "made by alloop: Langevin MD on gfn2-xtb at 300 K" in text
    assert "its labels (not in the campaign's budget): 4 hf-631g labels" in text
