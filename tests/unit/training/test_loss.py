import numpy as np
import pytest
import torch

from alloop.potentials.pair import PairPotential
from alloop.training.data import FrameDataset
from alloop.training.loss import eq1_loss, per_frame_losses, weighted_loss


def _grads(model, batch, weight, kind, normalizer=None):
    model.zero_grad()
    out = model(batch.atoms, create_graph=True)
    loss = eq1_loss(out.energy, out.forces, batch.energy, batch.forces, batch.atoms.batch, batch.n_atoms,
                    weight=weight, energy_weight=0.1, kind=kind, normalizer=normalizer)
    loss.backward()
    return model.weights.grad.clone(), loss.detach()


@pytest.mark.parametrize("kind", ["mae", "mse"])
def test_weights_change_the_gradient(mixed_frames, kind):
    model = PairPotential([1, 6, 8], seed=2).double()
    batch = FrameDataset.from_atoms(mixed_frames[:4]).batch([0, 1, 2, 3], dtype=torch.float64)
    g_uniform, _ = _grads(model, batch, torch.ones(4, dtype=torch.float64), kind)
    g_weighted, _ = _grads(model, batch, torch.tensor([1.0, 0.01, 1.0, 3.0], dtype=torch.float64), kind)
    assert not torch.allclose(g_uniform, g_weighted, rtol=1e-3)
    # a zero weight removes a frame exactly: same gradient as the batch without it
    g_zero, _ = _grads(model, batch, torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64), kind)
    sub = FrameDataset.from_atoms(mixed_frames[:4]).batch([0, 2, 3], dtype=torch.float64)
    g_sub, _ = _grads(model, sub, torch.ones(3, dtype=torch.float64), kind)
    assert torch.allclose(g_zero, g_sub, atol=1e-12)


@pytest.mark.parametrize("kind", ["mae", "mse"])
def test_unit_weights_equal_unweighted(mixed_frames, kind):
    model = PairPotential([1, 6, 8], seed=2).double()
    batch = FrameDataset.from_atoms(mixed_frames[:5]).batch(range(5), dtype=torch.float64)
    g_none, l_none = _grads(model, batch, None, kind)
    g_ones, l_ones = _grads(model, batch, torch.ones(5, dtype=torch.float64), kind)
    assert torch.equal(l_none, l_ones) and torch.allclose(g_none, g_ones, atol=0, rtol=0)


def test_weights_matter_with_batch_size_one_given_a_dataset_normaliser(mixed_frames):
    model = PairPotential([1, 6, 8], seed=2).double()
    batch = FrameDataset.from_atoms(mixed_frames[:1]).batch([0], dtype=torch.float64)
    g1, _ = _grads(model, batch, torch.tensor([1.0], dtype=torch.float64), "mae", normalizer=0.5)
    g2, _ = _grads(model, batch, torch.tensor([0.1], dtype=torch.float64), "mae", normalizer=0.5)
    assert torch.allclose(g2, 0.1 * g1, atol=1e-14)


@pytest.mark.parametrize("kind", ["mae", "mse"])
def test_per_frame_losses_with_molecules_of_different_sizes(mixed_frames, kind):
    data = FrameDataset.from_atoms(mixed_frames[:4])  # 3, 5, 9 and 2 atoms
    model = PairPotential([1, 6, 8], seed=5).double()
    batch = data.batch(range(4), dtype=torch.float64)
    out = model(batch.atoms)
    lf, le = per_frame_losses(out.energy, out.forces, batch.energy, batch.forces, batch.atoms.batch, batch.n_atoms, kind)
    fn = np.abs if kind == "mae" else np.square
    for j in range(4):
        single = model(data.batch([j], dtype=torch.float64).atoms)
        s = data.frame_slice(j)
        expected_f = fn(single.forces.detach().numpy() - data.forces[s]).mean()
        expected_e = fn((single.energy.item() - data.energy[j]) / data.sizes[j])
        assert lf[j].item() == pytest.approx(expected_f, rel=1e-10)
        assert le[j].item() == pytest.approx(expected_e, rel=1e-10)
    total = weighted_loss(lf, le, torch.tensor([1.0, 2.0, 0.5, 0.0], dtype=torch.float64), 0.2)
    frame = 0.8 * lf + 0.2 * le
    assert total.item() == pytest.approx(((frame[0] + 2 * frame[1] + 0.5 * frame[2]) / 3.5).item(), rel=1e-12)
