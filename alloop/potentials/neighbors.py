"""Neighbour pairs within a cutoff for batches of molecules, in plain torch.

All intra-molecule pairs are enumerated without a Python loop (sum of n_b^2
candidates), then filtered by distance. Right for molecules of up to a few
hundred atoms; no periodic images.
"""

from __future__ import annotations

import torch

from alloop.potentials.base import AtomsBatch


def candidate_pairs(batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (i, j), i != j, of every ordered pair of atoms in the same molecule."""
    sizes = batch.n_atoms
    counts = sizes * sizes
    graph = torch.repeat_interleave(torch.arange(sizes.numel(), device=sizes.device), counts)
    pair_offsets = torch.cumsum(counts, 0) - counts
    local = torch.arange(int(counts.sum()), device=sizes.device) - pair_offsets[graph]
    n = sizes[graph]
    start = batch.ptr[:-1][graph]
    i = start + torch.div(local, n, rounding_mode="floor")
    j = start + local % n
    keep = i != j
    return i[keep], j[keep]


def neighbor_pairs(
    batch: AtomsBatch, cutoff: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Edges within ``cutoff`` (Angstrom): edge_index [2, E] (source j -> target i), vectors r_j - r_i [E, 3], distances [E].

    Vectors and distances carry gradients with respect to ``batch.positions``.
    """
    i, j = candidate_pairs(batch)
    with torch.no_grad():
        d = (batch.positions[j] - batch.positions[i]).norm(dim=-1)
        mask = d < cutoff
    i, j = i[mask], j[mask]
    vec = batch.positions[j] - batch.positions[i]
    dist = vec.norm(dim=-1)
    return torch.stack([j, i]), vec, dist
