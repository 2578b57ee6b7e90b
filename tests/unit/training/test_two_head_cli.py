"""``alloop train --method two-head`` and ``alloop refine`` end to end: tiny files, a few steps, one-line errors."""

from __future__ import annotations

import ase.io
import pytest
import torch
from training_synthetic import label_frames, perturbed, truth_potential

from alloop.cli import main
from alloop.io import write_extxyz
from alloop.potentials.checkpoint import load_checkpoint, save_checkpoint
from alloop.potentials.egnn import EGNN
from alloop.potentials.two_head import TwoHeadPotential

HF, B3LYP = "fa1162a91ebb1963", "13a41035541800f0"  # hashes of the hf-sto3g and b3lyp-svp presets
CHEAP_REFS = {1: -10.0, 6: -1000.0, 8: -2000.0}
NAMES = ["H2O", "CH4"]


def _tagged(frames, name: str, fidelity_hash: str):
    for atoms in frames:
        atoms.info.update(fidelity=name, fidelity_hash=fidelity_hash)
    return frames


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("two_head")
    exp = _tagged(label_frames(perturbed(NAMES, 8, seed=0), truth_potential()), "b3lyp-svp", B3LYP)
    cheap_truth = truth_potential(seed=5, scale=2.5)
    cheap = _tagged(label_frames(perturbed(NAMES, 12, seed=1), cheap_truth, CHEAP_REFS), "hf-sto3g", HF)
    write_extxyz(d / "exp.extxyz", exp)
    write_extxyz(d / "cheap.extxyz", cheap)
    # new frames: cheap labels as energy/forces, expensive labels under other keys (written by ASE, which keeps them)
    new = _tagged(label_frames(perturbed(NAMES, 4, seed=2, sigma=0.15), cheap_truth, CHEAP_REFS), "hf-sto3g", HF)
    truth = label_frames(perturbed(NAMES, 4, seed=2, sigma=0.15), truth_potential())
    for atoms, ref in zip(new, truth, strict=True):
        atoms.info["b3lyp_energy"] = ref.get_potential_energy()
        atoms.arrays["b3lyp_forces"] = ref.get_forces()
    ase.io.write(d / "new.extxyz", new)
    write_extxyz(d / "unlabelled.extxyz", perturbed(NAMES, 2, seed=3))
    code = main(["train", "--expensive", str(d / "exp.extxyz"), "--cheap", str(d / "cheap.extxyz"), "--method",
                 "two-head", "--steps", "12", "--finetune-steps", "6", "--batch-size", "4", "--val-fraction", "0.25",
                 "--quiet", "-o", str(d / "two.safetensors")])
    assert code == 0
    return d


