"""Stability guards: stop a replica whose MD has become unphysical.

Guards stop the unphysical, not chemistry. Checks, in this order, per
replica and step: non-finite forces (or forces above ``max_force_eV_A`` if
set), two atoms closer than ``min_distance_A``, a bond stretched beyond
``max_bond_stretch`` times its reference length, and the running-average
kinetic temperature outside ``[min_temperature_K, max_temperature_K]``.

Bonds are the pairs closer than ``bond_tolerance * (r_cov,i + r_cov,j)``
(``ase.data.covalent_radii``) in the reference structure; build the guards
once from a replica's starting structure (:class:`ReplicaGuards` holds one set
per replica of a segment, for replicas that start from different structures).
``reactions`` says what a changed bond is. ``stop``: every bond of the starting
structure is measured against its starting length, and a stretched one stops
the replica. ``events`` (the default): before the bond check, a bond that broke
while one of its atoms found a new partner is a reaction event
(:mod:`alloop.md.events`), and the bonds are measured against the replica's
current bond set, which the caller carries along (the segment keeps it in the
replica state); a bond stretched with no new partner (a fragment flying apart)
still stops the replica, unless an atom of it is near another atom on its way
to a new bond (:func:`alloop.md.events.in_transit`). In a periodic
cell (``cell``, from a structure periodic in all three directions) every distance is the minimum-image one, so wrapped
positions and molecules split across the cell's faces are measured right.

Temperature estimator: the instantaneous kinetic temperature of a 9-atom
molecule fluctuates by ~30 % of T (sqrt(2 / 3n)), so the guard uses an
exponential running average with a time constant of
``temperature_window_steps`` steps: ``T_avg += (T_inst - T_avg) / window``,
started at the first instantaneous value. The average is part of the replica
state, so a resumed segment sees the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
from ase import Atoms
from ase.data import covalent_radii

from alloop.errors import AlloopError
from alloop.md.events import BondSet, ReactionEvent, in_transit, react
from alloop.system.structures import pair_distances, periodic_cell

NON_FINITE_FORCES = "non_finite_forces"
FORCE_TOO_LARGE = "force_too_large"
ATOMS_TOO_CLOSE = "atoms_too_close"
BOND_STRETCHED = "bond_stretched"
TEMPERATURE_OUT_OF_RANGE = "temperature_out_of_range"
STOP_CODES = (NON_FINITE_FORCES, FORCE_TOO_LARGE, ATOMS_TOO_CLOSE, BOND_STRETCHED, TEMPERATURE_OUT_OF_RANGE)
REACTIONS = ("events", "stop")


@dataclass(frozen=True)
class GuardFailure:
    """Why a replica was stopped: a code from ``STOP_CODES`` and a one-line detail."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass
class GuardReport:
    """One replica after one step: why it stops (None: it goes on), its current bonds and the reactions found."""

    failure: GuardFailure | None
    bonds: BondSet | None = None  # None: the guards' reference bonds (no reaction so far)
    events: list[ReactionEvent] = field(default_factory=list)


