"""LabelResult: the outcome of labelling one structure at one fidelity.

Failures are data: a result always exists, with a status and a reason.
Energies are in eV and forces in eV/Angstrom; a result that is not ``ok``
carries NaN energy and forces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class LabelStatus(str, Enum):
    """Outcome of a label. The string values are what the store records."""

    OK = "ok"
    SCF_NOT_CONVERGED = "scf_not_converged"
    FAILED = "failed"
    INCONSISTENT = "inconsistent"


#: integer codes used in the store (status arrays are int8)
STATUS_CODES: dict[LabelStatus, int] = {
    LabelStatus.OK: 0,
    LabelStatus.SCF_NOT_CONVERGED: 1,
    LabelStatus.FAILED: 2,
    LabelStatus.INCONSISTENT: 3,
}
STATUS_FROM_CODE: dict[int, LabelStatus] = {v: k for k, v in STATUS_CODES.items()}


@dataclass(frozen=True)
class LabelResult:
    """Energy (eV) and forces (eV/Angstrom) of one structure, or why there are none."""

    energy_eV: float
    forces_eV_per_A: np.ndarray = field(repr=False)
    status: LabelStatus
    reason: str = ""
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    scf_cycles: int = 0
    fidelity_name: str = ""
    fidelity_hash: str = ""
    #: the software that computed it (alloop.labeling.provenance); empty: unknown
    provenance: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is LabelStatus.OK

    @classmethod
    def failure(
        cls,
        n_atoms: int,
        status: LabelStatus,
        reason: str,
        **kwargs: Any,
    ) -> LabelResult:
        """A result with NaN energy and forces for a structure of ``n_atoms`` atoms."""
        if status is LabelStatus.OK:
            raise ValueError("a failure cannot have status ok")
        return cls(
            energy_eV=float("nan"),
            forces_eV_per_A=np.full((n_atoms, 3), np.nan),
            status=status,
            reason=reason,
            **kwargs,
        )
