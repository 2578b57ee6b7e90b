import numpy as np
import torch
from ase.build import molecule

from alloop.potentials.base import AtomsBatch
from alloop.potentials.neighbors import neighbor_pairs
from alloop.potentials.pair import PairPotential


def _energy(model, atoms):
    return model(AtomsBatch.from_atoms([atoms], dtype=torch.float64)).energy.item()


def test_forces_match_finite_differences(ethanol):
    model = PairPotential([1, 6, 8], seed=3).double()
    out = model(AtomsBatch.from_atoms([ethanol], dtype=torch.float64))
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (8, 2)]:
        plus, minus = ethanol.copy(), ethanol.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        fd = -(_energy(model, plus) - _energy(model, minus)) / (2 * h)
        assert abs(fd - out.forces[atom, axis].item()) < 1e-7


def test_batched_equals_one_by_one(water, ethanol):
    model = PairPotential([1, 6, 8], seed=1).double()
    mols = [ethanol, water, molecule("CH4"), ethanol]
    out = model(AtomsBatch.from_atoms(mols, dtype=torch.float64))
    start = 0
    for k, mol in enumerate(mols):
        single = model(AtomsBatch.from_atoms([mol], dtype=torch.float64))
        assert torch.allclose(out.energy[k], single.energy[0], atol=1e-12)
        assert torch.allclose(out.forces[start : start + len(mol)], single.forces, atol=1e-12)
        assert torch.allclose(out.features[start : start + len(mol)], single.features, atol=1e-12)
        start += len(mol)


def test_reference_energies_are_added(water):
    model = PairPotential([1, 8]).double()
    e0 = _energy(model, water)
    model.atomic_energies[1] = -13.6
    model.atomic_energies[8] = -2000.0
    assert abs(_energy(model, water) - (e0 - 2 * 13.6 - 2000.0)) < 1e-9


def test_neighbor_pairs_match_brute_force(water, ethanol):
    batch = AtomsBatch.from_atoms([ethanol, water], dtype=torch.float64)
    edge_index, vec, dist = neighbor_pairs(batch, 2.0)
    pos = batch.positions.numpy()
    expected = set()
    for a, b in [(0, 9), (9, 12)]:
        for i in range(a, b):
            for j in range(a, b):
                if i != j and np.linalg.norm(pos[i] - pos[j]) < 2.0:
                    expected.add((j, i))
    got = set(map(tuple, edge_index.T.tolist()))
    assert got == expected
    assert torch.allclose(dist, vec.norm(dim=-1))
