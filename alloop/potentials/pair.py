"""A small learnable pair potential: a cheap, fully differentiable Potential.

E = sum over pairs i<j of sum_k w_k(z_i, z_j) phi_k(r_ij) f_cut(r_ij), with
Gaussian radial functions phi_k and a cosine cutoff. Per-atom features are
the radial functions summed over neighbours, per neighbour element. It is not
meant to be accurate; it is the fast model for tests of MD, uncertainty and
training code, and the simplest example of the Potential protocol.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from alloop.potentials.base import AtomsBatch, Potential
from alloop.potentials.neighbors import neighbor_pairs


def cosine_cutoff(dist: torch.Tensor, cutoff: float) -> torch.Tensor:
    return 0.5 * (torch.cos(math.pi * dist / cutoff) + 1.0) * (dist < cutoff)


class PairPotential(Potential):
    registry_name = "pair"
    element_index: torch.Tensor  # buffer [MAX_Z + 1] int64
    centers: torch.Tensor  # buffer [n_radial]

    def __init__(self, elements: Sequence[int], cutoff: float = 4.0, n_radial: int = 8, seed: int = 0) -> None:
        super().__init__(elements, cutoff)
        self.n_radial = int(n_radial)
        self.seed = int(seed)
        n_el = len(self.elements)
        index = torch.full((119,), -1, dtype=torch.int64)
        index[list(self.elements)] = torch.arange(n_el)
        self.register_buffer("element_index", index)
        self.register_buffer("centers", torch.linspace(0.6, cutoff, self.n_radial))
        self.width = (cutoff - 0.6) / self.n_radial
        gen = torch.Generator().manual_seed(self.seed)
        self.weights = torch.nn.Parameter(0.01 * torch.randn(n_el, n_el, self.n_radial, generator=gen))

    def hyperparameters(self) -> dict[str, Any]:
        return {"elements": list(self.elements), "cutoff": self.cutoff, "n_radial": self.n_radial, "seed": self.seed}

    @property
    def feature_dim(self) -> int:
        return len(self.elements) * self.n_radial

    def energy_and_features(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_elements(batch)
        edge_index, _, dist = neighbor_pairs(batch, self.cutoff)
        src, dst = edge_index
        phi = torch.exp(-(((dist[:, None] - self.centers.to(dist.dtype)) / self.width) ** 2))
        phi = phi * cosine_cutoff(dist, self.cutoff)[:, None]
        ei = self.element_index[batch.numbers]
        w = self.weights.to(dist.dtype)
        sym = 0.5 * (w + w.transpose(0, 1))
        pair_energy = (sym[ei[dst], ei[src]] * phi).sum(-1)
        atom_energy = torch.zeros(batch.numbers.numel(), dtype=dist.dtype, device=dist.device)
        atom_energy = atom_energy.index_add(0, dst, 0.5 * pair_energy)
        energy = torch.zeros(batch.n_graphs, dtype=dist.dtype, device=dist.device).index_add(0, batch.batch, atom_energy)
        n_el = len(self.elements)
        feats = torch.zeros(batch.numbers.numel(), n_el, self.n_radial, dtype=dist.dtype, device=dist.device)
        feats = feats.index_put((dst, ei[src]), phi, accumulate=True)
        return energy, feats.reshape(batch.numbers.numel(), -1)
