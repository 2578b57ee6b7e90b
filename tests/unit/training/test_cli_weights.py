"""``alloop train --weights KEY``: per-frame loss weights of the expensive frames from their info key."""

import numpy as np
import pytest
from ase.io import read
from training_synthetic import label_frames, perturbed, truth_potential

from alloop.cli import main
from alloop.io import write_extxyz
from alloop.potentials.checkpoint import load_checkpoint
from alloop.potentials.inference import predict
from alloop.training.data import FrameDataset

NAMES = ["H2O", "CH4"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """16 frames (water and methane in turn) of which every other pair carries forces x 3 (wrong labels), weight 0
    on those under ``clean``; a test file."""
    d = tmp_path_factory.mktemp("weights")
    truth = truth_potential()
    frames = label_frames(perturbed(NAMES, 16, seed=0), truth)
    for k, atoms in enumerate(frames):
        atoms.info["ones"] = 1.0
        wrong = (k // 2) % 2 == 1
        atoms.info["clean"] = float(not wrong)
        if wrong:
            atoms.calc.results["forces"] = 3.0 * atoms.calc.results["forces"]
    write_extxyz(d / "exp.extxyz", frames)
    write_extxyz(d / "test.extxyz", label_frames(perturbed(NAMES, 6, seed=2), truth))
    return d


def _train(files, out, *extra):
    return main(["train", "--expensive", str(files / "exp.extxyz"), "--model", "pair", "--epochs", "100", "--refit",
                 "--method", "standard", "--quiet", "-o", str(out), *extra])


def _test_force_mae(files, path):
    model, _ = load_checkpoint(path)
    test = FrameDataset.from_atoms(read(files / "test.extxyz", ":"))
    return float(np.mean(np.abs(predict(model, test)[1] - test.forces)))


def test_weights_multiply_the_loss(files, tmp_path, capsys):
    plain, ones, clean = (tmp_path / f"{n}.safetensors" for n in ("plain", "ones", "clean"))
    assert _train(files, plain) == 0
    assert _train(files, ones, "--weights", "ones") == 0
    assert _train(files, clean, "--weights", "clean") == 0
    capsys.readouterr()
    # equal weights are no weights, bit for bit
    a, b = (load_checkpoint(p)[0] for p in (plain, ones))
    assert all(np.array_equal(x.detach().numpy(), y.detach().numpy())
               for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert load_checkpoint(clean)[1]["sources"]["weights_key"] == "clean"
    # weight 0 on the wrong labels: the model learns the truth; equal weights learn the average of truth and 3 x truth
    assert _test_force_mae(files, clean) < 0.5 * _test_force_mae(files, plain)


def test_bad_weights_are_refused(files, tmp_path, capsys):
    frames = read(files / "exp.extxyz", ":")
    cases = {"missing": ("w", None, "frame 3 has no number under 'w'"),
             "negative": ("w", -1.0, "frame 3's weight 'w' is -1.0"),
             "nan": ("w", float("nan"), "frame 3's weight 'w' is nan")}
    for name, (key, bad, message) in cases.items():
        for k, atoms in enumerate(frames):
            atoms.info.pop("w", None)
            if k != 3 or bad is not None:
                atoms.info["w"] = bad if k == 3 else 1.0
        path = tmp_path / f"{name}.extxyz"
        write_extxyz(path, frames)
        out = tmp_path / f"{name}.safetensors"
        assert main(["train", "--expensive", str(path), "--model", "pair", "--epochs", "1", "--weights", key,
                     "--quiet", "-o", str(out)]) == 1
        assert message in capsys.readouterr().err, name
        assert not out.exists()
    for atoms in frames:
        atoms.info["w"] = 0.0
    write_extxyz(tmp_path / "zero.extxyz", frames)
    assert main(["train", "--expensive", str(tmp_path / "zero.extxyz"), "--model", "pair", "--epochs", "1",
                 "--weights", "w", "--quiet", "-o", str(tmp_path / "zero.safetensors")]) == 1
    assert "every frame's weight 'w' is 0" in capsys.readouterr().err
