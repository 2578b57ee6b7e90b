"""Neighbour pairs within a cutoff for batches of molecules and periodic cells.

Small molecules (the common case: a batch of many replicas of a few dozen
atoms) are handled together in plain torch by enumerating every ordered
intra-molecule pair (sum of n_b^2 candidates, no Python loop) and filtering by
distance. Molecules above ``BRUTE_FORCE_MAX_ATOMS`` atoms use vesin-torch's
cell list, one call per large molecule, which scales linearly. Either way the
pair indices are found without gradients and the vectors are recomputed from
``batch.positions``, so they carry gradients with respect to positions.

A periodic graph (``batch.pbc``, ``batch.cell``) gets its pairs from
vesin-torch's periodic cell list, one call per graph: every image of j within
the cutoff of i, including an atom's own images when the cell is shorter than
the cutoff; an edge's vector is r_j - r_i + S @ cell with S its integer
lattice shift. Positions need not be wrapped into the cell.
"""

from __future__ import annotations

import torch

from alloop.potentials.base import AtomsBatch

BRUTE_FORCE_MAX_ATOMS = 400


def _all_pairs(sizes: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ordered pairs (i, j), i != j, of atoms within each block [start, start + size)."""
    counts = sizes * sizes
    block = torch.repeat_interleave(torch.arange(sizes.numel(), device=sizes.device), counts)
    pair_offsets = torch.cumsum(counts, 0) - counts
    local = torch.arange(int(counts.sum()), device=sizes.device) - pair_offsets[block]
    n = sizes[block]
    start = starts[block]
    i = start + torch.div(local, n, rounding_mode="floor")
    j = start + local % n
    keep = i != j
    return i[keep], j[keep]


def candidate_pairs(batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (i, j), i != j, of every ordered pair of atoms in the same molecule."""
    return _all_pairs(batch.n_atoms, batch.ptr[:-1])


def _within(positions: torch.Tensor, i: torch.Tensor, j: torch.Tensor, cutoff: float) -> torch.Tensor:
    d = (positions[j] - positions[i]).norm(dim=-1)
    return d < cutoff


def _cell_list_pairs(
    positions: torch.Tensor, start: int, stop: int, cutoff: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ordered pairs of one large molecule from vesin-torch (indices only)."""
    from vesin_torch import NeighborList

    points = positions[start:stop].to(device="cpu")
    box = torch.zeros(3, 3, dtype=points.dtype)
    i, j = NeighborList(cutoff=cutoff, full_list=True).compute(points, box, False, "ij")
    i, j = i.to(positions.device) + start, j.to(positions.device) + start
    keep = _within(positions, i, j, cutoff)  # the same strict "< cutoff" as the brute-force path
    return i[keep], j[keep]


def neighbor_list(
    batch: AtomsBatch, cutoff: float, *, brute_force_max_atoms: int = BRUTE_FORCE_MAX_ATOMS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Pairs within ``cutoff`` (Angstrom), found without gradients: centre atoms i [E], neighbours j [E] and the
    Cartesian periodic shift of each pair [E, 3] (S @ cell, Angstrom; None for a batch without periodic graphs), so
    that r_j - r_i + shift is the vector from i to the neighbour's image."""
    periodic = (batch.pbc.any(dim=1) if batch.pbc is not None and batch.periodic
                else torch.zeros(batch.n_graphs, dtype=torch.bool))
    sizes, starts = batch.n_atoms, batch.ptr[:-1]
    with torch.no_grad():
        positions = batch.positions.detach()
        i, j = _molecular_pairs(positions, sizes[~periodic], starts[~periodic], cutoff, brute_force_max_atoms)
        if not bool(periodic.any()):
            return i, j, None
        assert batch.cell is not None and batch.pbc is not None  # a periodic batch has both
        parts = [(i, j, torch.zeros(i.numel(), 3, dtype=positions.dtype, device=positions.device))]
        for g in torch.nonzero(periodic).flatten().tolist():
            start, stop = int(batch.ptr[g]), int(batch.ptr[g + 1])
            parts.append(_periodic_pairs(positions, start, stop, batch.cell[g], batch.pbc[g], cutoff))
        i, j, shifts = (torch.cat(p) for p in zip(*parts, strict=True))
    return i, j, shifts


def neighbor_pairs(
    batch: AtomsBatch, cutoff: float, *, brute_force_max_atoms: int = BRUTE_FORCE_MAX_ATOMS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Edges within ``cutoff`` (Angstrom): edge_index [2, E] (source j -> target i), vectors r_j - r_i (+ the
    periodic shift) [E, 3], distances [E].

    Vectors and distances carry gradients with respect to ``batch.positions``.
    Molecules with more than ``brute_force_max_atoms`` atoms use a cell list; periodic graphs always do.
    """
    i, j, shifts = neighbor_list(batch, cutoff, brute_force_max_atoms=brute_force_max_atoms)
    vec = batch.positions[j] - batch.positions[i]
    if shifts is not None:
        vec = vec + shifts
    return torch.stack([j, i]), vec, vec.norm(dim=-1)


def _molecular_pairs(
    positions: torch.Tensor, sizes: torch.Tensor, starts: torch.Tensor, cutoff: float, brute_force_max_atoms: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ordered pairs within ``cutoff`` inside each molecule [start, start + size), no images."""
    small = sizes <= brute_force_max_atoms
    i, j = _all_pairs(sizes[small], starts[small])
    mask = _within(positions, i, j, cutoff)
    i, j = i[mask], j[mask]
    if bool(small.all()):
        return i, j
    parts_i, parts_j = [i], [j]
    for start, size in zip(starts[~small].tolist(), sizes[~small].tolist(), strict=True):
        bi, bj = _cell_list_pairs(positions, start, start + size, cutoff)
        parts_i.append(bi)
        parts_j.append(bj)
    return torch.cat(parts_i), torch.cat(parts_j)


def _periodic_pairs(
    positions: torch.Tensor, start: int, stop: int, cell: torch.Tensor, pbc: torch.Tensor, cutoff: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs (i, j) of one periodic graph with the Cartesian shift S @ cell of each (Angstrom)."""
    from vesin_torch import NeighborList

    box = cell.detach().to(device="cpu", dtype=positions.dtype)
    if not abs(float(torch.linalg.det(box.double()))) > 1e-9:
        raise ValueError("a periodic structure needs a cell of positive volume")
    points = positions[start:stop].to(device="cpu")
    i, j, s = NeighborList(cutoff=cutoff, full_list=True).compute(points, box, pbc.to("cpu"), "ijS")
    shift = (s.to(box.dtype) @ box).to(positions.device)
    i, j = i.to(positions.device) + start, j.to(positions.device) + start
    keep = (positions[j] - positions[i] + shift).norm(dim=-1) < cutoff  # strict, as for molecules
    return i[keep], j[keep], shift[keep]
