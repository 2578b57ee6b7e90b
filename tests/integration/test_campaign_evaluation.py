"""A campaign with a fixed evaluation set: real PySCF labels, real LocalCluster, real store, real resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule

from alloop.campaign.loop.runner import resume_campaign, start_campaign
from alloop.cli import main
from alloop.config import load_campaign
from alloop.evaluation import records
from alloop.io import attach_label, write_extxyz
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.potentials.checkpoint import model_from_bytes, save_checkpoint
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from harness.campaigns import check_invariants, write_tiny


def write_evaluation_campaign(folder: Path, n_frames: int = 4, **tiny: object) -> Path:
    """The tiny water campaign plus ``evaluation:``: rattled water labelled at its expensive fidelity (HF/6-31G)."""
    yaml = write_tiny(folder, **{"cycles": 1, **tiny})  # type: ignore[arg-type]
    labeler = PySCFLabeler(load_campaign(yaml).expensive_fidelity)
    rng = np.random.default_rng(7)
    frames = []
    for _ in range(n_frames):
        atoms = molecule("H2O")
        atoms.positions += rng.normal(scale=0.04, size=atoms.positions.shape)
        result = labeler.label(atoms)
        assert result.ok
        frames.append(attach_label(atoms, result.energy_eV, result.forces_eV_per_A))
    write_extxyz(folder / "water_eval.extxyz", frames)
    yaml.write_text(yaml.read_text().replace("evaluation: null", "evaluation: {structures: water_eval.extxyz}"))
    return yaml


def _nan_columns(store, version, cycle, log=None, computed=None):
    return {c: np.array([np.nan]) for c in records.COLUMNS}


def _stop(*args, **kwargs):
    raise RuntimeError("stopped after the bootstrap model was committed (test)")


def _no_model_in_the_driver(*args, **kwargs):
    raise AssertionError("the driver loaded a model")


@pytest.mark.parametrize("mode", ["synchronous", "asynchronous"])
def test_the_driver_never_loads_a_model(tmp_path, monkeypatch, mode):
    """Bias B, the descriptors of the expensive pick and the evaluation scores are computed by tasks on the workers
    (the driver's CPU is orchestration)."""
    yaml = write_evaluation_campaign(tmp_path, cycles=2, mode=mode, min_cheap=2)
    monkeypatch.setattr("alloop.potentials.checkpoint.model_from_bytes", _no_model_in_the_driver)
    lines: list[str] = []
    assert start_campaign(load_campaign(yaml), tmp_path / "run", progress=False, echo=lines.append) == "2 cycles done"
    check_invariants(tmp_path / "run", 2)
    with CampaignStore.open(store_path(tmp_path / "run")) as store:
        models = [int(c["version"]) for c in store.checkpoints() if c["role"] == "model"]
        scores = records.model_scores(store)
        chosen = tables.read(store, tables.SELECTION)
        coverage = tables.read(store, tables.EVAL_COVERAGE)
    assert sorted(scores) == models and len(models) == 3
    # the evaluation set's Q-residual coverage, computed by the training task for every model
    assert sorted(coverage["model_version"].tolist()) == models
    assert np.all((coverage["covered_fraction"] >= 0) & (coverage["covered_fraction"] <= 1))
    assert np.all(coverage["median_q"] > 0)
    assert sum("of the evaluation set within the Q-residual limit" in line for line in lines) == 3
    assert all(np.isfinite(s["eval_force_mae_eV_per_A"]) for s in scores.values())
    assert (np.asarray(chosen["role"]) == "expensive").sum() >= 1  # the bias B routed frames to the expensive fidelity
    assert sum("bias-weighted farthest point" in line for line in lines) == 2  # descriptors from the bias task


def _evaluate_cli(capsys, model: str, data: Path) -> dict:
    assert main(["evaluate", model, str(data), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_model_is_scored_resumably_and_reported(tmp_path, capsys, monkeypatch):
    yaml = write_evaluation_campaign(tmp_path)
    data = tmp_path / "water_eval.extxyz"
    run_dir = tmp_path / "run"
    # 1. the bootstrap model is committed but never scored (as if the driver had died right after the
    #    model's commit), then the campaign stops before cycle 0 explores
    monkeypatch.setattr("alloop.campaign.phases.cycle_record.cycle_columns", _nan_columns)
    monkeypatch.setattr("alloop.campaign.loop.driver.explore", _stop)
    with pytest.raises(RuntimeError, match="stopped after the bootstrap"):
        start_campaign(load_campaign(yaml), run_dir, progress=False, echo=lambda s: None)
    with CampaignStore.open(store_path(run_dir)) as store:
        assert store.get_blob(records.BLOB) is not None  # copied at the start
        assert [c["role"] for c in store.checkpoints()].count("model") == 1
        assert records.model_scores(store) == {}
    monkeypatch.undo()

    # 2. resume: the unscored model is scored first, the new one when its cycles row is written
    lines: list[str] = []
    assert resume_campaign(run_dir, progress=False, echo=lines.append) == "1 cycles done"
    check_invariants(run_dir, 1)
    with CampaignStore.open(store_path(run_dir)) as store:
        models = [int(c["version"]) for c in store.checkpoints() if c["role"] == "model"]
        scores = records.model_scores(store)
        raw = store.table("cycles")
        rows = records.cycles_table(store)
        blobs = {v: store.checkpoint(v)[0] for v in models}
        newest_role = store.checkpoints()[-1]["role"]
    assert sorted(scores) == models and len(models) == 2
    assert np.isnan(raw["eval_force_mae_eV_per_A"][0]) and np.isfinite(raw["eval_force_mae_eV_per_A"][1])
    assert rows["model_version"].tolist() == models
    assert sum("on the evaluation set (4 frames)" in line for line in lines) == 2

    # the recorded scores are `alloop evaluate`'s numbers for the same model and file
    for k, version in enumerate(models):
        checkpoint = save_checkpoint(model_from_bytes(blobs[version])[0], tmp_path / f"v{version}.ckpt")
        got = _evaluate_cli(capsys, str(checkpoint), data)
        for column, key in records.COLUMNS.items():
            assert rows[column][k] == pytest.approx(got[key], rel=1e-9, abs=1e-12), (version, column)
    if newest_role == "model":  # `alloop evaluate RUN_DIR` takes the newest checkpoint
        newest = _evaluate_cli(capsys, str(run_dir), data)
        assert raw["eval_force_mae_eV_per_A"][1] == pytest.approx(newest["force_mae_eV_per_A"], rel=1e-9)

    # status (JSON and text) shows them per model
    assert main(["status", str(run_dir), "--json"]) == 0
    part = json.loads(capsys.readouterr().out)["evaluation"]
    assert [m["model_version"] for m in part["models"]] == models and [m["cycle"] for m in part["models"]] == [-1, 0]
    assert part["models"][1]["eval_energy_mae_eV"] == pytest.approx(rows["eval_energy_mae_eV"][1])
    # coverage: recorded by the training tasks with their models (the monkeypatch above only held back the scores)
    assert all(0 <= m["covered_fraction"] <= 1 and m["median_q"] > 0 for m in part["models"])
    assert main(["status", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "evaluation   4 frames (12 atoms)" in text and "bootstrap" in text and "Q <= limit" in text
    for m in part["models"]:  # each model's row ends with its covered share and median Q
        row = next(line for line in text.splitlines() if line.strip().startswith(f"v{m['model_version']} "))
        assert row.split()[-3:] == [f"{100 * m['covered_fraction']:.0f}", "%", f"{m['median_q']:.2f}"]
    assert "conformer basin" not in text  # water has no rotatable bond

    # the report renders them
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report" / "cost.png").stat().st_size > 1000
    assert (run_dir / "report" / "coverage.png").stat().st_size > 1000
    summary = (run_dir / "report" / "summary.md").read_text()
    assert "evaluation set: 4 frames" in summary
    assert f"| {rows['eval_force_mae_eV_per_A'][0]:.4f} |" in summary  # filled from the evaluation table
    assert f"| {100 * part['models'][1]['covered_fraction']:.0f} % |" in summary  # eval Q <= limit, the last column
