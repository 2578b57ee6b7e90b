"""Labelled frames for training: CSR-packed molecules of any sizes, one fidelity per dataset.

A :class:`FrameDataset` holds atomic numbers and positions (Angstrom) of M
frames packed end to end (``offsets`` marks each frame's atoms), optionally
with energies (eV), forces (eV/Angstrom), per-frame weights and a fidelity
tag. Datasets without labels (unlabelled frames for score matching) carry
``energy = forces = None``. A dataset never mixes fidelities: the absolute
energies of two levels of theory differ by tens of eV per molecule. Periodic
frames carry their cell (``cells`` [M, 3, 3], Angstrom) and ``pbc`` ([M, 3]);
a dataset of molecules has neither (None).

:meth:`FrameDataset.batches` yields :class:`LabelledBatch` objects (an
:class:`AtomsBatch` plus per-frame and per-atom targets) in a seeded,
reproducible order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from alloop.errors import AlloopError
from alloop.potentials.base import AtomsBatch


@dataclass(frozen=True)
class LabelledBatch:
    """One mini-batch: structures plus targets. Targets are None for unlabelled data."""

    atoms: AtomsBatch
    energy: torch.Tensor | None  # [B] eV
    forces: torch.Tensor | None  # [N, 3] eV/Angstrom
    weight: torch.Tensor  # [B] per-frame weight
    index: torch.Tensor  # [B] frame indices into the dataset
    energy_mask: torch.Tensor | None = None  # [B] 0 for frames whose energy does not count (replay); None: all count

    @property
    def n_atoms(self) -> torch.Tensor:
        return self.atoms.n_atoms

    def frames(self, start: int, stop: int) -> LabelledBatch:
        """The batch of frames ``start:stop`` of this one (their atoms, cells and targets)."""
        ptr = self.atoms.ptr
        a, b = int(ptr[start]), int(ptr[stop])
        atoms = AtomsBatch(numbers=self.atoms.numbers[a:b], positions=self.atoms.positions[a:b],
                           batch=self.atoms.batch[a:b] - start, ptr=ptr[start : stop + 1] - a,
                           cell=None if self.atoms.cell is None else self.atoms.cell[start:stop],
                           pbc=None if self.atoms.pbc is None else self.atoms.pbc[start:stop])
        return LabelledBatch(
            atoms=atoms,
            energy=None if self.energy is None else self.energy[start:stop],
            forces=None if self.forces is None else self.forces[a:b],
            weight=self.weight[start:stop],
            index=self.index[start:stop],
            energy_mask=None if self.energy_mask is None else self.energy_mask[start:stop],
        )

    def targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy [B] and force [N, 3] targets (AlloopError for a batch of unlabelled frames)."""
        if self.energy is None or self.forces is None:
            raise AlloopError("a batch of unlabelled frames has no energy and force targets")
        return self.energy, self.forces


