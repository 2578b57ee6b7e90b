"""Neighbour search: brute-force and cell-list paths agree, gradients reach positions."""

from __future__ import annotations

import numpy as np
import torch

from alloop.potentials.base import AtomsBatch
from alloop.potentials.neighbors import neighbor_pairs


def _random_molecule(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.choice([1, 6, 8], size=n), rng.uniform(0, (n / 0.05) ** (1 / 3), size=(n, 3))


def _edges(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.T.tolist()))


def test_cell_list_path_matches_brute_force():
    rng = np.random.default_rng(0)
    mols = [_random_molecule(n, rng) for n in (5, 60, 12, 45)]
    batch = AtomsBatch.from_arrays(
        np.concatenate([m[0] for m in mols]), np.concatenate([m[1] for m in mols]), [len(m[0]) for m in mols],
        dtype=torch.float64,
    )
    brute_index, brute_vec, brute_dist = neighbor_pairs(batch, 3.0)
    cell_index, cell_vec, cell_dist = neighbor_pairs(batch, 3.0, brute_force_max_atoms=10)  # 3 of 4 via vesin
    assert len(brute_dist) > 100 and _edges(brute_index) == _edges(cell_index)
    assert len(cell_dist) == len(brute_dist) and float(cell_dist.max()) < 3.0
    src, dst = cell_index
    assert bool((batch.batch[src] == batch.batch[dst]).all())  # no pair across molecules
    assert torch.allclose(cell_vec, batch.positions[src] - batch.positions[dst])
    pos = batch.positions.numpy()
    expected = sum(
        int(((np.linalg.norm(pos[a:b, None] - pos[None, a:b], axis=-1) < 3.0).sum()) - (b - a))
        for a, b in zip(batch.ptr[:-1].tolist(), batch.ptr[1:].tolist(), strict=True)
    )
    assert expected == len(brute_dist)


def test_gradients_flow_to_positions_on_both_paths():
    rng = np.random.default_rng(1)
    numbers, positions = _random_molecule(30, rng)
    for threshold in (400, 5):
        pos = torch.tensor(positions, requires_grad=True)
        batch = AtomsBatch(numbers=torch.tensor(numbers), positions=pos, batch=torch.zeros(30, dtype=torch.int64),
                           ptr=torch.tensor([0, 30]))
        _, _, dist = neighbor_pairs(batch, 4.0, brute_force_max_atoms=threshold)
        (grad,) = torch.autograd.grad(dist.sum(), pos)
        assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
