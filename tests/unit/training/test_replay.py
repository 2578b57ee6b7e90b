"""Replay: the batch rule, force-only replay frames, and fraction 0 leaving training exactly as it was."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from training_synthetic import label_frames, perturbed

from alloop.errors import AlloopError
from alloop.potentials.pair import PairPotential
from alloop.system.outside import outside_molecules, replay_structures
from alloop.training.asteroid import train_asteroid
from alloop.training.data import FrameDataset
from alloop.training.loss import eq1_loss
from alloop.training.metrics import pseudo_labelled
from alloop.training.replay import ReplayMix, replay_per_batch
from alloop.training.stages import AsteroidSettings
from alloop.training.trainer import TrainSettings, parameter_fingerprint, train

CHO = [1, 6, 8]


@pytest.fixture
def data(truth):
    return FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH3OH"], 14, seed=3), truth), fidelity="synthetic")


@pytest.fixture
def pool():
    """Outside frames labelled by an 'original' model (a PairPotential of another seed)."""
    original = PairPotential(CHO, cutoff=4.0, seed=7).double()
    return pseudo_labelled(original, replay_structures(outside_molecules(CHO, exclude=[(1, 1, 8)]), seed=0, n_frames=9))


@pytest.mark.parametrize("fraction, batch_size, expected", [
    (0.0, 8, 0), (0.25, 8, 2), (0.25, 4, 1), (0.25, 2, 1), (0.1, 4, 1), (0.5, 2, 1), (0.5, 5, 3), (0.9, 4, 3),
    (0.3, 10, 3), (0.35, 10, 4),
])
def test_replay_frames_per_batch(fraction, batch_size, expected):
    assert replay_per_batch(fraction, batch_size) == expected


def test_impossible_replay_settings_are_refused():
    for fraction in (1.0, -0.1):
        with pytest.raises(AlloopError, match="replay_fraction must be in"):
            replay_per_batch(fraction, 8)
    with pytest.raises(AlloopError, match="at least 2 frames"):
        TrainSettings(max_steps=1, batch_size=1, replay_fraction=0.25)


def test_each_batch_holds_the_rule_s_replay_frames_with_zero_energy_weight(data, pool):
    mix = ReplayMix(data, pool, fraction=0.25, batch_size=4)
    assert (mix.n_replay, mix.per_batch, mix.n_batches) == (1, 3, math.ceil(len(data) / 3))
    batches = list(mix.batches(torch.float64, seed=5))
    assert len(batches) == mix.n_batches
    own, replayed = [], []
    for batch in batches:
        is_replay = batch.index.numpy() >= len(data)
        assert int(is_replay.sum()) == 1  # every batch, the last (short) one included
        assert torch.equal(batch.energy_mask, torch.as_tensor(~is_replay, dtype=torch.float64))
        assert torch.allclose(batch.weight[is_replay], torch.tensor(float(data.weight.mean()), dtype=torch.float64))
        own += batch.index.numpy()[~is_replay].tolist()
        replayed += (batch.index.numpy()[is_replay] - len(data)).tolist()
    # one pass over the training set in the order the batches without replay take
    assert own == np.random.default_rng(5).permutation(len(data)).tolist()
    assert len(set(replayed)) == len(replayed)  # drawn without replacement (5 draws from 9)
    # the replay frames are the pool's, with the original's forces
    batch = batches[0]
    k = int(np.flatnonzero(batch.index.numpy() >= len(data))[0])
    rows = slice(int(batch.atoms.ptr[k]), int(batch.atoms.ptr[k + 1]))
    j = int(batch.index[k]) - len(data)
    assert np.allclose(batch.forces[rows].numpy(), pool.forces[pool.frame_slice(j)])
    assert np.allclose(batch.atoms.positions[rows].numpy(), pool.positions[pool.frame_slice(j)])


def test_a_masked_frame_counts_by_its_forces_only(data):
    batch = data.batch([0, 1, 2], dtype=torch.float64)
    model = PairPotential(CHO, cutoff=4.0, seed=1).double()
    out = model(batch.atoms, compute_forces=True)
    mask = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)

    def loss(energy, forces):
        return float(eq1_loss(out.energy.detach(), out.forces.detach(), energy, forces, batch.atoms.batch, batch.n_atoms,
                              energy_weight=0.5, kind="mse", energy_mask=mask))

    base = loss(batch.energy, batch.forces)
    shifted = batch.energy.clone()
    shifted[1] += 100.0
    assert loss(shifted, batch.forces) == base  # the masked frame's energy does not count
    shifted[0] += 1.0
    assert loss(shifted, batch.forces) != base  # the others' do
    forces = batch.forces.clone()
    forces[int(batch.atoms.ptr[1])] += 1.0
    assert loss(batch.energy, forces) > base  # the masked frame's forces do


def _trained(data, settings, replay=None, seed=1):
    tr, va, _, _ = data.split(0.25, 0)
    model = PairPotential(CHO, cutoff=4.0, seed=seed).double()
    result = train(model, tr, va, settings, replay=replay)
    return model, result


def test_fraction_zero_is_training_without_replay_and_replay_changes_it(data, pool):
    settings = TrainSettings(max_steps=12, batch_size=4, seed=2)
    plain, plain_result = _trained(data, settings)
    zero, zero_result = _trained(data, settings, replay=pool)  # a pool but fraction 0: ignored
    assert parameter_fingerprint(zero) == parameter_fingerprint(plain)
    assert plain_result.replay_per_batch == zero_result.replay_per_batch == 0
    mixed, result = _trained(data, TrainSettings(max_steps=12, batch_size=4, seed=2, replay_fraction=0.25), replay=pool)
    assert result.replay_per_batch == 1 and result.steps == 12
    assert parameter_fingerprint(mixed) != parameter_fingerprint(plain)
    # the pool's energies never count: shifting them by 100 eV changes nothing, bit for bit
    shifted = FrameDataset(pool.numbers, pool.positions, pool.offsets, energy=pool.energy + 100.0, forces=pool.forces,
                           fidelity=pool.fidelity)
    again, _ = _trained(data, TrainSettings(max_steps=12, batch_size=4, seed=2, replay_fraction=0.25), replay=shifted)
    assert parameter_fingerprint(again) == parameter_fingerprint(mixed)
    # an epoch is one pass over the training frames, b - r of them per step
    _, epoch = _trained(data, TrainSettings(max_epochs=1, batch_size=4, seed=2, replay_fraction=0.25), replay=pool)
    assert epoch.steps == math.ceil(len(data.split(0.25, 0)[0]) / 3)


def test_replay_needs_a_labelled_pool_of_known_elements(data, pool):
    settings = TrainSettings(max_steps=2, batch_size=4, replay_fraction=0.5)
    with pytest.raises(AlloopError, match="needs a replay pool"):
        _trained(data, settings)
    tr, va, _, _ = data.split(0.25, 0)
    with pytest.raises(AlloopError, match="elements \\[6\\]"):
        train(PairPotential([1, 8], cutoff=4.0).double(), tr.subset([0]), va.subset([0]), settings, replay=pool)


def test_every_supervised_asteroid_stage_replays(data, pool, truth):
    cheap = FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH3OH"], 12, seed=4), truth), fidelity="cheap")
    stage = TrainSettings(max_steps=3, batch_size=4, replay_fraction=0.5)
    settings = AsteroidSettings(stage1=stage, stage2=stage, stage3=stage)

    def factory():
        return PairPotential(CHO, cutoff=4.0, seed=1).double()

    result = train_asteroid("asteroid", data, cheap, model_factory=factory, settings=settings, replay=pool)
    assert {name: r.replay_per_batch for name, r in result.stages.items()} == {"stage1": 2, "stage2": 2, "stage3": 2}
    standard = train_asteroid("standard", data, model_factory=factory, settings=settings, replay=pool)
    assert standard.stages["stage1"].replay_per_batch == 2
