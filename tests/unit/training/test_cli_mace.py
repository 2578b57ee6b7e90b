"""``alloop train --model mace --init FILE.model`` end to end, and ``alloop export --format mace`` read back by
mace's own calculator; a tiny random MACE file (mace.modules constructors, torch.save), tiny water files.
Marked ``mace``: skipped where mace-torch is not installed."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from training_synthetic import label_frames, perturbed, truth_potential

from alloop import calculator
from alloop.cli import main
from alloop.config.training import PRETRAINED_DEFAULTS
from alloop.io import write_extxyz
from alloop.potentials.checkpoint import load_checkpoint

pytestmark = pytest.mark.mace

REFS = {1: -13.1, 8: -2041.7}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from harness.mace_models import write_mace_file

    d = tmp_path_factory.mktemp("water-mace")
    write_extxyz(d / "exp.extxyz", label_frames(perturbed(["H2O"], 6, seed=0), truth_potential(), REFS))
    write_extxyz(d / "cheap.extxyz", label_frames(perturbed(["H2O"], 6, seed=1), truth_potential(scale=2.3),
                                                  {1: -10.0, 8: -2000.0}))
    write_mace_file(d / "tiny.model", elements=[1, 6, 8], seed=11)
    return d


def _train(files, out, *extra):
    return main(["train", "--expensive", str(files / "exp.extxyz"), "--model", "mace", "--init",
                 str(files / "tiny.model"), "--val-fraction", "0.34", "--quiet", "-o", str(out), *extra])


def _mace_forces(path, atoms):
    from mace.calculators import MACECalculator

    atoms = atoms.copy()
    atoms.calc = MACECalculator(model_paths=str(path), device="cpu", default_dtype="float64")
    return atoms.get_potential_energy(), atoms.get_forces()


def test_asteroid_fine_tunes_the_file_and_the_export_equals_maces_calculator(files, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert _train(files, out, "--cheap", str(files / "cheap.extxyz"), "--method", "asteroid", "--steps", "3",
                  "--finetune-steps", "2") == 0
    model, meta = load_checkpoint(out)
    original, _ = load_checkpoint(files / "tiny.model")
    assert type(model).__name__ == "MACEPotential" and model.hyperparameters()["pretrained"]
    assert meta["settings"]["stage3"]["batch_size"] == PRETRAINED_DEFAULTS["batch_size"]  # a pretrained start
    changed = [n for n, p in original.named_parameters() if not torch.equal(p, dict(model.named_parameters())[n])]
    assert changed  # the file's weights were fine-tuned
    assert model.atomic_energies[8] != 0 and model.atomic_energies[1] != 0  # references refitted to the labels
    exported = tmp_path / "fine.model"
    assert main(["export", str(out), "--model", "--format", "mace", "-o", str(exported)]) == 0
    water = molecule("H2O")
    water.rattle(0.05, seed=4)
    energy, forces = _mace_forces(exported, water)
    water.calc = calculator(out)
    assert abs(energy - water.get_potential_energy()) < 1e-6
    assert np.abs(forces - water.get_forces()).max() < 1e-6
    assert abs(energy - sum(REFS[z] for z in water.numbers)) < 5.0  # on the labels' reference, not the file's E0s


def test_standard_training_with_replay(files, tmp_path, capsys):
    out = tmp_path / "replay.safetensors"
    assert _train(files, out, "--method", "standard", "--steps", "2", "--replay-fraction", "0.5") == 0
    _, meta = load_checkpoint(out)
    assert meta["sources"]["replay_frames"] > 0 and meta["sources"]["init"].endswith("tiny.model")


def test_a_delta_mace_trains_and_its_mace_export_is_refused_with_the_reason(files, tmp_path, capsys):
    out = tmp_path / "delta.safetensors"
    assert _train(files, out, "--method", "standard", "--steps", "2", "--baseline", "gfn2-xtb") == 0
    model, _ = load_checkpoint(out)
    assert type(model).__name__ == "DeltaPotential" and type(model.inner).__name__ == "MACEPotential"
    capsys.readouterr()
    assert main(["export", str(out), "--model", "--format", "mace", "-o", str(tmp_path / "d.model")]) != 0
    err = capsys.readouterr().err.strip()
    assert "Delta model" in err and "no baseline to add back" in err and "--format alloop" in err
    assert not (tmp_path / "d.model").exists()


def test_mace_needs_its_file(files, tmp_path, capsys):
    assert main(["train", "--expensive", str(files / "exp.extxyz"), "--model", "mace", "--method", "standard",
                 "-o", str(tmp_path / "x.safetensors")]) != 0
    assert "--model mace needs --init FILE" in capsys.readouterr().err


def test_evaluate_json_of_a_mace_model_is_clean_json_on_stdout(files):
    """mace prints a notice to stdout at import when cuEquivariance is missing; a fresh process (the notice is
    printed once per process) must still give ``alloop evaluate --json`` output that parses."""
    import json
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "alloop", "evaluate", str(files / "tiny.model"),
                          str(files / "exp.extxyz"), "--json"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report and "cuequivariance" not in run.stdout.lower()
