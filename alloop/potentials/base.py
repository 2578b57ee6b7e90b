"""The Potential protocol: energy per structure, forces = -dE/dx, per-atom latent features.

A model implements one method, :meth:`Potential.energy_and_features`, on an
:class:`AtomsBatch` of molecules of any sizes; the base class adds the
per-element reference energies of its target fidelity and computes forces by
autograd, so every Potential is energy-conserving by construction.
Units: positions in Angstrom, energies in eV, forces in eV/Angstrom.
A batch may hold periodic structures (a cell and pbc per graph): the
neighbour search (:mod:`alloop.potentials.neighbors`) then adds the periodic
images, so every model built on it is periodic too.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from ase import Atoms

from alloop.errors import AlloopError

MAX_Z = 118


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype of a model's first floating-point parameter (float64 for a model without parameters)."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float64


@dataclass(frozen=True)
class AtomsBatch:
    """Several structures concatenated: per-atom arrays plus the graph index of each atom.

    ``cell`` ([B, 3, 3], Angstrom, rows are the lattice vectors) and ``pbc`` ([B, 3] bool) are None for a batch
    of molecules; a batch with any periodic structure has both (a molecule's rows: zero cell, no pbc).
    """

    numbers: torch.Tensor  # [N] int64
    positions: torch.Tensor  # [N, 3] Angstrom
    batch: torch.Tensor  # [N] int64, graph index of each atom
    ptr: torch.Tensor  # [B + 1] int64, offsets of each graph's atoms
    cell: torch.Tensor | None = None  # [B, 3, 3] Angstrom
    pbc: torch.Tensor | None = None  # [B, 3] bool

    @property
    def n_graphs(self) -> int:
        return int(self.ptr.numel() - 1)

    @property
    def n_atoms(self) -> torch.Tensor:
        """Atoms per graph, [B]."""
        return self.ptr[1:] - self.ptr[:-1]

    @property
    def periodic(self) -> bool:
        """Whether any graph has a periodic direction."""
        return self.pbc is not None and bool(self.pbc.any())

    @classmethod
    def from_atoms(
        cls,
        structures: Sequence[Atoms],
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> AtomsBatch:
        if len(structures) == 0:
            raise ValueError("an AtomsBatch needs at least one structure")
        numbers = np.concatenate([a.numbers for a in structures]).astype(np.int64)
        positions = np.concatenate([a.positions for a in structures]).astype(np.float64)
        sizes = np.array([len(a) for a in structures], dtype=np.int64)
        cell = pbc = None
        if any(a.pbc.any() for a in structures):
            cell = np.stack([a.cell.array for a in structures])
            pbc = np.stack([a.pbc for a in structures])
        return cls.from_arrays(numbers, positions, sizes, dtype=dtype, device=device, cell=cell, pbc=pbc)

    @classmethod
    def from_arrays(
        cls,
        numbers: np.ndarray | torch.Tensor,
        positions: np.ndarray | torch.Tensor,
        sizes: np.ndarray | torch.Tensor,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        cell: np.ndarray | torch.Tensor | None = None,
        pbc: np.ndarray | torch.Tensor | None = None,
    ) -> AtomsBatch:
        """A batch from concatenated arrays; ``cell`` [B, 3, 3] and ``pbc`` [B, 3] for periodic structures (a batch
        without any periodic direction drops them)."""
        sizes_t = torch.as_tensor(sizes, dtype=torch.int64, device=device)
        ptr = torch.zeros(sizes_t.numel() + 1, dtype=torch.int64, device=device)
        ptr[1:] = torch.cumsum(sizes_t, 0)
        batch = torch.repeat_interleave(torch.arange(sizes_t.numel(), device=device), sizes_t)
        cell_t = pbc_t = None
        if pbc is not None and bool(np.asarray(pbc).any()):
            if cell is None:
                raise ValueError("a periodic batch needs a cell per graph")
            pbc_t = torch.as_tensor(np.asarray(pbc, dtype=bool), device=device).reshape(-1, 3)
            cell_t = torch.as_tensor(cell, dtype=dtype, device=device).reshape(-1, 3, 3)
            if pbc_t.shape[0] != sizes_t.numel() or cell_t.shape[0] != sizes_t.numel():
                raise ValueError(f"cell and pbc need one row per graph ({sizes_t.numel()}), got {cell_t.shape[0]} "
                                 f"and {pbc_t.shape[0]}")
        return cls(
            numbers=torch.as_tensor(numbers, dtype=torch.int64, device=device),
            positions=torch.as_tensor(positions, dtype=dtype, device=device),
            batch=batch,
            ptr=ptr,
            cell=cell_t,
            pbc=pbc_t,
        )

    def with_positions(self, positions: torch.Tensor) -> AtomsBatch:
        return replace(self, positions=positions)

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> AtomsBatch:
        def move(t: torch.Tensor, floating: bool = False) -> torch.Tensor:
            return t.to(dtype=dtype if floating else None, device=device)

        return AtomsBatch(
            numbers=move(self.numbers),
            positions=self.positions.to(dtype=dtype, device=device),
            batch=move(self.batch),
            ptr=move(self.ptr),
            cell=None if self.cell is None else move(self.cell, floating=True),
            pbc=None if self.pbc is None else move(self.pbc),
        )

    def to_atoms(self) -> list[Atoms]:
        numbers = self.numbers.cpu().numpy()
        positions = self.positions.detach().cpu().numpy().astype(np.float64)
        ptr = self.ptr.cpu().numpy()
        out = [Atoms(numbers=numbers[a:b], positions=positions[a:b]) for a, b in zip(ptr[:-1], ptr[1:], strict=True)]
        if self.cell is not None and self.pbc is not None:
            for atoms, cell, pbc in zip(out, self.cell.detach().cpu().numpy(), self.pbc.cpu().numpy(), strict=True):
                atoms.set_cell(cell.astype(np.float64))
                atoms.pbc = pbc
        return out


@dataclass
class PotentialOutput:
    """Energies [B] (eV), forces [N, 3] (eV/Angstrom, None if not asked), features [N, F]."""

    energy: torch.Tensor
    forces: torch.Tensor | None
    features: torch.Tensor


class Potential(torch.nn.Module, ABC):
    """Base of every force field. Subclasses implement :meth:`energy_and_features`.

    ``atomic_energies`` holds the per-element reference energies (eV) of the
    fidelity the model currently predicts; the network itself learns the
    residual, multiplied by ``output_scale`` (a buffer, 1 until a trainer sets it
    from the training data's force RMS, so a freshly initialised network starts
    at the data's scale). ``registry_name`` names the class in checkpoints (no
    import paths). ``learns_output_scale = False`` marks models whose output is
    already on a physical scale (pretrained universal potentials): trainers then
    leave ``output_scale`` at 1.

    ``accepts_graph_radius = True`` marks models that can build their graph at
    another radius than the training ``cutoff`` (:meth:`using_graph_radius`,
    for spectral radius refinement); they read :attr:`graph_radius`.
    """

    registry_name: str = ""
    learns_output_scale: bool = True
    atomic_energies: torch.Tensor  # buffer [MAX_Z + 1] float64 (eV)
    output_scale: torch.Tensor  # buffer [] float64
    accepts_graph_radius: bool = False
    _graph_radius: float | None = None  # set only inside using_graph_radius
    #: buffers that stay float64 through ``.float()`` / ``.to()`` (only their device follows)
    float64_buffers: tuple[str, ...] = ("atomic_energies", "output_scale")

    def __init__(self, elements: Sequence[int], cutoff: float) -> None:
        super().__init__()
        if cutoff <= 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        self.elements: tuple[int, ...] = tuple(sorted({int(z) for z in elements}))
        self.cutoff = float(cutoff)
        self.register_buffer("atomic_energies", torch.zeros(MAX_Z + 1, dtype=torch.float64))
        self.register_buffer("output_scale", torch.ones((), dtype=torch.float64))

    @abstractmethod
    def energy_and_features(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Residual energy per graph [B] (eV) and per-atom latent features [N, F]."""

    @abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this model (JSON-serialisable)."""

    @property
    @abstractmethod
    def feature_dim(self) -> int:
        """Width F of the per-atom latent features."""

    def last_layer_features(self, batch: AtomsBatch) -> torch.Tensor:
        """Per atom [N, K]: the gradient of the atom's energy contribution with respect to the parameters of the
        model's last linear layer (its input, times any per-atom scale after it; a column of ones for its bias), up
        to one constant factor for all (which the LLPR's fitted regulariser absorbs). These are the features of the
        last-layer prediction rigidity (:mod:`alloop.uncertainty.llpr`). AlloopError for a model without one."""
        raise AlloopError(f"a '{self.registry_name}' model does not expose the features of its last linear layer")

    @property
    def graph_radius(self) -> float:
        """The radius (A) the model builds its graph with: ``cutoff`` unless :meth:`using_graph_radius` is active."""
        return self.cutoff if self._graph_radius is None else self._graph_radius

    @contextmanager
    def using_graph_radius(self, radius: float) -> Iterator[Potential]:
        """``with model.using_graph_radius(r): ...``: the graph is built with radius ``r`` inside the block.

        AlloopError for a model that cannot (``accepts_graph_radius`` False: its radial functions end at its cutoff).
        """
        if not self.accepts_graph_radius:
            raise AlloopError(f"a '{self.registry_name}' model cannot build its graph at a radius other than its "
                              f"training cutoff ({self.cutoff:g} A): its radial functions are tied to it")
        if not (math.isfinite(radius) and radius > 0):
            raise AlloopError(f"the graph radius must be a positive number of Angstrom, got {radius}")
        previous = self._graph_radius
        self._graph_radius = float(radius)
        try:
            yield self
        finally:
            self._graph_radius = previous

    def _apply(self, fn, recurse=True):
        """Keep :attr:`float64_buffers` in float64 through ``.float()``/``.to()`` (only the device follows)."""
        saved = {k: self._buffers[k] for k in self.float64_buffers}
        out = super()._apply(fn, recurse)
        for key, value in saved.items():
            self._buffers[key] = value.to(device=self._buffers[key].device, dtype=torch.float64)
        return out

    def reference_energy(self, batch: AtomsBatch) -> torch.Tensor:
        """Sum of per-element reference energies per graph [B] (eV)."""
        per_atom = self.atomic_energies[batch.numbers].to(batch.positions.dtype)
        out = torch.zeros(batch.n_graphs, dtype=batch.positions.dtype, device=batch.positions.device)
        return out.index_add_(0, batch.batch, per_atom)

    def check_elements(self, batch: AtomsBatch) -> None:
        unknown = set(torch.unique(batch.numbers).tolist()) - set(self.elements)
        if unknown:
            raise ValueError(f"elements {sorted(unknown)} are not in this model's element set {list(self.elements)}")

    def check_batch(self, batch: AtomsBatch) -> None:
        """ValueError unless the batch's elements are known and its positions have the model's dtype."""
        self.check_elements(batch)
        dtype = model_dtype(self)
        if batch.positions.dtype != dtype:
            raise ValueError(
                f"batch positions are {batch.positions.dtype} but the model is {dtype}: "
                "convert one of them (model.double() / AtomsBatch.from_atoms(..., dtype=...))"
            )

    def forward(
        self,
        batch: AtomsBatch,
        *,
        compute_forces: bool = True,
        create_graph: bool = False,
    ) -> PotentialOutput:
        """Energies, forces by autograd (``create_graph`` for force losses), features.

        ``energy`` keeps its autograd graph (training needs it): detach before
        converting to numpy. ``features`` are always detached.

        If ``batch.positions`` already requires grad it is used as is (so a caller
        can differentiate forces with respect to positions, as score matching does).
        """
        positions = batch.positions
        if compute_forces and not positions.requires_grad:
            positions = positions.detach().requires_grad_(True)
            batch = batch.with_positions(positions)
        with torch.set_grad_enabled(compute_forces or torch.is_grad_enabled()):
            residual, features = self.energy_and_features(batch)
            residual = residual * self.output_scale.to(residual.dtype)
            forces = None
            if compute_forces:
                (grad,) = torch.autograd.grad(
                    residual.sum(), positions, create_graph=create_graph, allow_unused=True
                )
                forces = -grad if grad is not None else torch.zeros_like(positions)
        energy = residual + self.reference_energy(batch)
        return PotentialOutput(energy=energy, forces=forces, features=features.detach())
