"""``alloop train`` and ``alloop evaluate`` end to end on tiny extxyz files (PairPotential models, 2 epochs)."""

import json

import numpy as np
import pytest
from ase.build import molecule
from training_synthetic import TRUE_REFS, label_frames, perturbed, truth_potential

from alloop.cli import main
from alloop.io import write_extxyz
from alloop.potentials.checkpoint import checkpoint_to_bytes, load_checkpoint
from alloop.potentials.inference import predict
from alloop.training.data import FrameDataset
from alloop.training.references import apply_references

NAMES = ["H2O", "CH4"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    truth = truth_potential()
    write_extxyz(d / "exp.extxyz", label_frames(perturbed(NAMES, 8, seed=0), truth))
    write_extxyz(d / "cheap.extxyz", label_frames(perturbed(NAMES, 12, seed=1), truth_potential(scale=2.3),
                                                  {1: -10.0, 6: -1000.0, 8: -2000.0}))
    write_extxyz(d / "test.extxyz", label_frames(perturbed(NAMES, 5, seed=2), truth))
    write_extxyz(d / "unlabelled.extxyz", perturbed(NAMES, 8, seed=3))
    return d


def _train(files, *extra):
    return main(["train", "--expensive", str(files / "exp.extxyz"), "--model", "pair", "--epochs", "2",
                 "--val-fraction", "0.25", "--gamma-grid", "0.5,2", "--quiet", *extra])


def test_train_asteroid_then_evaluate(files, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    assert _train(files, "--cheap", str(files / "cheap.extxyz"), "--method", "asteroid", "-o", str(out)) == 0
    text = capsys.readouterr().out
    assert "method asteroid: 8 expensive frames, 12 cheap frames" in text and "stage3" in text and "gamma" in text
    model, meta = load_checkpoint(out)
    assert meta["method"] == "asteroid" and meta["fidelity"] == "expensive"
    assert set(meta["energy_references"]) == {"expensive", "cheap"}
    assert model.atomic_energies[8].item() == pytest.approx(meta["energy_references"]["expensive"][8])
    assert 1 <= meta["metrics"]["n_frames"] < 8 and meta["bias"]["gamma_eV_per_A"] > 0  # the expensive validation split

    assert main(["evaluate", str(out), str(files / "test.extxyz"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    test = FrameDataset.from_atoms(__import__("ase.io").io.read(files / "test.extxyz", ":"))
    energy, forces = predict(model, test)
    df = forces - test.forces
    assert got["force_rmse_eV_per_A"] == pytest.approx(np.sqrt(np.mean(df**2)), rel=1e-9)
    assert got["force_rmse_eV_per_A"] != pytest.approx(np.mean(np.linalg.norm(df, axis=1)), rel=1e-3)  # not a mean L2 norm
    assert got["energy_mae_eV"] == pytest.approx(np.mean(np.abs(energy - test.energy)), rel=1e-9)
    assert got["energy_mae_per_atom_eV"] == pytest.approx(np.mean(np.abs(energy - test.energy) / test.sizes), rel=1e-9)
    assert got["method"] == "asteroid" and got["n_frames"] == 5
    # the tails: of each frame's mean |dF| over its atoms' components (benchmarks/lib/common.py per_frame_force_mae)
    per_frame = np.array([np.abs(df[a:b]).mean() for a, b in zip(test.offsets[:-1], test.offsets[1:], strict=True)])
    assert got["force_mae_p95_eV_per_A"] == pytest.approx(np.percentile(per_frame, 95), rel=1e-9)
    assert got["force_mae_max_eV_per_A"] == pytest.approx(per_frame.max(), rel=1e-9)
    assert set(got["per_molecule"]) == {"H2O", "CH4"}  # the file holds two molecules
    assert sum(m["n_frames"] for m in got["per_molecule"].values()) == 5

    assert main(["evaluate", str(out), str(files / "test.extxyz")]) == 0
    table = capsys.readouterr().out
    assert "| force components |" in table and "eV/Angstrom" in table
    assert f"per-frame force MAE: 95th percentile {got['force_mae_p95_eV_per_A']:.5f}, max" in table
    assert "per molecule" in table and "| H2O |" in table and "| CH4 |" in table


@pytest.mark.parametrize("method,extra", [("standard", []), ("score-matching", ["--unlabelled", "unlabelled.extxyz"])])
def test_other_methods_write_a_checkpoint(files, tmp_path, capsys, method, extra):
    extra = [str(files / e) if e.endswith(".extxyz") else e for e in extra]
    out = tmp_path / "m.safetensors"
    assert _train(files, "--method", method, "--temperature-K", "500", *extra, "-o", str(out)) == 0
    assert f"method {method}" in capsys.readouterr().out
    assert load_checkpoint(out)[1]["method"] == method


def test_refit_trains_on_every_frame_and_says_its_errors_are_training_errors(files, tmp_path, capsys):
    out = tmp_path / "refit.safetensors"
    assert _train(files, "--method", "standard", "--refit", "-o", str(out)) == 0
    text = capsys.readouterr().out
    assert "expensive training frames, no holdout (8 frames)" in text and "expensive validation" not in text
    meta = load_checkpoint(out)[1]
    assert meta["settings"]["refit"] is True and meta["metrics"]["n_frames"] == 8


def test_evaluate_a_campaign_run_directory(files, tmp_path, capsys):
    from alloop.store import CampaignStore, store_path

    model = truth_potential()
    apply_references(model, TRUE_REFS)
    with CampaignStore.create(store_path(tmp_path / "run")) as store:
        store.add_checkpoint(checkpoint_to_bytes(model, {"method": "standard"}), {"cycle": 0})
        store.commit()
    assert main(["evaluate", str(tmp_path / "run"), str(files / "test.extxyz"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    # the campaign's model is the potential that labelled the data (extxyz keeps ~8 digits)
    assert got["force_mae_eV_per_A"] < 1e-6 and got["energy_mae_eV"] < 1e-5


def test_train_errors(files, tmp_path, capsys):
    out = str(tmp_path / "m.safetensors")
    assert _train(files, "--method", "magic", "-o", out) == 1
    assert "unknown method 'magic'" in capsys.readouterr().err
    assert _train(files, "--method", "asteroid", "-o", out) == 1
    assert "method 'asteroid' needs cheap labelled frames (alloop train --cheap" in capsys.readouterr().err
    assert _train(files, "--method", "score-matching", "-o", out) == 1
    assert "method 'score-matching' needs unlabelled Boltzmann samples" in capsys.readouterr().err
    # a cheap file with frames lacking energies and forces
    assert _train(files, "--method", "asteroid", "--cheap", str(files / "unlabelled.extxyz"), "-o", out) == 1
    assert "frame 0 has no energy and forces" in capsys.readouterr().err
    # elements of the cheap set that the expensive set lacks
    nh3 = tmp_path / "nh3.extxyz"
    write_extxyz(nh3, label_frames([molecule("NH3")] * 3, truth_potential_with_n(), {1: -10.0, 7: -1500.0}))
    assert _train(files, "--method", "asteroid", "--cheap", str(nh3), "-o", out) == 1
    assert "elements [7] absent from the expensive set" in capsys.readouterr().err
    # a file that mixes fidelities
    frames = label_frames(perturbed(NAMES, 4, seed=9), truth_potential())
    for k, a in enumerate(frames):
        a.info["fidelity_hash"] = "aaaa" if k % 2 else "bbbb"
    mixed = tmp_path / "mixed.extxyz"
    write_extxyz(mixed, frames)
    assert _train(files, "--method", "asteroid", "--cheap", str(mixed), "-o", out) == 1
    assert "frames of several fidelities" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


def test_evaluate_errors(files, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.safetensors"), str(files / "test.extxyz")]) == 1
    assert "no such checkpoint or run directory" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), str(files / "test.extxyz")]) == 1
    assert "holds no campaign store" in capsys.readouterr().err


def truth_potential_with_n():
    from alloop.potentials.pair import PairPotential

    return PairPotential([1, 7], seed=3).double()


def test_init_from_a_checkpoint(files, tmp_path, capsys):
    from alloop.potentials.checkpoint import save_checkpoint
    from alloop.potentials.pair import PairPotential

    start = tmp_path / "truth.safetensors"
    save_checkpoint(truth_potential(), start)
    out = tmp_path / "m.safetensors"
    assert _train(files, "--method", "standard", "--init", str(start), "-o", str(out)) == 0
    meta = load_checkpoint(out)[1]
    assert meta["metrics"]["force_mae_eV_per_A"] < 1e-6  # started from the labelling potential and kept it
    save_checkpoint(PairPotential([1, 8]), tmp_path / "no_carbon.safetensors")
    assert _train(files, "--method", "standard", "--init", str(tmp_path / "no_carbon.safetensors"), "-o", str(out)) == 1
    assert "does not know elements [6]" in capsys.readouterr().err


def test_train_with_a_baseline_writes_a_delta_model_and_continues_it(files, tmp_path, capsys):
    from alloop.potentials.baseline import Baseline, DeltaPotential

    out = tmp_path / "delta.safetensors"
    assert _train(files, "--method", "standard", "--baseline", "gfn1-xtb", "-o", str(out)) == 0
    model, meta = load_checkpoint(out)
    assert isinstance(model, DeltaPotential) and model.baseline.fidelity.method == "gfn1-xtb"
    assert meta["baseline"] == "gfn1-xtb"
    # the recorded validation error is the Delta model's on the true labels: the network learned label - GFN1
    exp = FrameDataset.from_atoms(__import__("ase.io").io.read(files / "exp.extxyz", ":"))
    shifted = Baseline("gfn1-xtb").subtract(exp)
    _, f_delta = predict(model, exp)
    _, f_inner = predict(model.inner, shifted)
    np.testing.assert_allclose(f_delta - exp.forces, f_inner - shifted.forces, atol=1e-4)
    capsys.readouterr()
    again = tmp_path / "again.safetensors"
    assert _train(files, "--method", "standard", "--init", str(out), "-o", str(again)) == 0  # keeps its baseline
    assert isinstance(load_checkpoint(again)[0], DeltaPotential)
    capsys.readouterr()
    assert _train(files, "--method", "standard", "--init", str(out), "--baseline", "gfn2-xtb", "-o", str(again)) == 1
    assert "differs from the --init model's baseline gfn1-xtb" in capsys.readouterr().err
    assert main(["train", "--expensive", str(files / "exp.extxyz"), "--model", "pair", "--baseline", "hf-sto3g",
                 "--method", "standard", "-o", str(again)]) == 1
    assert "GFN-xTB" in capsys.readouterr().err


#: one xdist worker runs this module (its module-scoped fixture is built once)
pytestmark = pytest.mark.xdist_group("test_cli")