def _error(capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"alloop {argv[0]}: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_train_two_head_writes_a_two_head_checkpoint(files, tmp_path, capsys):
    model, meta = load_checkpoint(files / "two.safetensors")
    assert isinstance(model, TwoHeadPotential) and model.active_head == "expensive"
    assert model.fidelities == {"cheap": {"tag": HF, "name": "hf-sto3g"}, "expensive": {"tag": B3LYP, "name": "b3lyp-svp"}}
    assert meta["method"] == "two-head" and meta["two_head_mode"] == "frozen"
    assert set(meta["stages"]) == {"cheap", "expensive"}
    assert set(meta["energy_references"]) == {HF, B3LYP}
    out = tmp_path / "joint.safetensors"
    assert main(["train", "--expensive", str(files / "exp.extxyz"), "--cheap", str(files / "cheap.extxyz"),
                 "--method", "two-head", "--two-head-mode", "joint", "--steps", "4", "--batch-size", "4",
                 "--quiet", "-o", str(out)]) == 0
    assert "method two-head" in capsys.readouterr().out
    assert load_checkpoint(out)[1]["two_head_mode"] == "joint"


def test_train_two_head_errors(files, capsys):
    base = ["train", "--expensive", str(files / "exp.extxyz"), "-o", str(files / "x.safetensors")]
    assert "method 'two-head' needs cheap labelled frames (alloop train --cheap" in _error(
        capsys, [*base, "--method", "two-head"])
    assert "--two-head-mode is for --method two-head" in _error(capsys, [*base, "--two-head-mode", "joint"])
    assert "no representation/head split" in _error(
        capsys, [*base, "--cheap", str(files / "cheap.extxyz"), "--method", "two-head", "--model", "pair"])


def test_refine_refines_the_representation_and_reports_before_after(files, capsys):
    out = files / "refined.safetensors"
    assert main(["refine", str(files / "two.safetensors"), str(files / "new.extxyz"), "--prior", "cheap", "--steps", "5",
                 "--lr", "1e-3", "--expensive-energy-key", "b3lyp_energy", "--expensive-forces-key", "b3lyp_forces",
                 "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "'cheap' head: loss" in captured.out and "'expensive' head: force MAE" in captured.out
    assert "refine step 5/5" in captured.err
    before, _ = load_checkpoint(files / "two.safetensors")
    after, meta = load_checkpoint(out)
    assert after.active_head == "expensive" and after.fidelities == before.fidelities
    for name in ("cheap", "expensive"):
        assert all(torch.equal(a, b)
                   for a, b in zip(before.heads[name].parameters(), after.heads[name].parameters(), strict=True))
    (record,) = meta["refinements"]
    assert record["n_frames"] == 4 and record["steps"] == 5 and "expensive_after" in record
    assert record["reverted"] or record["prior_loss_after"] < record["prior_loss_before"]
    assert meta["method"] == "two-head"  # the training metadata is kept
    # default output name, next to the model
    assert main(["refine", str(files / "two.safetensors"), str(files / "new.extxyz"), "--steps", "1", "--quiet"]) == 0
    assert (files / "two-refined.safetensors").is_file()


def test_refine_labels_with_pyscf_at_the_recorded_cheap_fidelity(files, tmp_path, capsys):
    waters = perturbed(["H2O"], 2, seed=4, sigma=0.03)
    write_extxyz(tmp_path / "waters.extxyz", waters)
    assert main(["refine", str(files / "two.safetensors"), str(tmp_path / "waters.extxyz"), "--label", "--steps", "2",
                 "-o", str(tmp_path / "r.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "labels: PySCF hf-sto3g: 2 frames labelled" in out
    assert load_checkpoint(tmp_path / "r.safetensors")[1]["refinements"][0]["labels"].startswith("PySCF hf-sto3g")


def test_refine_labels_a_charged_open_shell_head_at_its_recorded_charge_and_spin(files, tmp_path, capsys):
    from alloop.fidelity import load_fidelity

    model, _ = load_checkpoint(files / "two.safetensors")
    cation = load_fidelity("hf-sto3g", charge=1, spin=1)  # H2O+: 9 electrons, one unpaired
    model.fidelities["cheap"] = {"tag": cation.hash(), "name": "hf-sto3g"}
    save_checkpoint(model, tmp_path / "cation.safetensors")
    write_extxyz(tmp_path / "waters.extxyz", perturbed(["H2O"], 2, seed=4, sigma=0.03))
    argv = ["refine", str(tmp_path / "cation.safetensors"), str(tmp_path / "waters.extxyz"), "--label", "--steps", "1",
            "-o", str(tmp_path / "r.safetensors")]
    assert main(argv) == 0  # the charge and spin found from the head's recorded hash
    assert "labels: PySCF hf-sto3g at charge 1, 2S 1: 2 frames labelled" in capsys.readouterr().out
    assert main([*argv, "--charge", "1", "--spin", "1"]) == 0  # given, and matching the hash
    assert "at charge 1, 2S 1" in capsys.readouterr().out
    assert "at charge 0 and 2S 0 is" in _error(capsys, [*argv, "--charge", "0", "--spin", "0"])
    assert "--charge and --spin are for --label" in _error(
        capsys, ["refine", str(files / "two.safetensors"), str(files / "new.extxyz"), "--charge", "1"])


def test_refine_errors_are_one_line(files, tmp_path, capsys):
    two, new = str(files / "two.safetensors"), str(files / "new.extxyz")
    single = tmp_path / "single.safetensors"
    save_checkpoint(EGNN([1, 6, 8], hidden_features=8, n_layers=1), single)
    assert "single-head 'egnn' model" in _error(capsys, ["refine", str(single), new])
    assert "no 'cheap' labels under 'energy'/'forces'" in _error(capsys, ["refine", two, str(files / "unlabelled.extxyz")])
    assert "not both" in _error(capsys, ["refine", two, new, "--label", "--energy-key", "e"])
    assert "no 'dft' head" in _error(capsys, ["refine", two, new, "--prior", "dft"])
    assert "give both --expensive-energy-key" in _error(capsys, ["refine", two, new, "--expensive-energy-key", "e"])
    assert "steps must be in 1.." in _error(capsys, ["refine", two, new, "--steps", "0"])
    assert "has no 'nope' label" in _error(capsys, ["refine", two, new, "--energy-key", "nope"])
    model, _ = load_checkpoint(two)
    model.fidelities["cheap"] = {"tag": "0123456789abcdef"}
    save_checkpoint(model, tmp_path / "other.safetensors")
    other = str(tmp_path / "other.safetensors")
    assert "trained at 0123456789abcdef" in _error(capsys, ["refine", other, new])
    assert "does not record the fidelity preset" in _error(capsys, ["refine", other, new, "--label"])
    water_model = tmp_path / "ho.safetensors"
    save_checkpoint(TwoHeadPotential.from_model(EGNN([1, 8], hidden_features=8, n_layers=1)), water_model)
    assert "elements [6]" in _error(capsys, ["refine", str(water_model), new])