class FrameDataset:
    """M frames of one fidelity. Build with :meth:`from_atoms` or :meth:`from_arrays`."""

    def __init__(
        self,
        numbers: np.ndarray,
        positions: np.ndarray,
        offsets: np.ndarray,
        energy: np.ndarray | None = None,
        forces: np.ndarray | None = None,
        weight: Sequence[float] | np.ndarray | None = None,
        fidelity: str = "",
        cells: np.ndarray | None = None,
        pbc: np.ndarray | None = None,
    ) -> None:
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        n_frames = self.offsets.size - 1
        if n_frames < 0 or self.offsets[0] != 0 or self.offsets[-1] != self.numbers.size:
            raise AlloopError("frame offsets do not match the number of atoms")
        if np.any(np.diff(self.offsets) <= 0):
            raise AlloopError("every frame needs at least one atom")
        if self.positions.shape[0] != self.numbers.size:
            raise AlloopError(f"{self.positions.shape[0]} positions for {self.numbers.size} atoms")
        if (energy is None) != (forces is None):
            raise AlloopError("give both energies and forces, or neither")
        self.energy = None if energy is None else np.asarray(energy, dtype=np.float64).reshape(-1)
        self.forces = None if forces is None else np.asarray(forces, dtype=np.float64).reshape(-1, 3)
        if self.energy is not None and self.energy.size != n_frames:
            raise AlloopError(f"{self.energy.size} energies for {n_frames} frames")
        if self.forces is not None and self.forces.shape[0] != self.numbers.size:
            raise AlloopError(f"{self.forces.shape[0]} force rows for {self.numbers.size} atoms")
        if (self.energy is not None and self.forces is not None
                and not (np.all(np.isfinite(self.energy)) and np.all(np.isfinite(self.forces)))):
            raise AlloopError("energies and forces must be finite")
        w = np.ones(n_frames) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
        if w.size != n_frames or np.any(w < 0) or not np.all(np.isfinite(w)):
            raise AlloopError("weights must be one finite non-negative number per frame")
        self.weight = w
        self.fidelity = str(fidelity)
        self.cells: np.ndarray | None = None
        self.pbc: np.ndarray | None = None
        if pbc is not None and bool(np.asarray(pbc).any()):
            if cells is None:
                raise AlloopError("periodic frames need their cells")
            self.pbc = np.asarray(pbc, dtype=bool).reshape(-1, 3)
            self.cells = np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3)
            if self.pbc.shape[0] != n_frames or self.cells.shape[0] != n_frames:
                raise AlloopError(f"{self.cells.shape[0]} cells and {self.pbc.shape[0]} pbc rows for {n_frames} frames")

    def _periodic_rows(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """``cells`` and ``pbc`` of frames ``idx`` as keyword arguments (empty for molecules)."""
        return {} if self.pbc is None or self.cells is None else {"cells": self.cells[idx], "pbc": self.pbc[idx]}

    # ---- construction ------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        numbers: Sequence[np.ndarray],
        positions: Sequence[np.ndarray],
        energy: Sequence[float] | np.ndarray | None = None,
        forces: Sequence[np.ndarray] | None = None,
        weight: Sequence[float] | np.ndarray | None = None,
        fidelity: str = "",
        cells: Sequence[np.ndarray] | None = None,
        pbc: Sequence[np.ndarray] | None = None,
    ) -> FrameDataset:
        """Frames given as lists of per-frame arrays (numbers [k], positions [k,3], forces [k,3]; cells [3,3] and
        pbc [3] for periodic frames)."""
        if len(numbers) == 0:
            raise AlloopError("a dataset needs at least one frame")
        sizes = np.array([len(z) for z in numbers], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        f = None if forces is None else np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1, 3) for x in forces])
        return cls(
            np.concatenate([np.asarray(z) for z in numbers]),
            np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in positions]),
            offsets,
            energy=None if energy is None else np.asarray(energy, dtype=np.float64),
            forces=f,
            weight=weight,
            fidelity=fidelity,
            cells=None if cells is None else np.stack([np.asarray(c, dtype=np.float64) for c in cells]),
            pbc=None if pbc is None else np.stack([np.asarray(p, dtype=bool) for p in pbc]),
        )

    @classmethod
    def from_atoms(
        cls,
        structures: Sequence[Atoms],
        fidelity: str = "",
        labelled: bool = True,
        weight: Sequence[float] | np.ndarray | None = None,
    ) -> FrameDataset:
        """Frames from ASE Atoms; labels from their calculator results (``energy``, ``forces``)."""
        if len(structures) == 0:
            raise AlloopError("a dataset needs at least one frame")
        energy = forces = None
        if labelled:
            energy, forces = [], []
            for k, atoms in enumerate(structures):
                results = getattr(atoms.calc, "results", None) or {}
                if "energy" not in results or "forces" not in results:
                    raise AlloopError(f"frame {k} has no energy and forces")
                energy.append(float(results["energy"]))
                forces.append(np.asarray(results["forces"], dtype=np.float64))
        periodic = any(a.pbc.any() for a in structures)
        return cls.from_arrays(
            [a.numbers for a in structures],
            [a.positions for a in structures],
            energy=energy,
            forces=forces,
            weight=weight,
            fidelity=fidelity,
            cells=[a.cell.array for a in structures] if periodic else None,
            pbc=[a.pbc for a in structures] if periodic else None,
        )

    # ---- properties --------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def labelled(self) -> bool:
        return self.energy is not None

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Energies [M] (eV) and forces [N, 3] (eV/A) of a labelled dataset (AlloopError for an unlabelled one)."""
        if self.energy is None or self.forces is None:
            raise AlloopError("the dataset has no energies and forces")
        return self.energy, self.forces

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def elements(self) -> tuple[int, ...]:
        return tuple(sorted({int(z) for z in np.unique(self.numbers)}))

    def frame_slice(self, j: int) -> slice:
        return slice(int(self.offsets[j]), int(self.offsets[j + 1]))

    def to_atoms(self) -> list[Atoms]:
        """Frames as ASE Atoms (without labels; with their cells)."""
        out = [Atoms(numbers=self.numbers[s], positions=self.positions[s]) for s in map(self.frame_slice, range(len(self)))]
        if self.pbc is not None and self.cells is not None:
            for atoms, cell, pbc in zip(out, self.cells, self.pbc, strict=True):
                atoms.set_cell(cell)
                atoms.pbc = pbc
        return out

    # ---- derived datasets --------------------------------------------------------
    def subset(self, indices: Sequence[int] | np.ndarray) -> FrameDataset:
        """The frames ``indices`` (in that order), with their labels and weights."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise AlloopError("a subset needs at least one frame")
        if idx.min() < 0 or idx.max() >= len(self):
            raise AlloopError(f"frame index out of range for a dataset of {len(self)} frames")
        atom_idx = _atom_indices(self.offsets, idx)
        sizes = self.sizes[idx]
        return FrameDataset(
            self.numbers[atom_idx],
            self.positions[atom_idx],
            np.concatenate([[0], np.cumsum(sizes)]),
            energy=None if self.energy is None else self.energy[idx],
            forces=None if self.forces is None else self.forces[atom_idx],
            weight=self.weight[idx],
            fidelity=self.fidelity,
            **self._periodic_rows(idx),
        )

    def with_weights(self, weight: Sequence[float] | np.ndarray) -> FrameDataset:
        """The same frames with new per-frame weights."""
        return FrameDataset(self.numbers, self.positions, self.offsets, self.energy, self.forces, weight=weight,
                            fidelity=self.fidelity, **self._periodic_rows(np.arange(len(self))))

    def with_targets(self, energy: np.ndarray, forces: np.ndarray) -> FrameDataset:
        """The same frames and weights with other energies [M] (eV) and forces [N, 3] (eV/A), e.g. a Delta
        model's targets (reference minus baseline)."""
        return FrameDataset(self.numbers, self.positions, self.offsets, energy, forces, weight=self.weight,
                            fidelity=self.fidelity, **self._periodic_rows(np.arange(len(self))))

    def without_labels(self) -> FrameDataset:
        """The same frames and weights without energies and forces (a set whose positions are all that is read)."""
        return FrameDataset(self.numbers, self.positions, self.offsets, weight=self.weight, fidelity=self.fidelity,
                            **self._periodic_rows(np.arange(len(self))))

    def split(self, val_fraction: float, seed: int, min_val: int = 1,
              fold: int = 0) -> tuple[FrameDataset, FrameDataset, np.ndarray, np.ndarray]:
        """Seeded split by frame content: (train, val, train_indices, val_indices).

        A frame goes to validation when :meth:`frame_draws` (a hash of the seed, its
        atomic numbers and positions) is below ``val_fraction``, so a frame's side does
        not depend on the other frames. With the same seed, frames added later (the next
        cycle of a campaign) leave every earlier frame on its side, and a warm-started
        model is never validated on frames it was trained on; a campaign therefore splits
        every cycle with its own seed (``AsteroidSettings.split_seed``), not the cycle's.
        A different seed draws a different split. The validation share is
        ``val_fraction`` on average; at least one frame goes to each side (the lowest
        draw to validation, the highest to training), and that exception can move a
        frame when frames are added.

        ``min_val``: at least ``min(min_val, n // 2)`` frames go to validation, the lowest
        draws (a hash share of 20 % held out 2 and 6 of the same 12 frames for two seeds:
        a model's error calibration needs a few). Once ``n >= 2 min_val`` the frames this
        adds only ever leave validation as frames are added, never join it.

        ``fold`` k > 0 (cross-validated calibration, ``training.calibration_folds``): the split of fold 0 holds out
        the v frames of the lowest draws; fold k holds out the next v, draw ranks [k v, (k + 1) v), so the folds
        are disjoint (the last may be smaller; an error when it would be empty).
        """
        n = len(self)
        if n < 2:
            raise AlloopError(f"need at least 2 frames to split into training and validation, got {n}")
        if not 0.0 < val_fraction < 1.0:
            raise AlloopError(f"val_fraction must be in (0, 1), got {val_fraction}")
        draws = self.frame_draws(seed)
        is_val = draws < val_fraction
        floor = max(1, min(min_val, n // 2))
        if is_val.sum() < floor:
            is_val[np.argsort(draws, kind="stable")[:floor]] = True
        if is_val.all():
            is_val[np.argmax(draws)] = False
        if fold:
            v, ranks = int(is_val.sum()), np.argsort(draws, kind="stable")
            if fold < 0 or fold * v >= n:
                raise AlloopError(f"fold {fold} of {n} frames holding out {v} each is empty")
            is_val = np.zeros(n, dtype=bool)
            is_val[ranks[fold * v:(fold + 1) * v]] = True
        val_idx, train_idx = np.flatnonzero(is_val), np.flatnonzero(~is_val)
        return self.subset(train_idx), self.subset(val_idx), train_idx, val_idx

    def frame_draws(self, seed: int) -> np.ndarray:
        """One number in [0, 1) per frame from SHA-256 of (seed, atomic numbers, positions; and the cell of a
        periodic frame): seeded, and the same for the same frame in any dataset."""
        key = int(seed).to_bytes(8, "little", signed=True)
        cells, pbc = self.cells, self.pbc
        out = np.empty(len(self))
        for i, (start, size) in enumerate(zip(self.offsets[:-1], self.sizes, strict=True)):
            atoms = slice(int(start), int(start) + int(size))
            cell = b"" if pbc is None or cells is None or not pbc[i].any() else cells[i].astype("<f8").tobytes()
            digest = hashlib.sha256(key + self.numbers[atoms].astype("<i8").tobytes()
                                    + self.positions[atoms].astype("<f8").tobytes() + cell).digest()
            out[i] = int.from_bytes(digest[:8], "little") / 2.0**64
        return out

    # ---- batching ----------------------------------------------------------------
    def batch(self, indices: Sequence[int] | np.ndarray, dtype: torch.dtype = torch.float32) -> LabelledBatch:
        """The frames ``indices`` as one :class:`LabelledBatch` of the given float dtype."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        atom_idx = _atom_indices(self.offsets, idx)
        cell = pbc = None
        if self.pbc is not None and self.cells is not None:
            cell, pbc = self.cells[idx], self.pbc[idx]
        atoms = AtomsBatch.from_arrays(self.numbers[atom_idx], self.positions[atom_idx], self.sizes[idx], dtype=dtype,
                                       cell=cell, pbc=pbc)
        energy = forces = None
        if self.energy is not None and self.forces is not None:
            energy = torch.as_tensor(self.energy[idx], dtype=dtype)
            forces = torch.as_tensor(self.forces[atom_idx], dtype=dtype)
        return LabelledBatch(
            atoms=atoms,
            energy=energy,
            forces=forces,
            weight=torch.as_tensor(self.weight[idx], dtype=dtype),
            index=torch.as_tensor(idx),
        )

    def batches(
        self,
        batch_size: int,
        dtype: torch.dtype = torch.float32,
        shuffle: bool = False,
        seed: int = 0,
    ) -> Iterator[LabelledBatch]:
        """Mini-batches; with ``shuffle`` the order is a permutation drawn from ``seed``."""
        if batch_size < 1:
            raise AlloopError(f"batch_size must be at least 1, got {batch_size}")
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        for start in range(0, len(self), batch_size):
            yield self.batch(order[start : start + batch_size], dtype=dtype)


def _atom_indices(offsets: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Atom rows of the given frames, concatenated in frame order."""
    starts, ends = offsets[frames], offsets[frames + 1]
    sizes = ends - starts
    if sizes.size == 0:
        return np.zeros(0, dtype=np.int64)
    base = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    return base + np.arange(int(sizes.sum()))
