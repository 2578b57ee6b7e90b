"""A campaign whose models predict their own force error: flags by a force-error target, the predicted errors of
its MD and of its evaluation set recorded and shown, a stop on the predicted error, and ``alloop evaluate``'s
keys. Real PySCF, LocalCluster, store."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from test_campaign_evaluation import write_evaluation_campaign

from alloop.campaign.loop.runner import start_campaign
from alloop.cli import main
from alloop.config import load_campaign
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from alloop.store.schema import FrameFlag

TARGET = 0.05  # eV/A, the flag limit


def test_a_campaign_flags_by_predicted_error_records_it_and_stops_on_it(tmp_path, capsys):
    yaml = write_evaluation_campaign(tmp_path, n_frames=6, cycles=3, max_expensive=24,
                                     bootstrap="{n_samples: 14, n_expensive: 12, amplitude_A: 0.05}")
    text = yaml.read_text()
    text = text.replace("uncertainty: {n_components: 2}",
                        f"uncertainty: {{n_components: 2, max_force_error_eV_per_A: {TARGET}}}")
    text = text.replace("final_refit: false, max_epochs: 4,", "final_refit: false, validation_fraction: 0.5, max_epochs: 4,")
    text = text.replace("expensive_pick: bias}", "expensive_pick: bias, memory: true}")
    assert "validation_fraction: 0.5" in text and "memory: true}" in text
    text = text.replace("  n_cycles: 3\n", "  n_cycles: 3\n  target_predicted_force_error_eV_per_A: 100.0\n")
    yaml.write_text(text)
    run_dir = tmp_path / "run"
    lines: list[str] = []
    reason = start_campaign(load_campaign(yaml), run_dir, progress=False, echo=lines.append)
    assert "predicted force error of the cycle's MD" in reason  # the target is far above any prediction
    with CampaignStore.open(store_path(run_dir)) as store:
        md, ev = tables.read(store, tables.MD_PREDICTED), tables.read(store, tables.EVAL_PREDICTED)
        flags = store.frame_meta(md["frame_id"])["flags"]
        selection = tables.read(store, tables.SELECTION)
    assert set(md["cycle"].tolist()) == {0}  # stopped after cycle 0
    assert np.all(md["upper_force_error_eV_per_A"] > md["predicted_force_error_eV_per_A"])
    flagged = (flags & int(FrameFlag.FLAGGED)) > 0
    np.testing.assert_array_equal(flagged, md["upper_force_error_eV_per_A"] > TARGET)
    assert len(ev["model_version"]) == 2  # the bootstrap model and cycle 0's
    cheap = [r for r, role in zip(selection["reason"], selection["role"], strict=True) if role == "cheap"]
    assert any("nearest labelled or chosen" in r for r in cheap)  # selection.memory: distances from the labelled
    assert any(re.search(r"error model: calibrated on [5-9] held-out frames", line) for line in lines)

    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "predicted force errors (eV/A)" in out
    assert main(["report", str(run_dir)]) == 0
    capsys.readouterr()
    assert (run_dir / "report" / "predicted.png").stat().st_size > 0  # predicted against measured error
    assert main(["evaluate", str(run_dir), str(tmp_path / "water_eval.extxyz"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["predicted_force_mae_eV_per_A"] == pytest.approx(float(ev["predicted_force_mae_eV_per_A"][-1]))
    assert -1.0 <= got["error_spearman"] <= 1.0 and 0.0 <= got["bound_coverage"] <= 1.0
    calibrated = [re.search(r"calibrated on (\d+) held-out frames.*ensemble kept \((\d+) K\)", line) for line in lines]
    n, temperature = (int(g) for g in [m for m in calibrated if m][-1].groups())
    # at the calibration frames' own temperature every weight is one: the effective sample size is their number
    assert main(["evaluate", str(run_dir), str(tmp_path / "water_eval.extxyz"), "--json",
                 "--temperature", str(temperature)]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["calibration_temperature_K"] == temperature and same["shifted_effective_sample_size"] == n
    assert main(["evaluate", str(run_dir), str(tmp_path / "water_eval.extxyz"), "--temperature", "900"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"declared at 900 K .*calibration frames: \d+ K, Boltzmann-weighted, effective sample size "
                     r"[\d.]+\): \d+ % of frames below the weighted bound", out)


def test_the_expensive_pick_without_theta0_ranks_by_the_models_own_predicted_error(tmp_path):
    yaml = write_evaluation_campaign(tmp_path, n_frames=2, cycles=1, max_expensive=20, min_cheap=4,
                                     bootstrap="{n_samples: 14, n_expensive: 12, amplitude_A: 0.05}")
    text = yaml.read_text().replace("training: {method: asteroid, final_refit: false, max_epochs: 4,",
                                    "training: {method: standard, final_refit: false, validation_fraction: 0.5, "
                                    "max_epochs: 4,")
    text = text.replace("expensive_pick: bias}", "energy_window_sigma: null, expensive_pick: predicted-error}")
    assert "method: standard" in text and "expensive_pick: predicted-error}" in text
    yaml.write_text(text)
    lines: list[str] = []
    start_campaign(load_campaign(yaml), tmp_path / "run", progress=False, echo=lines.append)
    with CampaignStore.open(store_path(tmp_path / "run")) as store:
        assert not [c for c in store.checkpoints() if c["role"] == "theta0"]  # standard training: no stage 1
        rows = tables.read(store, tables.SELECTION)
    reasons = [r for r, role, cycle in zip(rows["reason"], rows["role"], rows["cycle"], strict=True)
               if role == "expensive" and cycle == 0]
    assert reasons and all("predicted force error" in r for r in reasons)
    assert any("median predicted force error" in line for line in lines)


def _one_cycle_campaign(tmp_path, training: str) -> list[str]:
    """The log lines of a one-cycle evaluation campaign whose training section says ``training`` (its keys before
    ``max_epochs``) instead of ``final_refit: false``."""
    yaml = write_evaluation_campaign(tmp_path, n_frames=2, cycles=1, max_expensive=14,
                                     bootstrap="{n_samples: 14, n_expensive: 12, amplitude_A: 0.05}")
    text = yaml.read_text().replace("final_refit: false, max_epochs: 4,", f"{training}, max_epochs: 4,")
    assert training in text
    yaml.write_text(text)
    lines: list[str] = []
    start_campaign(load_campaign(yaml), tmp_path / "run", progress=False, echo=lines.append)
    return lines


def test_calibration_folds_reach_the_final_training_of_a_campaign(tmp_path):
    """training.calibration_folds: 2 from the campaign file to the final cycle's training: its refit's error model
    is calibrated on the frames of both folds (each under its fold's model)."""
    lines = _one_cycle_campaign(tmp_path, "final_refit: true, calibration_folds: 2, validation_fraction: 0.4")
    assert any("calibration fold 1 on" in line for line in lines)
    found = [re.search(r"calibrated on (\d+) held-out frames of 2 cross-validation folds", line) for line in lines]
    assert any(found) and int([m for m in found if m][-1].group(1)) >= 10


def test_a_fixed_exponent_reaches_every_trainings_error_model(tmp_path):
    """training.error_exponent: 1 from the campaign file to its trainings: each error model predicts a x
    distance^1, only the scale fitted, and the checkpoint's error model says so."""
    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.uncertainty.error_model import ErrorModel

    lines = _one_cycle_campaign(tmp_path, "final_refit: false, error_exponent: 1, validation_fraction: 0.4")
    calibrated = [line for line in lines if "error model: calibrated on" in line]
    assert calibrated and all("distance^1.00 (fixed)" in line for line in calibrated), calibrated
    with CampaignStore.open(store_path(tmp_path / "run")) as store:
        _, metadata = model_from_bytes(store.checkpoint(-1, role="model")[0])
    error_model = ErrorModel.from_metadata(metadata)
    assert error_model is not None and error_model.calibration is not None
    assert error_model.calibration.exponent == 1.0
