"""ASE calculator for any Potential: energy, forces and per-atom latent features.

``atoms.calc = PotentialCalculator(model)`` then ``atoms.get_forces()`` or any
ASE dynamics. Results are cached by ASE's ``Calculator.check_state``: a
second request for the same positions, numbers, cell and pbc reuses them.
The per-atom latent features (for Q-residual scoring) are in
``calc.results["features"]`` ([N, F] numpy) or ``calc.get_property("features", atoms)``.
Periodic structures (a cell with pbc) get the periodic images of the neighbour search; no stress.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from alloop.potentials.base import AtomsBatch, Potential, model_dtype
from alloop.potentials.registry import cast_model, parse_dtype


class PotentialCalculator(Calculator):
    """Wrap a :class:`Potential` as an ASE calculator.

    ``dtype`` (default: the model's) and ``device`` set where and in which
    precision the model runs. The calculator uses ``model`` itself when it
    already has that dtype and device, and otherwise a converted copy (the
    caller's model is never modified); ``calc.model`` is the one in use. After
    changing the weights of ``calc.model`` in place, call ``calc.reset()``.
    ``model_info`` (a dict, empty by default) says where the model came from;
    :func:`alloop.calculator` fills it (source, version, role, cycle, fidelity).
    """

    implemented_properties = ["energy", "free_energy", "forces", "features"]

    def __init__(
        self,
        model: Potential,
        dtype: str | torch.dtype | None = None,
        device: str | torch.device = "cpu",
        model_info: Mapping[str, Any] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(model, Potential):
            raise TypeError(f"expected a Potential, got {type(model).__name__}")
        self.dtype = model_dtype(model) if dtype is None else parse_dtype(dtype)
        self.device = torch.device(device)
        current_device = next(iter(model.buffers())).device
        if model_dtype(model) != self.dtype or current_device != self.device:
            model = cast_model(copy.deepcopy(model), self.dtype).to(self.device)
        self.model = model
        self.model_info: dict[str, Any] = dict(model_info or {})

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        batch = AtomsBatch.from_atoms([self.atoms], dtype=self.dtype, device=self.device)
        out = self.model(batch, compute_forces="forces" in properties)
        energy = float(out.energy.detach()[0].cpu())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "features": out.features.detach().cpu().numpy().astype(np.float64),
        }
        if out.forces is not None:
            self.results["forces"] = out.forces.detach().cpu().numpy().astype(np.float64)
