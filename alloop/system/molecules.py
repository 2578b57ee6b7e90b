"""Which molecule a structure or frame is: its chemical formula; and how a campaign's replicas and samples are dealt.

A *molecule* of a campaign is a composition, named by its Hill formula (``CH4O``, ``C2H6O``, ``H2O``;
for a periodic cell the formula of its contents): the rotamers of one input count as one molecule, and so
do isomers of one formula (ethanol and dimethyl ether), whose energies are on one scale and are compared
with each other by the thermal energy window. Every frame knows its molecule from its atomic numbers alone,
so nothing extra is stored: ``alloop status``, the report, ``alloop evaluate`` and ``alloop export`` derive it.

:class:`Molecules` groups a campaign's starting structures by formula, in the order of their first
appearance, and deals items (replicas, bootstrap samples) over them: item j goes to molecule ``j % M`` and,
within it, to its structure ``(j // M) % len(structures)``; ``j // M`` is the item's *rank* within its
molecule (a replica's rank picks its rung of a temperature ladder). With one molecule this is the plain round
robin over the structures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.formula import Formula

from alloop.errors import AlloopError


def molecule_name(numbers: Sequence[int] | np.ndarray) -> str:
    """The Hill formula of atomic numbers (C first, then H, then the others alphabetically): ``CH4O``."""
    return Formula.from_list([chemical_symbols[int(z)] for z in np.asarray(numbers).ravel()]).format("hill")


def frame_molecules(numbers: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The molecule (formula) of every frame of concatenated per-atom ``numbers`` with frame ``offsets`` [M + 1]
    (CSR), as a string array [M]; one formula per distinct composition is computed."""
    numbers, offsets = np.asarray(numbers), np.asarray(offsets, dtype=np.int64)
    n_frames = offsets.size - 1
    if n_frames <= 0:
        return np.zeros(0, dtype=object)
    size = int(offsets[1] - offsets[0])
    if size > 0 and np.all(np.diff(offsets) == size):  # frames of one size: the first frame's atoms need no count
        rows = numbers[offsets[0]:offsets[-1]].reshape(n_frames, size)
        like_first = (rows == rows[0]).all(axis=1)
        if like_first.sum() > n_frames // 2:
            out = np.full(n_frames, _compositions(rows[0], offsets[:2] - offsets[0])[0], dtype=object)
            rest = np.flatnonzero(~like_first)
            out[rest] = _compositions(rows[rest].ravel(), size * np.arange(rest.size + 1))
            return out
    return _compositions(numbers, offsets)


def _compositions(numbers: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """:func:`frame_molecules` by counting each frame's elements (one formula per distinct composition)."""
    numbers, offsets = np.asarray(numbers, dtype=np.int64), np.asarray(offsets, dtype=np.int64)
    n_frames = offsets.size - 1
    if n_frames <= 0:
        return np.zeros(0, dtype=object)
    elements, column = np.unique(numbers, return_inverse=True)
    frame = np.repeat(np.arange(n_frames), np.diff(offsets))
    counts = np.bincount(frame * elements.size + column.ravel(), minlength=n_frames * elements.size)
    counts = counts.reshape(n_frames, elements.size)
    kinds, which = _unique_rows(counts)
    names = [molecule_name(np.repeat(elements, row)) for row in kinds]
    return np.array(names, dtype=object)[which]


def _unique_rows(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a non-negative integer matrix and each row's index among them; rows are packed into
    one integer each when they fit (a sort of M numbers instead of M rows)."""
    base = int(counts.max(initial=0)) + 1
    if counts.shape[1] * np.log2(base) < 62:
        keys = counts @ (base ** np.arange(counts.shape[1], dtype=np.int64))
        _, first, which = np.unique(keys, return_index=True, return_inverse=True)
        return counts[first], np.asarray(which).ravel()
    kinds, which = np.unique(counts, axis=0, return_inverse=True)
    return kinds, np.asarray(which).ravel()


@dataclass(frozen=True)
class Molecules:
    """A campaign's starting structures grouped by molecule (formula), in the order of first appearance."""

    names: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]  # indices of the structures of each molecule

    @classmethod
    def of(cls, structures: Sequence[Atoms]) -> Molecules:
        if not structures:
            raise AlloopError("no starting structures to group into molecules")
        groups: dict[str, list[int]] = {}
        for k, atoms in enumerate(structures):
            groups.setdefault(molecule_name(atoms.numbers), []).append(k)
        return cls(tuple(groups), tuple(tuple(g) for g in groups.values()))

    def __len__(self) -> int:
        return len(self.names)

    def place(self, item: int) -> tuple[int, int]:
        """Item ``item``'s molecule (index into :attr:`names`) and its rank among that molecule's items."""
        return item % len(self.names), item // len(self.names)

    def structure(self, item: int) -> int:
        """The index of the starting structure item ``item`` is dealt to."""
        molecule, rank = self.place(item)
        group = self.groups[molecule]
        return group[rank % len(group)]

    def deal(self, n_items: int) -> list[int]:
        """The starting structure of each of ``n_items`` items (replicas, bootstrap samples)."""
        return [self.structure(j) for j in range(n_items)]
