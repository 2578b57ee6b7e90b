"""A campaign with a GFN2-xTB cheap level (tblite) and HF/STO-3G expensive labels: real LocalCluster, MD, store."""

from __future__ import annotations

import importlib.metadata
import json

import numpy as np
import pytest

from alloop.campaign.loop.runner import resume_campaign, start_campaign
from alloop.cli import main
from alloop.config import load_campaign
from alloop.fidelity import load_fidelity
from alloop.labeling.factory import labeler_for
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from harness.campaigns import check_invariants, write_tiny

NORMAL_MODES = "{method: normal-modes, n_samples: 6, n_expensive: 4}"


def test_xtb_cheap_campaign_end_to_end(tmp_path, capsys):
    """Normal-mode bootstrap from the xTB Hessian (finite differences on a worker), cheap labels from tblite,
    stored under the xTB hash with tblite's version, and the same numbers as the labeller called here. The
    expensive pick is the coverage rule: distances from the frames already expensive-labelled."""
    yaml = write_tiny(tmp_path, cycles=2, cheap="gfn2-xtb", expensive="hf-sto3g", bootstrap=NORMAL_MODES)
    text = yaml.read_text().replace("expensive_pick: bias}", "expensive_pick: coverage}")
    assert "expensive_pick: coverage}" in text
    yaml.write_text(text)
    run_dir = tmp_path / "run"
    assert start_campaign(load_campaign(yaml), run_dir, progress=False, echo=lambda s: None) == "2 cycles done"
    log = (run_dir / "campaign.log").read_text()
    assert "farthest point (coverage) from 4 labelled frames" in log  # cycle 0: the bootstrap's 4 expensive labels
    out = check_invariants(run_dir, 2, cheap_name="gfn2-xtb")
    gfn2, hf = load_fidelity("gfn2-xtb"), load_fidelity("hf-sto3g")
    assert out["models"] == 3 and out["n_failed"] == 0
    with CampaignStore.open(store_path(run_dir)) as store:
        assert set(store.fidelities()) == {gfn2.hash(), hf.hash()}
        assert store.label_provenance(gfn2.hash()) == {"tblite": importlib.metadata.version("tblite")}
        assert "pyscf" in store.label_provenance(hf.hash())
        cheap = store.labels(gfn2)
        assert len(cheap) >= 6 and np.all(cheap.cpu_seconds < 0.5)  # ~2 ms each; well under HF's cost
        frames = store.get_frames([int(i) for i in cheap.frame_id[:3]])
        expected = [labeler_for(gfn2).label(atoms) for atoms in frames]
        for row, result in enumerate(expected):
            assert abs(float(cheap.energy[row]) - result.energy_eV) < 1e-6
            assert np.abs(cheap.frame_forces(row) - result.forces_eV_per_A).max() < 1e-5
    said: list[str] = []
    assert resume_campaign(run_dir, progress=False, echo=said.append) == "2 cycles done"  # same tblite: accepted
    assert main(["status", str(run_dir), "--json"]) == 0
    labels = {f["name"]: f for f in json.loads(capsys.readouterr().out)["labels"]}
    assert labels["gfn2-xtb"]["by_status"]["ok"] == len(cheap)


def test_delta_campaign_trains_the_learned_part_on_labels_minus_the_baseline(tmp_path):
    """``model.baseline: gfn2-xtb``: every stored model is a Delta model whose recorded validation error is its
    error on the true labels of its validation frames (so the learned part was fitted to label - xTB), and MD ran
    with it. The bootstrap samples are frames of MD on the baseline's surface."""
    from alloop.evaluation.metrics import evaluate_model
    from alloop.potentials.baseline import DeltaPotential
    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.training.data import FrameDataset

    yaml = write_tiny(tmp_path, cycles=2, bootstrap="{method: md, n_samples: 6, n_expensive: 4, equilibration_fs: 20, "
                                                     "spacing_fs: 10}")
    text = yaml.read_text()
    assert "model: {architecture: pair, cutoff_A: 4.0, n_rbf: 8, baseline: null}" in text
    text = text.replace("n_rbf: 8, baseline: null}", "n_rbf: 8, baseline: gfn2-xtb}")
    assert "baseline: gfn2-xtb}" in text
    yaml.write_text(text)
    run_dir = tmp_path / "run"
    said: list[str] = []
    assert start_campaign(load_campaign(yaml), run_dir, progress=False, echo=said.append) == "2 cycles done"
    assert any("Delta learning: labels minus gfn2-xtb" in line for line in said)
    assert any("bootstrap: gfn2-xtb MD at 300 K from 1 structure(s)" in line for line in said), said
    check_invariants(run_dir, 2)
    expensive = load_campaign(yaml).fidelity("expensive")
    with CampaignStore.open(store_path(run_dir)) as store:
        models = [c for c in store.checkpoints() if c["role"] == "model"]
        assert len(models) == 3
        table = store.labels(expensive.hash())
        for entry in models:
            blob, meta = store.checkpoint(int(entry["version"]))
            model, _ = model_from_bytes(blob)
            assert isinstance(model, DeltaPotential) and model.baseline.fidelity.method == "gfn2-xtb"
            val_ids = meta["split"]["expensive"]["val"]
            rows = [int(np.flatnonzero(table.frame_id == i)[0]) for i in val_ids]
            frames = store.get_frames(val_ids)
            data = FrameDataset.from_arrays([a.numbers for a in frames], [a.positions for a in frames],
                                            table.energy[rows], [table.frame_forces(r) for r in rows])
            recorded = meta["metrics"]["force_mae_eV_per_A"]
            assert evaluate_model(model, data)["force_mae_eV_per_A"] == pytest.approx(recorded, rel=1e-4)
        assert store.table("cycles")["md_frames"][-1] > 0  # MD with the Delta model recorded frames
        timing = store.table("md_timing")  # one row per MD task: where its seconds went
        assert set(timing["cycle"]) == {0, 1} and np.all(timing["replica_steps"] > 0)
        assert np.all((0 < timing["baseline_seconds"]) & (timing["baseline_seconds"] < timing["model_seconds"]))
        assert np.all(timing["model_seconds"] + timing["scoring_seconds"] <= timing["seconds"])
    assert sum("(the baseline " in line and "replica steps in" in line for line in said) == 2, said
