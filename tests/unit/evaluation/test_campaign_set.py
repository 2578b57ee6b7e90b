"""The evaluation set in the store: copy at start, hash checks on resume, scores per model, old stores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import molecule

from alloop.cli import main
from alloop.config import load_campaign
from alloop.errors import AlloopError
from alloop.evaluation import campaign as evaluation
from alloop.evaluation import records
from alloop.evaluation.metrics import evaluate_model
from alloop.io import attach_label, read_labelled, write_extxyz
from alloop.potentials.checkpoint import checkpoint_to_bytes
from alloop.potentials.registry import build_model
from alloop.report import write_report
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from alloop.training.data import FrameDataset
from alloop.training.references import apply_references

CAMPAIGN = """
name: unit
system: {structures: H2O}
fidelities: {cheap: hf-sto3g, expensive: {name: hf-631g, method: hf, basis: 6-31g}}
model: pair
evaluation: {structures: eval.extxyz}
"""
REFERENCES = {1: -13.0, 8: -2040.0}


def _write_set(path, shift_eV: float = 0.0) -> None:
    rng = np.random.default_rng(1)
    frames = []
    for k in range(4):
        atoms = molecule("H2O")
        atoms.positions += rng.normal(scale=0.05, size=(3, 3))
        frames.append(attach_label(atoms, -2066.0 + 0.01 * k + shift_eV, rng.normal(scale=0.5, size=(3, 3))))
    write_extxyz(path, frames)


def _model_blob(seed: int, expensive_hash: str) -> bytes:
    import torch

    torch.manual_seed(seed)
    model = build_model("pair", [1, 8], cutoff_A=4.0, n_rbf=8, dtype="float64")
    return checkpoint_to_bytes(model, {"energy_references": {expensive_hash: REFERENCES}})


def _expected(blob: bytes, path) -> dict[str, float]:
    """The scores computed directly: the model with the expensive references, on the file's frames; the tails from
    each frame's force MAE (mean |dF| over its atoms' components)."""
    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.potentials.inference import predict

    model, _ = model_from_bytes(blob)
    apply_references(model, REFERENCES)
    data = FrameDataset.from_atoms(read_labelled(path))
    metrics = evaluate_model(model, data)
    per_frame = np.abs(predict(model, data)[1] - data.forces).reshape(len(data), -1).mean(axis=1)  # H2O frames only
    tails = {"eval_force_mae_p95_eV_per_A": np.percentile(per_frame, 95), "eval_force_mae_max_eV_per_A": per_frame.max()}
    return {column: metrics[key] for column, key in records.COLUMNS.items()} | tails


@pytest.fixture
def setup(tmp_path):
    _write_set(tmp_path / "eval.extxyz")
    (tmp_path / "unit.yaml").write_text(CAMPAIGN)
    cfg = load_campaign(tmp_path / "unit.yaml")
    return cfg, store_path(tmp_path / "run"), tmp_path / "eval.extxyz"


def test_copy_score_and_hash_checks_on_resume(setup, capsys):
    cfg, path, eval_file = setup
    expensive = cfg.expensive_fidelity.hash()
    blob0, blob1 = _model_blob(0, expensive), _model_blob(1, expensive)
    logged: list[str] = []
    with CampaignStore.create(path, cfg.to_dict()) as store:
        store.add_checkpoint(blob0, {"cycle": -1}, role="model")  # a model committed before it was scored
        store.commit()
        frames = evaluation.prepare(store, cfg, logged.append)
        assert frames.n_frames == 4 and store.get_blob(records.BLOB) is not None
        assert frames.header["sha256"] == cfg.evaluation.sha256
        scores = records.model_scores(store)
        assert list(scores) == [0] and scores[0]["cycle"] == -1
        for column, value in _expected(blob0, eval_file).items():
            assert scores[0][column] == pytest.approx(value, rel=1e-12)
        assert scores[0]["eval_energy_mae_eV"] < 1.0  # the expensive references were applied (raw model: ~2066 eV off)
        # a cycles row reuses the recorded score; a new model is scored once; no model: NaN
        mae = "eval_force_mae_eV_per_A"
        assert evaluation.cycle_columns(store, 0, -1)[mae][0] == scores[0][mae]
        version = store.add_checkpoint(blob1, {"cycle": 0}, role="model")
        columns = evaluation.cycle_columns(store, version, 0, logged.append)
        assert columns[mae][0] == pytest.approx(_expected(blob1, eval_file)[mae], rel=1e-12)
        assert all(np.isnan(v[0]) for v in evaluation.cycle_columns(store, -1, 1).values())
        store.commit()
        assert store.table(records.TABLE)["model_version"].tolist() == [0, 1]
    assert any("copied into the store" in line for line in logged)
    assert sum("on the evaluation set" in line for line in logged) == 2

    # resume without the file: the store's copy is enough, nothing is scored twice
    eval_file.rename(eval_file.with_suffix(".moved"))
    with CampaignStore.open(path, "a") as store:
        assert evaluation.prepare(store, cfg, logged.append).n_frames == 4
        assert len(store.table(records.TABLE)["model_version"]) == 2
    # a changed file is refused, with the way out in the message
    _write_set(eval_file, shift_eV=0.5)
    with CampaignStore.open(path, "a") as store, pytest.raises(AlloopError, match="changed since the campaign started"):
        evaluation.prepare(store, cfg)
    eval_file.unlink()
    eval_file.with_suffix(".moved").rename(eval_file)

    assert main(["status", str(path), "--json"]) == 0
    part = json.loads(capsys.readouterr().out)["evaluation"]
    assert part["n_frames"] == 4 and [m["model_version"] for m in part["models"]] == [0, 1]
    assert part["models"][0]["eval_force_mae_eV_per_A"] == scores[0]["eval_force_mae_eV_per_A"]
    assert main(["status", str(path)]) == 0
    text = capsys.readouterr().out
    assert "evaluation   4 frames (12 atoms)" in text
    final = part["models"][1]  # the final model's tails, next to its mean
    for column, value in _expected(blob1, eval_file).items():
        assert final[column] == pytest.approx(value, rel=1e-12)
    p95, top = (final[c] for c in records.TAILS)
    assert (f"final model v1: force MAE {final[mae]:.4f} eV/A; per frame 95th percentile {p95:.4f} eV/A, "
            f"max {top:.4f} eV/A") in text


def test_no_copy_and_no_file_is_an_error(setup):
    cfg, path, eval_file = setup
    eval_file.unlink()
    with CampaignStore.create(path, cfg.to_dict()) as store:
        with pytest.raises(AlloopError, match="holds no copy of it yet"):
            evaluation.prepare(store, cfg)


def test_a_store_without_the_columns_still_reads_and_reports(setup, capsys):
    cfg, path, _ = setup
    with CampaignStore.create(path, cfg.to_dict()) as store:
        # a cycles table as written before the evaluation columns existed
        store.append_rows("cycles", cycle=np.array([-1, 0], np.int32), model_version=np.array([0, 1], np.int32),
                          md_frames=np.array([0, 8], np.int64), flag_rate=np.array([0.0, 0.5]),
                          labels_cheap=np.array([6, 10], np.int64), labels_expensive=np.array([4, 6], np.int64),
                          cpu_cheap_s=np.array([1.0, 2.0]), cpu_expensive_s=np.array([3.0, 5.0]),
                          val_force_mae_eV_per_A=np.array([0.3, 0.2]), val_energy_mae_eV=np.array([0.1, 0.1]),
                          train_seconds=np.array([1.0, 1.0]), time=np.array([0.0, 1.0]))
        store.commit()
        assert evaluation.cycle_columns(store, 2, 1) == {}  # appending to the old table keeps its columns
        rows = records.cycles_table(store)
        assert np.all(np.isnan(rows["eval_force_mae_eV_per_A"])) and rows["cycle"].tolist() == [-1, 0]
        files = write_report(store, path.parent / "report")
    assert (path.parent / "report" / "cost.png").stat().st_size > 1000
    summary = files[-1].read_text()
    assert "| eval F-MAE (eV/Å) |" in summary and "| 0.2000 | - | - | - | - |" in summary
    assert main(["status", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["evaluation"] is None


def test_an_evaluation_table_without_the_tails_reads_as_nan_and_keeps_its_columns(setup, capsys):
    cfg, path, _ = setup
    blob = _model_blob(0, cfg.expensive_fidelity.hash())
    with CampaignStore.create(path, cfg.to_dict()) as store:
        store.add_checkpoint(blob, {"cycle": -1}, role="model")
        store.commit()
        frames = evaluation.prepare(store, cfg, print)  # copies the set and scores v0 (tails recorded)
        old = store.table(records.TABLE)
        assert np.isfinite(old["eval_force_mae_max_eV_per_A"]).all()
    # the same store as written before the tails existed: its evaluation table without them
    with CampaignStore.create(path.parent / "old" / path.name, cfg.to_dict()) as store:
        store.put_blob(records.BLOB, frames.to_bytes())
        store.add_checkpoint(blob, {"cycle": -1}, role="model")
        store.append_rows(records.TABLE, **{k: v for k, v in old.items() if k not in records.TAILS})
        store.commit()
        assert all(np.isnan(records.model_scores(store)[0][c]) for c in records.TAILS)
        version = store.add_checkpoint(_model_blob(1, cfg.expensive_fidelity.hash()), {"cycle": 0}, role="model")
        evaluation.cycle_columns(store, version, 0)  # a new model scored into the old table: its columns kept
        store.commit()
        assert set(store.table(records.TABLE)) == set(old) - set(records.TAILS)
        assert records.model_scores(store)[1]["eval_force_mae_eV_per_A"] > 0
    assert main(["status", str(path.parent / "old" / path.name)]) == 0
    assert "per frame 95th percentile n/a, max n/a" in capsys.readouterr().out


def test_a_set_of_several_molecules_is_scored_per_molecule(setup):
    cfg, path, eval_file = setup
    rng = np.random.default_rng(2)
    frames = [attach_label(molecule(name), -2066.0 * len(molecule(name)) / 3, rng.normal(scale=0.5, size=(n, 3)))
              for name, n in (("H2O", 3), ("H2O2", 4), ("H2O", 3))]
    write_extxyz(eval_file, frames)
    cfg = load_campaign(eval_file.parent / "unit.yaml")
    blob = _model_blob(0, cfg.expensive_fidelity.hash())
    with CampaignStore.create(path, cfg.to_dict()) as store:
        store.add_checkpoint(blob, {"cycle": -1}, role="model")
        store.commit()
        evaluation.prepare(store, cfg, print)  # scores the unscored model: per molecule too
        split = records.molecule_scores(store)[0]
        whole = records.model_scores(store)[0]
    from alloop.evaluation.metrics import per_molecule_metrics
    from alloop.potentials.checkpoint import model_from_bytes

    model, _ = model_from_bytes(blob)
    apply_references(model, REFERENCES)
    expected = per_molecule_metrics(model, FrameDataset.from_atoms(read_labelled(eval_file)))
    assert list(split) == ["H2O", "H2O2"] and split["H2O"]["n_frames"] == 2 and split["H2O2"]["n_frames"] == 1
    for name, m in expected.items():
        assert split[name]["eval_force_mae_eV_per_A"] == pytest.approx(m["force_mae_eV_per_A"], rel=1e-12)
    mae = "eval_force_mae_eV_per_A"  # the parts make up the whole (atom-weighted)
    assert (6 * split["H2O"][mae] + 4 * split["H2O2"][mae]) / 10 == pytest.approx(whole[mae], rel=1e-12)
