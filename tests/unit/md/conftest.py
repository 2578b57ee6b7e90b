"""Test potentials for MD: a smooth elastic network (stable) and a deliberately broken wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from alloop.potentials.base import AtomsBatch, Potential, PotentialOutput


class SpringPotential(Potential):
    """Harmonic springs on every pair closer than ``reach`` in the reference molecule (an elastic network).

    Features per atom: Gaussian expansion of its springs' extensions (4 channels).
    Smooth and bounded, so NVE conserves energy and MD never blows up.
    """

    registry_name = "test-springs"

    def __init__(self, ref: Atoms, k_eV_A2: float = 20.0, reach: float = 2.6) -> None:
        super().__init__(sorted(set(ref.numbers.tolist())), cutoff=reach)
        d = np.linalg.norm(ref.positions[:, None] - ref.positions[None], axis=-1)
        i, j = np.nonzero(np.triu(d < reach, k=1))
        self.register_buffer("pairs", torch.tensor(np.stack([i, j]), dtype=torch.int64))
        self.register_buffer("d0", torch.tensor(d[i, j], dtype=torch.float64))
        self.k = k_eV_A2
        self.n = len(ref)

    def hyperparameters(self):
        return {}

    @property
    def feature_dim(self) -> int:
        return 4

    def energy_and_features(self, batch: AtomsBatch):
        pos = batch.positions
        n_graphs = batch.n_graphs
        offsets = batch.ptr[:-1]
        i = (self.pairs[0][None, :] + offsets[:, None]).reshape(-1)
        j = (self.pairs[1][None, :] + offsets[:, None]).reshape(-1)
        d = (pos[i] - pos[j]).norm(dim=-1)
        ext = d - self.d0.to(pos.dtype).repeat(n_graphs)
        e_pair = 0.5 * self.k * ext**2
        energy = torch.zeros(n_graphs, dtype=pos.dtype).index_add(0, batch.batch[i], e_pair)
        centers = torch.tensor([-0.2, -0.05, 0.05, 0.2], dtype=pos.dtype)
        g = torch.exp(-(((ext[:, None] - centers) / 0.1) ** 2))
        feats = torch.zeros(pos.shape[0], 4, dtype=pos.dtype).index_add(0, i, g).index_add(0, j, g)
        return energy, feats


class BrokenPotential(Potential):
    """Wraps a potential; on model call number ``at_call`` it corrupts the forces of graph ``graph``."""

    registry_name = "test-broken"

    def __init__(self, inner: Potential, at_call: int, graph: int, mode: str = "nan") -> None:
        super().__init__(inner.elements, inner.cutoff)
        self.inner, self.at_call, self.graph, self.mode = inner, at_call, graph, mode
        self.calls = 0

    def hyperparameters(self):
        return {}

    @property
    def feature_dim(self) -> int:
        return self.inner.feature_dim

    def energy_and_features(self, batch):
        return self.inner.energy_and_features(batch)

    def forward(self, batch, *, compute_forces=True, create_graph=False) -> PotentialOutput:
        out = self.inner(batch, compute_forces=compute_forces, create_graph=create_graph)
        self.calls += 1
        if self.calls == self.at_call:
            a, b = int(batch.ptr[self.graph]), int(batch.ptr[self.graph + 1])
            forces = out.forces.clone()
            if self.mode == "nan":
                forces[a:b] = float("nan")
            else:
                forces[a:b] = 1e4 * torch.randn(b - a, 3, dtype=forces.dtype, generator=torch.Generator().manual_seed(0))
            out = PotentialOutput(out.energy, forces, out.features)
        return out


@pytest.fixture
def springs(ethanol):
    return SpringPotential(ethanol).double()


@pytest.fixture
def spring_factory():
    return SpringPotential


@pytest.fixture
def broken_factory():
    return BrokenPotential
