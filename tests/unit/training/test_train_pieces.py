"""A training step's batch runs in pieces of bounded neighbour pairs: the same gradient, less memory at a time."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator

from alloop.potentials.inference import batch_bounds
from alloop.potentials.registry import build_model, model_preset
from alloop.testing.cells import water_box
from alloop.training import epochs
from alloop.training.data import FrameDataset
from alloop.training.epochs import MAX_TRAIN_PAIRS, backward_in_pieces
from alloop.training.settings import TrainSettings
from alloop.training.trainer import train


def _boxes(n: int, waters: int = 4) -> list:
    """``n`` water boxes with made-up labels (the test compares gradients, not physics)."""
    rng = np.random.default_rng(7)
    frames = []
    for seed in range(n):
        box = water_box(waters, seed=seed)
        box.calc = SinglePointCalculator(box, energy=float(rng.normal(-10, 1)),
                                         forces=rng.normal(0, 0.5, (len(box), 3)))
        frames.append(box)
    return frames


def _model() -> torch.nn.Module:
    return build_model(elements=[1, 8], **{**model_preset("small"), "dtype": "float64", "n_layers": 2})


def _gradients(model: torch.nn.Module, batch, pieces_pairs: int, monkeypatch) -> tuple[float, list[torch.Tensor]]:
    monkeypatch.setattr(epochs, "MAX_TRAIN_PAIRS", pieces_pairs)
    model.zero_grad(set_to_none=True)
    loss = backward_in_pieces(model, batch, TrainSettings(max_steps=1, batch_size=3, loss="mae", energy_weight=0.1),
                              normalizer=3.0)
    return loss, [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def _replay_mask(batch):
    """The batch with its middle frame's energy out of the loss (a replay frame), so the mask is sliced too."""
    return replace(batch, energy_mask=torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64))


def test_a_batch_in_pieces_gives_the_whole_batchs_loss_and_gradient(monkeypatch):
    data = FrameDataset.from_atoms(_boxes(3))
    batch = _replay_mask(next(data.batches(3, dtype=torch.float64)))
    model = _model()
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(args[0].n_graphs))
    whole_loss, whole = _gradients(model, batch, 10**9, monkeypatch)
    assert calls == [3]
    calls.clear()
    piece_loss, pieces = _gradients(model, batch, 1, monkeypatch)  # every frame its own piece
    assert calls == [1, 1, 1]
    assert piece_loss == pytest.approx(whole_loss, rel=1e-12)
    assert len(pieces) == len(whole) > 0
    for a, b in zip(whole, pieces, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_frames_of_a_batch_are_its_own_rows():
    data = FrameDataset.from_atoms(_boxes(3, waters=2) + _boxes(1, waters=3))
    batch = next(data.batches(4, dtype=torch.float64))
    piece = batch.frames(1, 3)
    own = data.batch(np.asarray([1, 2]), dtype=torch.float64)
    for name in ("numbers", "positions", "batch", "ptr", "cell", "pbc"):
        assert torch.equal(getattr(piece.atoms, name), getattr(own.atoms, name)), name
    assert torch.equal(piece.energy, own.energy) and torch.equal(piece.forces, own.forces)
    assert torch.equal(piece.index, own.index) and torch.equal(piece.weight, own.weight)


def test_training_in_pieces_ends_at_the_same_weights(monkeypatch):
    data = FrameDataset.from_atoms(_boxes(4))
    weights = []
    for pairs in (10**9, 1):
        monkeypatch.setattr(epochs, "MAX_TRAIN_PAIRS", pairs)
        model = _model()
        torch.manual_seed(0)
        train(model, data, data, TrainSettings(max_steps=4, batch_size=4, lr=1e-3, seed=3, ema_decay=None))
        weights.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-8, atol=1e-10)


def test_the_pair_bound_cuts_big_boxes_and_keeps_molecule_batches():
    box = len(water_box(64)) * 60  # estimated pairs of one 64-water frame
    offsets = np.arange(5) * len(water_box(64))
    assert batch_bounds(offsets, np.ones(4, bool), 4, max_pairs=MAX_TRAIN_PAIRS) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert box <= MAX_TRAIN_PAIRS < 2 * box
    ethanols = np.arange(33) * 9
    assert batch_bounds(ethanols, None, 32, max_pairs=MAX_TRAIN_PAIRS) == [(0, 32)]
