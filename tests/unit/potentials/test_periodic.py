"""Periodic graphs: the neighbour search against ASE's, and the conformance kit's periodic checks for every model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.neighborlist import neighbor_list

from alloop.potentials.base import AtomsBatch
from alloop.potentials.egnn import EGNN
from alloop.potentials.neighbors import neighbor_pairs
from alloop.potentials.pair import PairPotential
from alloop.potentials.registry import build_model, model_preset
from alloop.testing.cells import water_box
from alloop.testing.potentials import check_potential


def _rattled_box(n: int, seed: int):
    box = water_box(n, seed=seed)
    box.rattle(0.05, seed=seed)
    box.positions[0] += box.cell[0] * 0.5  # an atom outside [0, L): positions need not be wrapped
    return box


@pytest.fixture(scope="module")
def cells():
    small = _rattled_box(1, seed=1)  # 3.1 A box: with a 5 A cutoff every atom sees its own images
    return [_rattled_box(4, seed=2), small]


@pytest.fixture(scope="module")
def molecules():
    return [molecule("H2O"), molecule("CH3CH2OH"), molecule("CH4")]


@pytest.mark.parametrize("cutoff", [2.5, 5.0])
def test_pairs_equal_ase_neighbour_list(cells, cutoff):
    batch = AtomsBatch.from_atoms([*cells, molecule("CH3CH2OH")], dtype=torch.float64)
    edge_index, vec, dist = neighbor_pairs(batch, cutoff)
    offset = 0
    got = sorted(zip(edge_index[1].tolist(), np.round(dist.numpy(), 9).tolist(), strict=True))
    want = []
    for atoms in [*cells, molecule("CH3CH2OH")]:
        i, d = neighbor_list("id", atoms, cutoff)
        want += [(int(a) + offset, round(float(x), 9)) for a, x in zip(i, d, strict=True) if x < cutoff]
        offset += len(atoms)
    assert got == sorted(want)
    assert (dist > 0).all() and vec.shape == (dist.numel(), 3)
    if cutoff == 5.0:  # the one-water cell: an atom paired with its own image
        lo = sum(len(c) for c in cells[:1])
        assert bool(((edge_index[0] == edge_index[1]) & (edge_index[0] >= lo)).any())


def test_a_periodic_graph_needs_a_volume():
    box = water_box(1)
    box.set_cell(np.zeros((3, 3)))
    box.pbc = True
    with pytest.raises(ValueError, match="positive volume"):
        neighbor_pairs(AtomsBatch.from_atoms([box], dtype=torch.float64), 3.0)


def test_batch_keeps_cell_and_pbc(cells):
    batch = AtomsBatch.from_atoms([cells[0], molecule("H2O")])
    assert batch.periodic and batch.cell.shape == (2, 3, 3) and batch.pbc.tolist()[1] == [False] * 3
    back = batch.to(torch.float64).to_atoms()
    np.testing.assert_allclose(back[0].cell.array, cells[0].cell.array, rtol=1e-6)
    assert back[0].pbc.all() and not back[1].pbc.any()
    assert AtomsBatch.from_atoms([molecule("H2O")]).cell is None


@pytest.mark.parametrize("cutoff", [2.5, 5.0])
def test_egnn_periodic_conformance(cells, molecules, cutoff):
    model = EGNN([1, 6, 8], hidden_features=16, n_layers=2, n_rbf=8, cutoff=cutoff, seed=1)
    report = check_potential(model, molecules, seed=4, periodic=cells)
    assert "periodic cells" in report.checks and report.max_periodic_error < 1e-9


def test_pair_and_small_preset_periodic_conformance(cells, molecules):
    check_potential(PairPotential([1, 6, 8], seed=2), molecules, periodic=cells)
    check_potential(build_model(elements=[1, 6, 8], **model_preset("small")), molecules[:2], periodic=cells[:1])


def test_sevennet_periodic_conformance(cells, molecules):
    model = build_model(elements=[1, 6, 8], **model_preset("sevennet-small"))
    check_potential(model, molecules[:2], seed=5, periodic=cells[:1], invariant_features=False)
