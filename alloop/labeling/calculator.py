"""An ASE calculator whose energy and forces come from a Labeler (optimisation, ab initio MD)."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from alloop.errors import AlloopError
from alloop.labeling.base import Labeler
from alloop.labeling.result import LabelResult


class LabelerCalculator(Calculator):
    """Energy (eV) and forces (eV/Angstrom) of ``labeler``; a failed label raises AlloopError with its reason.

    ``last_result`` is the LabelResult of the latest calculation (its cost, SCF cycles, fidelity hash) and
    ``n_calls`` counts the labels computed.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, labeler: Labeler) -> None:
        super().__init__()
        self.labeler = labeler
        self.last_result: LabelResult | None = None
        self.n_calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        result = self.labeler.label(self.atoms)
        self.n_calls += 1
        if not result.ok:
            raise AlloopError(f"{self.labeler.fidelity.name} label failed: {result.status.value}: {result.reason}")
        self.last_result = result
        self.results = {"energy": float(result.energy_eV), "forces": np.array(result.forces_eV_per_A)}
