"""Reaction events: a bond that breaks while one of its atoms finds a new partner is chemistry, not a failure.

A replica's *current bonds* (:class:`BondSet`) start as the bonds of its starting structure (pairs closer than
``tolerance * (r_cov,i + r_cov,j)``, ``ase.data.covalent_radii``, each with its starting length as reference).
A bond of the set is *broken* once it is no longer a bond by that same rule (longer than ``tolerance`` x the
sum of the radii) or is stretched beyond ``max_bond_stretch`` x its reference length. If one of its two atoms
then has a *new partner* (an atom it is not bonded to in the set, other than the old partner, within bonding
distance by the same rule), that is a :class:`ReactionEvent`: the broken pair leaves the set and the formed
pair enters it, with the sum of the two covalent radii as its reference length. A malonaldehyde proton that
moves from one oxygen to the other is one event. A broken bond whose atoms found no new partner is left in the
set. Once it exceeds ``max_bond_stretch`` x its reference, the stability guard stops the replica (dissociation)
unless the bond is :func:`in_transit`: one of its atoms within ``max_bond_stretch`` x the sum of the covalent radii
of an atom more than two bonds away from it (a proton half-way between two oxygens, 1.46 A from one and 1.2 A
from the other in GFN2-xTB MD of malonaldehyde at 1000 K, is on its way to a new bond, not flying apart).

The set travels with the replica's state (:class:`alloop.md.state.ReplicaState`), so later segments and a
resumed campaign measure against the bonds the replica has now. Distances in Angstrom (minimum image in a
periodic cell, computed by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from alloop.errors import AlloopError


@dataclass(frozen=True)
class BondSet:
    """Bonded pairs [n_b, 2] (i < j) and their reference lengths [n_b] (Angstrom)."""

    pairs: np.ndarray
    lengths: np.ndarray

    def __post_init__(self) -> None:
        pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        lengths = np.asarray(self.lengths, dtype=np.float64).reshape(-1)
        if len(pairs) != len(lengths):
            raise AlloopError(f"a bond set needs one reference length per pair, got {len(pairs)} and {len(lengths)}")
        object.__setattr__(self, "pairs", np.sort(pairs, axis=1))
        object.__setattr__(self, "lengths", lengths)

    def __len__(self) -> int:
        return len(self.pairs)

    def to_json(self) -> dict[str, Any]:
        """Plain lists (exact floats), for a replica state's JSON metadata."""
        return {"pairs": self.pairs.tolist(), "lengths": self.lengths.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BondSet:
        return cls(np.asarray(data["pairs"], dtype=np.int64).reshape(-1, 2), np.asarray(data["lengths"], np.float64))

    def same(self, other: BondSet) -> bool:
        return np.array_equal(self.pairs, other.pairs) and np.array_equal(self.lengths, other.lengths)

    def partners(self, atom: int) -> set[int]:
        """The atoms bonded to ``atom`` in the set."""
        rows = self.pairs[(self.pairs == atom).any(axis=1)]
        return {int(k) for k in rows.ravel()} - {atom}

    def exchanged(self, broken: int, formed: tuple[int, int], formed_length: float) -> BondSet:
        """The set without pair number ``broken`` and with ``formed`` (reference length ``formed_length``)."""
        keep = np.arange(len(self)) != broken
        pairs = np.concatenate([self.pairs[keep], np.array([sorted(formed)], dtype=np.int64)])
        lengths = np.concatenate([self.lengths[keep], [formed_length]])
        order = np.lexsort((pairs[:, 1], pairs[:, 0]))
        return BondSet(pairs[order], lengths[order])


@dataclass(frozen=True)
class ReactionEvent:
    """At absolute MD step ``step``: the bond ``broken`` (distance ``broken_A``) gave way to ``formed``
    (``formed_A``); both pairs as (i, j) atom indices, i < j."""

    step: int
    broken: tuple[int, int]
    formed: tuple[int, int]
    broken_A: float
    formed_A: float

    def __str__(self) -> str:
        (i, j), (k, m) = self.broken, self.formed
        return f"step {self.step}: bond {i}-{j} broken ({self.broken_A:.3f} A), {k}-{m} formed ({self.formed_A:.3f} A)"


def bonding_limits(radii: np.ndarray, pairs: np.ndarray, tolerance: float) -> np.ndarray:
    """The longest bonding distance of each pair [n_b, 2]: ``tolerance`` x the sum of their covalent radii."""
    return tolerance * (radii[pairs[:, 0]] + radii[pairs[:, 1]])


def _new_partner(d: np.ndarray, radii: np.ndarray, tolerance: float, atom: int, excluded: set[int]
                 ) -> tuple[int, float] | None:
    """The atom closest to ``atom`` (relative to bonding distance) within bonding distance of it, not in
    ``excluded``; (its index, d / (r_atom + r_partner)) or None."""
    ratio = d[atom] / (radii[atom] + radii)
    ratio[list(excluded | {atom})] = np.inf
    k = int(np.argmin(ratio))
    return (k, float(ratio[k])) if ratio[k] < tolerance else None


def react(d: np.ndarray, bonds: BondSet, radii: np.ndarray, tolerance: float, max_bond_stretch: float,
          step: int) -> tuple[BondSet, list[ReactionEvent]]:
    """The bonds after this frame's reactions (distances ``d`` [n, n], Angstrom) and the events, one per broken bond
    that found a new partner (the closer one, relative to bonding distance, when both of its atoms found one)."""
    if not len(bonds):
        return bonds, []
    i, j = bonds.pairs[:, 0], bonds.pairs[:, 1]
    length = d[i, j]
    broken = (length > bonding_limits(radii, bonds.pairs, tolerance)) | (length > max_bond_stretch * bonds.lengths)
    if not broken.any():
        return bonds, []
    events = []
    for a, b in bonds.pairs[broken].tolist():
        where = np.flatnonzero((bonds.pairs[:, 0] == a) & (bonds.pairs[:, 1] == b))
        if where.size == 0:
            continue
        found = [(atom, hit) for atom, other in ((a, b), (b, a))
                 if (hit := _new_partner(d, radii, tolerance, atom, bonds.partners(atom) | {other})) is not None]
        if not found:
            continue
        atom, (partner, _) = min(found, key=lambda f: f[1][1])
        formed = (min(atom, partner), max(atom, partner))
        events.append(ReactionEvent(step, (a, b), formed, float(d[a, b]), float(d[atom, partner])))
        bonds = bonds.exchanged(int(where[0]), formed, float(radii[atom] + radii[partner]))
    return bonds, events


def in_transit(d: np.ndarray, bonds: BondSet, radii: np.ndarray, max_bond_stretch: float, pair: tuple[int, int]
               ) -> bool:
    """Whether an atom of the stretched bond ``pair`` is within ``max_bond_stretch`` x the sum of the covalent radii
    of an atom more than two bonds away from it in ``bonds`` (its neighbours and theirs, through ``pair`` too, are
    excluded: they are near by construction)."""
    for atom in pair:
        near = {atom} | bonds.partners(atom)
        near |= {k for j in list(near) for k in bonds.partners(j)}
        ratio = d[atom] / (radii[atom] + radii)
        ratio[list(near)] = np.inf
        if ratio.min() < max_bond_stretch:
            return True
    return False
