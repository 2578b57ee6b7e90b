"""``alloop train --model so3lr``: the pretrained SO3LR of the so3krates-torch wheel fine-tuned with alloop's recipe
(standard, ASTEROID, replay, a Delta model on GFN2-xTB) on tiny water files. Marked ``so3lr``: skipped where
so3krates-torch is not installed."""

import pytest
import torch
from training_synthetic import label_frames, perturbed, truth_potential

from alloop.cli import main
from alloop.config.training import PRETRAINED_DEFAULTS
from alloop.io import write_extxyz
from alloop.potentials.checkpoint import load_checkpoint
from alloop.potentials.registry import build_model, model_preset

pytestmark = pytest.mark.so3lr

REFS = {1: -13.1, 8: -2041.7}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("water-so3lr")
    write_extxyz(d / "exp.extxyz", label_frames(perturbed(["H2O"], 6, seed=0), truth_potential(), REFS))
    write_extxyz(d / "cheap.extxyz", label_frames(perturbed(["H2O"], 6, seed=1), truth_potential(scale=2.3),
                                                  {1: -10.0, 8: -2000.0}))
    return d


def _train(files, out, *extra):
    return main(["train", "--expensive", str(files / "exp.extxyz"), "--model", "so3lr", "--val-fraction", "0.34",
                 "--quiet", "-o", str(out), *extra])


def _changed(model) -> list[str]:
    """The parameters of ``model`` that differ from the packaged SO3LR's."""
    original = dict(build_model(elements=list(model.elements), **model_preset("so3lr")).named_parameters())
    return [n for n, p in model.named_parameters() if not torch.equal(p, original[n])]


def test_asteroid_fine_tunes_so3lr_with_the_pretrained_recipe(files, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert _train(files, out, "--cheap", str(files / "cheap.extxyz"), "--method", "asteroid", "--steps", "3",
                  "--finetune-steps", "2") == 0
    model, meta = load_checkpoint(out)
    assert type(model).__name__ == "SO3LRPotential" and model.hyperparameters()["base"] == "so3lr"
    assert meta["settings"]["stage3"]["batch_size"] == PRETRAINED_DEFAULTS["batch_size"]  # a pretrained start
    assert _changed(model)  # SO3LR's weights were fine-tuned
    assert model.atomic_energies[8] != 0 and model.atomic_energies[1] != 0  # references refitted to the labels


def test_standard_training_with_replay(files, tmp_path, capsys):
    out = tmp_path / "replay.safetensors"
    assert _train(files, out, "--method", "standard", "--steps", "2", "--replay-fraction", "0.5") == 0
    model, meta = load_checkpoint(out)
    assert type(model).__name__ == "SO3LRPotential" and meta["sources"]["replay_frames"] > 0


def test_a_delta_so3lr_on_gfn2_xtb(files, tmp_path, capsys):
    out = tmp_path / "delta.safetensors"
    assert _train(files, out, "--method", "standard", "--steps", "2", "--baseline", "gfn2-xtb") == 0
    model, _ = load_checkpoint(out)
    assert type(model).__name__ == "DeltaPotential" and type(model.inner).__name__ == "SO3LRPotential"
    assert model.baseline.fidelity.name == "gfn2-xtb" and _changed(model.inner)
