"""Batched inference: the same numbers from Atoms or packed frames, in frame order, mode restored, no graph kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.errors import AlloopError
from alloop.potentials.base import AtomsBatch
from alloop.potentials.inference import frame_offsets, predict, predict_energies, predict_features
from alloop.potentials.registry import build_model
from alloop.training.data import FrameDataset


def _frames(n: int = 7) -> list:
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        atoms = molecule(["H2O", "CH3CH2OH", "CH4"][k % 3])
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        out.append(atoms)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_predict_matches_one_call_per_frame(dtype):
    model = build_model("pair", [1, 6, 8], seed=0).to(dtype)
    frames = _frames()
    energy, forces = predict(model, frames, batch_size=3)
    assert energy.dtype == forces.dtype == np.float64 and forces.shape == (sum(map(len, frames)), 3)
    ptr = frame_offsets(frames)
    for k, atoms in enumerate(frames):
        out = model(AtomsBatch.from_atoms([atoms], dtype=dtype))
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        assert energy[k] == pytest.approx(out.energy.item(), rel=tol)
        np.testing.assert_allclose(forces[ptr[k]:ptr[k + 1]], out.forces.detach().numpy(), rtol=tol, atol=tol)


def test_atoms_and_packed_frames_give_identical_numbers():
    model = build_model("egnn", [1, 6, 8], seed=0)
    frames = _frames()
    packed = FrameDataset.from_atoms(frames, labelled=False)
    for a, b in zip(predict(model, frames, 4), predict(model, packed, 4), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(predict_features(model, frames, 4), predict_features(model, packed, 4))
    assert np.array_equal(frame_offsets(frames), packed.offsets)


def test_mode_is_restored_and_no_graph_is_kept():
    model = build_model("pair", [1, 6, 8], seed=0)
    model.train()
    energy, _ = predict(model, _frames(2))
    assert model.training and not any(p.grad is not None for p in model.parameters())
    model.eval()
    features = predict_features(model, _frames(2))
    assert not model.training and features.shape == (3 + 9, model.feature_dim)


def test_no_frames_is_an_error():
    model = build_model("pair", [1, 6, 8], seed=0)
    with pytest.raises(AlloopError, match="no frames"):
        predict(model, [])
    with pytest.raises(AlloopError, match="batch_size"):
        predict(model, _frames(1), batch_size=0)


@pytest.mark.parametrize("name", ["pair", "egnn", "sevennet"])
def test_energies_without_forces_equal_predicts_energies(name):
    """predict_energies skips the force pass only: its energies are predict's, bit for bit, in float64."""
    hparams = {"hidden_features": 8, "n_layers": 2, "lmax": 1} if name == "sevennet" else {}
    model = build_model(name, [1, 6, 8], seed=0, **hparams).double()
    model.train()
    frames = _frames()
    energies = predict_energies(model, frames, batch_size=4)
    assert np.array_equal(energies, predict(model, frames, batch_size=4)[0])
    assert model.training and energies.shape == (len(frames),)


def test_batches_stop_at_the_pair_budget_and_keep_small_molecules_whole():
    """A batch holds at most batch_size frames and at most MAX_BATCH_PAIRS estimated pairs: 64 molecules of 23 atoms
    stay one batch, 64 of 24 do not; periodic boxes of 192 atoms (60 pairs an atom) go two by two; a frame above
    the budget alone is still a batch."""
    from alloop.potentials.inference import MAX_BATCH_PAIRS, batch_bounds

    def offsets(n_atoms: int, n_frames: int) -> np.ndarray:
        return np.arange(n_frames + 1) * n_atoms

    assert batch_bounds(offsets(23, 64), None, 64) == [(0, 64)]
    assert batch_bounds(offsets(24, 64), None, 64) == [(0, 59), (59, 64)]
    assert batch_bounds(offsets(9, 10), None, 4) == [(0, 4), (4, 8), (8, 10)]
    box = batch_bounds(offsets(192, 5), np.ones(5, dtype=bool), 32)
    assert box == [(0, 2), (2, 4), (4, 5)] and 2 * 192 * 60 <= MAX_BATCH_PAIRS < 3 * 192 * 60
    assert batch_bounds(offsets(3000, 2), np.ones(2, dtype=bool), 32) == [(0, 1), (1, 2)]


def test_periodic_frames_predict_the_same_in_capped_batches():
    """Boxes batched two by two give each frame's own numbers (as one call per frame)."""
    from alloop.testing.cells import water_box

    model = build_model("pair", [1, 8], seed=0).double()
    boxes = [water_box(64, seed=s) for s in range(3)]
    energies, forces = predict(model, boxes, batch_size=32)
    for k, box in enumerate(boxes):
        e, f = predict(model, [box], batch_size=1)
        np.testing.assert_allclose(energies[k], e[0], rtol=1e-10)
        np.testing.assert_allclose(forces[192 * k:192 * (k + 1)], f, atol=1e-10)
