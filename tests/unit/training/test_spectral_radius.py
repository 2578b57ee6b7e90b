"""Spectral radius refinement: Laplacian spectra, the radius choice, graph radii, ``alloop refine --method rr``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from training_synthetic import label_frames, perturbed, truth_potential

from alloop.cli import main
from alloop.errors import AlloopError
from alloop.io import write_extxyz
from alloop.potentials.base import AtomsBatch
from alloop.potentials.checkpoint import save_checkpoint
from alloop.potentials.egnn import EGNN
from alloop.potentials.inference import predict
from alloop.potentials.pair import PairPotential
from alloop.potentials.two_head import TwoHeadPotential
from alloop.training.spectral_radius import (
    choose_radius,
    laplacian_spectrum,
    mean_spectrum,
    padded,
    radius_grid,
    refine_radius_predict,
    spectral_distance,
)

DATA = Path(__file__).resolve().parents[3] / "tests" / "data"
CUTOFF = 4.0


def _cluster_frames(n: int = 4, noise: float = 0.001) -> list[Atoms]:
    """A jittered 4x4x3 cubic cluster (1.5 A spacing, 48 C atoms): no pair within 0.004 A of 4 A, so the copies
    (moved by ``noise``) share one graph at the cutoff, and pair distances are dense around any radius."""
    lattice = np.stack(np.meshgrid(np.arange(4), np.arange(4), np.arange(3), indexing="ij"), -1).reshape(-1, 3) * 1.5
    rng = np.random.default_rng(1)
    base = lattice + rng.normal(0.0, 0.15, lattice.shape)
    return [Atoms(f"C{len(base)}", positions=base + rng.normal(0.0, noise, base.shape)) for _ in range(n)]


def _egnn(**kw) -> EGNN:
    settings = {"cutoff": CUTOFF, "hidden_features": 8, "n_layers": 2, "n_rbf": 6, "seed": 1, **kw}
    return EGNN([1, 6, 8], **settings).double()


# ---- spectra -------------------------------------------------------------------------------------------
def test_spectrum_of_three_atoms_in_a_line_is_the_hand_computed_one():
    positions = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    # radius 1.5 joins neighbours only: A + I = [[1,1,0],[1,1,1],[0,1,1]], degrees (2, 3, 2)
    a = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    d = np.diag(1.0 / np.sqrt(a.sum(axis=1)))
    hand = np.linalg.eigvalsh(np.eye(3) - d @ a @ d)
    spectrum = laplacian_spectrum(positions, 1.5)
    np.testing.assert_allclose(spectrum, hand, atol=1e-12)
    np.testing.assert_allclose(spectrum, [0.0, 0.5, 7.0 / 6.0], atol=1e-12)  # worked out on paper
    # a radius that joins all three: complete graph, L = I - J/3, eigenvalues 0, 1, 1; one too small: isolated, 0 0 0
    np.testing.assert_allclose(laplacian_spectrum(positions, 2.5), [0.0, 1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(laplacian_spectrum(positions, 0.5), [0.0, 0.0, 0.0], atol=1e-12)
    # strict "closer than": a pair exactly at the radius is not joined, as in the models' neighbour lists
    np.testing.assert_allclose(laplacian_spectrum(positions, 1.0), [0.0, 0.0, 0.0], atol=1e-12)


def test_padding_and_the_mean_spectrum_of_frames_of_different_sizes():
    assert padded(np.array([0.5, 1.0]), 4).tolist() == [0.0, 0.0, 0.5, 1.0]
    # [0, 1, 1] against [0, 1, 2]
    assert spectral_distance(np.array([1.0, 1.0]), np.array([0.0, 1.0, 2.0])) == pytest.approx(1.0)
    line = Atoms("H3", positions=[[0, 0, 0], [1, 0, 0], [2, 0, 0]])
    pair = Atoms("H2", positions=[[0, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(mean_spectrum([line, pair], 1.5), [0.0, 0.25, 7.0 / 12.0 + 0.5], atol=1e-12)


def test_the_grid_always_holds_the_training_cutoff():
    assert radius_grid(5.0).tolist() == [3.0 + 0.25 * k for k in range(25)]
    assert 4.1 in radius_grid(4.1).tolist() and radius_grid(4.1).size == 26
    with pytest.raises(AlloopError, match="grid"):
        radius_grid(5.0, 9.0, 3.0)


# ---- the choice ---------------------------------------------------------------------------------------
def test_training_geometries_keep_the_cutoff_and_stretched_ones_scale_it():
    frames = _cluster_frames()
    reference = mean_spectrum(frames, CUTOFF)
    grid = radius_grid(CUTOFF)
    assert [choose_radius(f, reference, grid, CUTOFF) for f in frames] == [CUTOFF] * len(frames)
    for scale in (1.3, 0.8):
        chosen = [choose_radius(f.positions * scale, reference, grid, CUTOFF) for f in frames]
        assert all(abs(r - scale * CUTOFF) <= 0.125 for r in chosen), (scale, chosen)


def test_ties_go_to_the_training_cutoff():
    """A small molecule inside the cutoff has a complete graph at every radius from its diameter on."""
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    reference = mean_spectrum([water], 5.0)
    assert choose_radius(water, reference, radius_grid(5.0), 5.0) == 5.0
    assert choose_radius(water, reference, radius_grid(5.0), 7.3) == 7.25


def test_ethanol_training_frames_keep_the_training_cutoff_of_the_two_head_model():
    """Real data: every frame of the 500 K pool the two-head EGNN of data/make_ethanol_two_head.py trained on."""
    import ase.io

    from alloop.potentials.checkpoint import load_checkpoint

    model, _ = load_checkpoint(Path(__file__).with_name("data") / "ethanol_two_head.safetensors")
    pool = ase.io.read(DATA / "ethanol_500K_short_pool_hf-sto3g.extxyz", ":")
    result = refine_radius_predict(model, pool[:40], pool)
    assert result.radii.tolist() == [model.cutoff] * 40 and not result.moved.any()
    energies, forces = predict(model, pool[:40])
    assert np.array_equal(result.energies, energies) and np.array_equal(result.forces, forces)


# ---- graph radii of models ----------------------------------------------------------------------------
def _batch(n: int = 3, seed: int = 0) -> AtomsBatch:
    return AtomsBatch.from_atoms(perturbed(["CH3CH2OH", "H2O"], n, seed=seed), dtype=torch.float64)


def test_egnn_at_its_own_cutoff_is_bit_identical_and_another_radius_changes_it():
    model, batch = _egnn(), _batch()
    default = model(batch)
    with model.using_graph_radius(model.cutoff) as same:
        assert same is model and model.graph_radius == CUTOFF
        again = model(batch)
    assert torch.equal(default.energy, again.energy) and torch.equal(default.forces, again.forces)
    assert torch.equal(default.features, again.features)
    with model.using_graph_radius(2.0):
        assert model.graph_radius == 2.0
        short = model(batch)
    assert not torch.allclose(default.energy, short.energy) and not torch.allclose(default.forces, short.forces)
    assert model.graph_radius == CUTOFF and torch.equal(model(batch).energy, default.energy)
    with pytest.raises(RuntimeError), model.using_graph_radius(6.0):
        raise RuntimeError("inside")
    assert model.graph_radius == CUTOFF  # restored after an exception too
    with pytest.raises(AlloopError, match="positive"), model.using_graph_radius(0.0):
        pass


def test_a_two_head_model_passes_the_radius_to_its_body():
    single, batch = _egnn(), _batch()
    two = TwoHeadPotential.from_model(single)
    assert two.accepts_graph_radius
    default = two(batch)
    with single.using_graph_radius(3.0):
        expected = single(batch)
    with two.using_graph_radius(3.0):
        assert two.body.graph_radius == 3.0
        got = two(batch)
    assert torch.allclose(got.energy, expected.energy, atol=1e-10)
    assert torch.allclose(got.forces, expected.forces, atol=1e-10)
    assert two.body.graph_radius == two.cutoff and torch.equal(two(batch).energy, default.energy)
    with two.using_graph_radius(two.cutoff):
        assert torch.equal(two(batch).forces, default.forces)


def test_models_tied_to_their_cutoff_refuse_another_radius():
    from alloop.potentials.sevennet import SevenNet

    frames = perturbed(["H2O"], 2, seed=0)
    sevennet = SevenNet([1, 6, 8], hidden_features=8, n_layers=1, lmax=1, seed=1)
    two = TwoHeadPotential([1, 6, 8], body={"architecture": "sevennet", "hyperparameters": sevennet.hyperparameters()})
    for model, name in ((PairPotential([1, 6, 8]), "pair"), (sevennet, "sevennet"), (two, "sevennet")):
        assert not model.accepts_graph_radius
        with pytest.raises(AlloopError, match=f"'{name}' model cannot build its graph"), model.using_graph_radius(5.0):
            pass
        with pytest.raises(AlloopError, match=f"not applicable to a '{name}' model"):
            refine_radius_predict(model, frames, frames)


def test_refined_predictions_are_those_of_each_frames_radius_in_frame_order():
    model = _egnn(cutoff=4.0)
    training = _cluster_frames(2)
    frames = [training[0], Atoms(training[1].numbers, training[1].positions * 1.3), training[1]]
    frames[1].numbers[:3] = [1, 8, 1]  # different elements, same graph
    result = refine_radius_predict(model, frames, training, batch_size=2)
    assert result.radii.tolist() == [CUTOFF, 5.25, CUTOFF] and result.moved.tolist() == [False, True, False]
    energies, forces = predict(model, [frames[0], frames[2]])
    with model.using_graph_radius(5.25):
        moved_energy, moved_forces = predict(model, [frames[1]])
    n = len(frames[0])
    assert np.array_equal(result.energies[[0, 2]], energies) and result.energies[1] == moved_energy[0]
    assert np.array_equal(result.forces[:n], forces[:n]) and np.array_equal(result.forces[2 * n:], forces[n:])
    assert np.array_equal(result.forces[n:2 * n], moved_forces)


# ---- the command ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rr_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("rr")
    save_checkpoint(_egnn(cutoff=3.0).float(), d / "egnn.safetensors", {})
    save_checkpoint(PairPotential([1, 6, 8]), d / "pair.safetensors", {})
    write_extxyz(d / "train.extxyz", label_frames(perturbed(["CH3CH2OH"], 6, seed=0), truth_potential()))
    new = perturbed(["CH3CH2OH"], 4, seed=1, sigma=0.2)
    for atoms in new:
        atoms.positions *= 1.15
    write_extxyz(d / "new.extxyz", label_frames(new, truth_potential()))
    return d


def _error(capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("alloop refine: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_refine_rr_prints_radii_and_errors_and_writes_predictions(rr_files, tmp_path, capsys):
    d = rr_files
    out = tmp_path / "pred.extxyz"
    argv = ["refine", str(d / "egnn.safetensors"), str(d / "new.extxyz"), "--method", "rr", "--training",
            str(d / "train.extxyz"), "--grid", "2.5:5:0.25", "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "spectral radius refinement of" in text and "training cutoff 3 A" in text
    assert "chosen radius (A): frames" in text and "of 4 frames off the cutoff" in text
    assert "force MAE" in text and "eV/A" in text
    import ase.io

    written = ase.io.read(out, ":")
    assert len(written) == 4 and all(2.5 <= a.info["graph_radius"] <= 5.0 for a in written)
    assert written[0].get_forces().shape == (9, 3)


def test_refine_rr_uses_the_head_it_is_told_and_skips_labels_of_another_fidelity(rr_files, tmp_path, capsys):
    from alloop.potentials.checkpoint import load_checkpoint

    model, _ = load_checkpoint(rr_files / "egnn.safetensors")
    two = TwoHeadPotential.from_model(model)
    two.record_fidelity("expensive", "13a41035541800f0")
    save_checkpoint(two, tmp_path / "two.safetensors", {})
    frames = label_frames(perturbed(["CH3CH2OH"], 2, seed=4), truth_potential())
    for atoms in frames:
        atoms.info["fidelity_hash"] = "fa1162a91ebb1963"
    write_extxyz(tmp_path / "hf.extxyz", frames)
    argv = ["refine", str(tmp_path / "two.safetensors"), str(tmp_path / "hf.extxyz"), "--method", "rr", "--training",
            str(rr_files / "train.extxyz")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "('expensive' head)" in captured.out and "force MAE" not in captured.out
    assert "labelled at fidelity fa1162a91ebb1963" in captured.err
    assert main([*argv, "--expensive-energy-key", "energy", "--expensive-forces-key", "forces"]) == 0
    assert "force MAE" in capsys.readouterr().out
    assert "no 'dft' head" in _error(capsys, [*argv, "--target", "dft"])


def test_refine_rr_errors_are_one_line(rr_files, capsys):
    d = rr_files
    base = ["refine", str(d / "egnn.safetensors"), str(d / "new.extxyz"), "--method", "rr"]
    assert "needs --training" in _error(capsys, base)
    training = ["--training", str(d / "train.extxyz")]
    assert "--steps is an option of --method ttt" in _error(capsys, [*base, *training, "--steps", "5"])
    assert "LOW:HIGH:STEP" in _error(capsys, [*base, *training, "--grid", "3:9"])
    pair = ["refine", str(d / "pair.safetensors"), str(d / "new.extxyz"), "--method", "rr", *training]
    assert "not applicable to a 'pair' model" in _error(capsys, pair)
    ttt = ["refine", str(d / "egnn.safetensors"), str(d / "new.extxyz"), *training]
    assert "--training is an option of --method rr" in _error(capsys, ttt)
