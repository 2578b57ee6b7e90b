"""What every labeller of the family does the same way: input checks, provenance, cost accounting, statuses.

An adapter (PySCF, tblite) only computes; :func:`label_with` turns its
:class:`Outcome` into the protocol's LabelResult: fidelity name, hash and
software provenance recorded, CPU and wall seconds measured around the
computation alone, and an ``ok`` label checked by ``alloop.labeling.sanity``
(``inconsistent`` if it fails).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from ase import Atoms

from alloop.fidelity import Fidelity
from alloop.labeling.provenance import current_provenance
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.labeling.sanity import SanityLimits, consistency_problem


@dataclass
class Outcome:
    """What a computation produced, in eV and eV/Angstrom, before timing and checks."""

    status: LabelStatus
    reason: str
    cycles: int
    energy_eV: float = float("nan")
    forces_eV_per_A: np.ndarray | None = None


def structure_numbers(atoms: Atoms, fidelity: Fidelity) -> np.ndarray:
    """The atomic numbers of a structure ``fidelity`` can describe (TypeError, FidelityError if not: a molecule for
    a periodic fidelity or a cell for a molecular one, elements or electrons it cannot describe)."""
    if not isinstance(atoms, Atoms):
        raise TypeError(f"expected ase.Atoms, not {type(atoms).__name__}")
    fidelity.check_periodicity(atoms.pbc, atoms.cell.array)
    numbers = np.array(atoms.numbers, dtype=int)
    fidelity.check_structure(numbers)
    return numbers


class FidelityLabeler(ABC):
    """What every adapter holds: its fidelity (checked by :meth:`check_family`), threads per label and the
    sanity limits of ``alloop.labeling.sanity``; adapters add ``label``."""

    def __init__(
        self,
        fidelity: Fidelity,
        threads: int = 1,
        *,
        max_force_eV_per_A: float | None = None,
        net_force_eV_per_A: float | None = None,
    ) -> None:
        if not isinstance(fidelity, Fidelity):
            raise TypeError(f"expected a Fidelity, not {type(fidelity).__name__}")
        self.check_family(fidelity)
        self._fidelity = fidelity
        self.threads = check_threads(threads)
        self.limits = SanityLimits.for_fidelity(
            fidelity, max_force_eV_per_A=max_force_eV_per_A, net_force_eV_per_A=net_force_eV_per_A
        )

    @abstractmethod
    def check_family(self, fidelity: Fidelity) -> None:
        """FidelityError unless this adapter can label at ``fidelity`` (each adapter says which families)."""

    @property
    def fidelity(self) -> Fidelity:
        return self._fidelity

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._fidelity.name!r}, threads={self.threads})"


def check_threads(threads: object) -> int:
    """``threads`` if it is a positive integer (ValueError otherwise)."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive integer, not {threads!r}")
    return threads


class _ResultMeta(TypedDict):
    """The cost and the fidelity of a label: the keyword arguments :func:`label_with` gives every LabelResult."""

    cpu_seconds: float
    wall_seconds: float
    scf_cycles: int
    fidelity_name: str
    fidelity_hash: str
    provenance: Mapping[str, str]


def label_with(
    compute: Callable[[], Outcome], n_atoms: int, fidelity: Fidelity, limits: SanityLimits
) -> LabelResult:
    """Run ``compute`` (timed: CPU and wall seconds of this process) and make its LabelResult."""
    name, fidelity_hash, provenance = fidelity.name, fidelity.hash(), current_provenance(fidelity)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with np.errstate(all="ignore"):
        outcome = compute()
    meta: _ResultMeta = {
        "cpu_seconds": time.process_time() - cpu0,
        "wall_seconds": time.perf_counter() - wall0,
        "scf_cycles": outcome.cycles,
        "fidelity_name": name,
        "fidelity_hash": fidelity_hash,
        "provenance": provenance,
    }
    if outcome.status is not LabelStatus.OK:
        return LabelResult.failure(n_atoms, outcome.status, outcome.reason, **meta)
    energy = float(outcome.energy_eV)
    forces = np.asarray(outcome.forces_eV_per_A, dtype=float).reshape(n_atoms, 3)
    problem = consistency_problem(energy, forces, limits)
    if problem is not None:
        return LabelResult.failure(n_atoms, LabelStatus.INCONSISTENT, problem, **meta)
    return LabelResult(energy, forces, LabelStatus.OK, outcome.reason, **meta)