def detect_bonds(numbers: np.ndarray, positions: np.ndarray, tolerance: float = 1.2,
                 cell: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bonded pairs [n_b, 2] (i < j) and their lengths [n_b] (Angstrom; minimum image in ``cell``)."""
    numbers = np.asarray(numbers)
    positions = np.asarray(positions, dtype=np.float64)
    radii = covalent_radii[numbers]
    d = pair_distances(positions, cell)
    i, j = np.triu_indices(len(numbers), k=1)
    bonded = d[i, j] < tolerance * (radii[i] + radii[j])
    pairs = np.stack([i[bonded], j[bonded]], axis=1).astype(np.int64)
    return pairs, d[i[bonded], j[bonded]]


@dataclass(frozen=True)
class StabilityGuards:
    """Thresholds plus the reference bonds; see the module docstring."""

    bonds: np.ndarray  # [n_b, 2]
    bond_lengths: np.ndarray  # [n_b], Angstrom
    max_bond_stretch: float = 1.5
    min_distance_A: float = 0.5
    min_temperature_K: float = 0.0
    max_temperature_K: float = 1500.0
    temperature_window_steps: int = 100
    max_force_eV_A: float | None = None
    cell: np.ndarray | None = None  # [3, 3] Angstrom: minimum-image distances in this periodic cell
    reactions: Literal["events", "stop"] = "events"
    bond_tolerance: float = 1.2
    radii: np.ndarray | None = None  # [n] covalent radii (Angstrom): needed to find new partners (events)

    def __post_init__(self) -> None:
        if self.reactions not in REACTIONS:
            raise AlloopError(f"unknown reactions '{self.reactions}': use 'events' or 'stop'")
        if self.max_bond_stretch <= 1.0:
            raise AlloopError(f"max_bond_stretch must be > 1, got {self.max_bond_stretch}")
        if self.min_distance_A < 0:
            raise AlloopError(f"min_distance_A must be >= 0, got {self.min_distance_A}")
        if not self.min_temperature_K < self.max_temperature_K:
            raise AlloopError(
                f"temperature range [{self.min_temperature_K}, {self.max_temperature_K}] K is empty"
            )
        if self.temperature_window_steps < 1:
            raise AlloopError(f"temperature_window_steps must be >= 1, got {self.temperature_window_steps}")

    @classmethod
    def from_atoms(
        cls,
        atoms: Atoms,
        *,
        bond_tolerance: float = 1.2,
        temperature_K: float | None = None,
        temperature_factor: float = 3.0,
        **thresholds: Any,
    ) -> StabilityGuards:
        """Guards with bonds detected in ``atoms``.

        If ``temperature_K`` is given and ``max_temperature_K`` is not, the upper
        temperature limit is ``temperature_factor * temperature_K``.
        """
        cell = periodic_cell(atoms)
        bonds, lengths = detect_bonds(atoms.numbers, atoms.positions, bond_tolerance, cell)
        if temperature_K is not None and "max_temperature_K" not in thresholds:
            thresholds["max_temperature_K"] = temperature_factor * temperature_K
        return cls(bonds=bonds, bond_lengths=lengths, cell=cell, bond_tolerance=bond_tolerance,
                   radii=np.asarray(covalent_radii[atoms.numbers], dtype=np.float64), **thresholds)

    @cached_property
    def reference(self) -> BondSet:
        """The bonds of the reference structure with their starting lengths."""
        return BondSet(self.bonds, self.bond_lengths)

    def update_temperature(self, t_avg: np.ndarray, t_inst: np.ndarray) -> np.ndarray:
        """The running average after one more step (NaN entries start at ``t_inst``)."""
        new = t_avg + (t_inst - t_avg) / self.temperature_window_steps
        return np.where(np.isnan(t_avg), t_inst, new)

    def check(
        self, positions: np.ndarray, forces: np.ndarray, t_avg: np.ndarray | None = None
    ) -> list[GuardFailure | None]:
        """One entry per replica of positions/forces [R, n, 3]: None if stable, else the first failure (bonds
        measured against the reference; :meth:`inspect` takes each replica's current bonds and finds reactions)."""
        return [report.failure for report in self.inspect(positions, forces, t_avg)]

    def inspect(self, positions: np.ndarray, forces: np.ndarray, t_avg: np.ndarray | None = None,
                bonds: Sequence[BondSet | None] | None = None, steps: Sequence[int] | None = None
                ) -> list[GuardReport]:
        """One report per replica of positions/forces [R, n, 3]: its first failure (None if stable) and, with
        ``reactions: events``, its bonds after this step's reactions (``bonds``: each replica's current set, None
        for the reference) and the reactions, stamped with ``steps`` (absolute step numbers)."""
        n_rep = positions.shape[0]
        current = list(bonds) if bonds is not None else [None] * n_rep
        out = [GuardReport(None, current[r]) for r in range(n_rep)]
        finite = np.isfinite(forces).all(axis=(1, 2)) & np.isfinite(positions).all(axis=(1, 2))
        fmax = np.linalg.norm(np.where(np.isfinite(forces), forces, 0.0), axis=-1).max(axis=1)
        n = positions.shape[1]
        if n > 1:
            d = pair_distances(positions, self.cell)
            iu, ju = np.triu_indices(n, k=1)
            pair_d = d[:, iu, ju]
        for r, report in enumerate(out):
            if not finite[r]:
                report.failure = GuardFailure(NON_FINITE_FORCES, "forces or positions contain NaN/inf")
            elif self.max_force_eV_A is not None and fmax[r] > self.max_force_eV_A:
                report.failure = GuardFailure(FORCE_TOO_LARGE,
                                              f"max |F| {fmax[r]:.3g} > {self.max_force_eV_A:.3g} eV/A")
            elif n > 1 and pair_d[r].min() < self.min_distance_A:
                k = int(pair_d[r].argmin())
                report.failure = GuardFailure(
                    ATOMS_TOO_CLOSE, f"atoms {iu[k]}-{ju[k]} at {pair_d[r, k]:.3f} A < {self.min_distance_A} A"
                )
            elif n > 1:
                self._check_bonds(d[r], report, 0 if steps is None else int(steps[r]))
            if report.failure is None and t_avg is not None:
                report.failure = self._check_temperature(float(t_avg[r]))
        return out

    def _check_bonds(self, d: np.ndarray, report: GuardReport, step: int) -> None:
        """Find the reactions (``events``) and the first bond stretched beyond the factor; fills ``report``."""
        bonds = self.reference if self.reactions == "stop" else (report.bonds or self.reference)
        if self.reactions == "events" and self.radii is not None:
            after, report.events = react(d, bonds, self.radii, self.bond_tolerance, self.max_bond_stretch, step)
            if report.events:
                bonds = report.bonds = after
        if not len(bonds):
            return
        ratio = d[bonds.pairs[:, 0], bonds.pairs[:, 1]] / bonds.lengths
        stretched = [int(k) for k in np.argsort(-ratio, kind="stable") if ratio[k] > self.max_bond_stretch]
        if self.reactions == "events" and self.radii is not None:
            radii = self.radii
            stretched = [k for k in stretched if not in_transit(d, bonds, radii, self.max_bond_stretch,
                                                                tuple(bonds.pairs[k].tolist()))]
        if not stretched:
            return
        k = stretched[0]
        i, j = bonds.pairs[k]
        alone = "; neither atom has a new partner (dissociation)" if self.reactions == "events" else ""
        report.failure = GuardFailure(
            BOND_STRETCHED,
            f"bond {i}-{j} at {ratio[k] * bonds.lengths[k]:.3f} A > {self.max_bond_stretch} x "
            f"{bonds.lengths[k]:.3f} A{alone}",
        )

    def _check_temperature(self, t: float) -> GuardFailure | None:
        if np.isnan(t) or self.min_temperature_K <= t <= self.max_temperature_K:
            return None
        return GuardFailure(
            TEMPERATURE_OUT_OF_RANGE,
            f"running-average T {t:.1f} K outside [{self.min_temperature_K:g}, {self.max_temperature_K:g}] K",
        )


class ReplicaGuards:
    """The guards of each replica of a segment (each its own reference bonds); replicas that share one
    :class:`StabilityGuards` are checked in one call."""

    def __init__(self, guards: StabilityGuards | Sequence[StabilityGuards], n_replicas: int) -> None:
        members = [guards] * n_replicas if isinstance(guards, StabilityGuards) else list(guards)
        if len(members) != n_replicas:
            raise AlloopError(f"{len(members)} stability guards for {n_replicas} replicas: give one per replica")
        self.members = members

    def _shared(self, replicas: np.ndarray) -> list[tuple[StabilityGuards, np.ndarray]]:
        """The guards of ``replicas`` and the positions (in ``replicas``) of the replicas each one checks."""
        groups: dict[int, list[int]] = {}
        for k, r in enumerate(replicas):
            groups.setdefault(id(self.members[int(r)]), []).append(k)
        return [(self.members[int(replicas[ks[0]])], np.array(ks)) for ks in groups.values()]

    def check(self, replicas: np.ndarray, positions: np.ndarray, forces: np.ndarray,
              t_avg: np.ndarray | None = None) -> list[GuardFailure | None]:
        """:meth:`StabilityGuards.check` of replicas ``replicas`` (rows of positions/forces [R, n, 3])."""
        out: list[GuardFailure | None] = [None] * len(replicas)
        for guards, ks in self._shared(replicas):
            found = guards.check(positions[ks], forces[ks], None if t_avg is None else t_avg[ks])
            for k, failure in zip(ks, found, strict=True):
                out[int(k)] = failure
        return out

    def inspect(self, replicas: np.ndarray, positions: np.ndarray, forces: np.ndarray, t_avg: np.ndarray | None,
                bonds: Sequence[BondSet | None], steps: Sequence[int]) -> list[GuardReport]:
        """:meth:`StabilityGuards.inspect` of replicas ``replicas`` (rows of positions/forces [R, n, 3], of
        ``bonds`` and ``steps``)."""
        out: list[GuardReport] = [GuardReport(None)] * len(replicas)
        for guards, ks in self._shared(replicas):
            found = guards.inspect(positions[ks], forces[ks], None if t_avg is None else t_avg[ks],
                                   [bonds[int(k)] for k in ks], [int(steps[int(k)]) for k in ks])
            for k, report in zip(ks, found, strict=True):
                out[int(k)] = report
        return out

    def update_temperature(self, replicas: np.ndarray, t_avg: np.ndarray, t_inst: np.ndarray) -> np.ndarray:
        """:meth:`StabilityGuards.update_temperature` of replicas ``replicas``."""
        out = np.array(t_avg, dtype=np.float64, copy=True)
        for guards, ks in self._shared(replicas):
            out[ks] = guards.update_temperature(t_avg[ks], t_inst[ks])
        return out
