"""Forgetting: how far a fine-tuned model's predictions moved from its original model's, outside the campaign.

The score compares two models on the same structures (the forgetting set of
:mod:`alloop.system.outside`, labelled by the original with
:func:`~alloop.training.metrics.pseudo_labelled`); no labeller is involved:

- ``force_mae_eV_per_A``: mean |F_model - F_original| over all force components;
- ``energy_mae_per_atom_eV``: mean over frames of |dE_k| / n_atoms_k, where
  dE = E_model - E_original after removing per-element offsets fitted by least
  squares on the element counts. The fine-tuned model is re-referenced to the
  campaign's fidelity (its ``atomic_energies``), so its raw energies differ from
  the original's by per-element constants that say nothing about forgetting;
  what remains is the change of the energy landscape (relative energies of the
  rattled frames and of the molecules against each other).

Both are zero for the original itself. Molecules only: no periodic bulk crystal
is scored, because alloop's potentials have no cell.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.potentials.inference import predict
from alloop.training.data import FrameDataset
from alloop.training.references import without_element_offsets


@dataclass(frozen=True)
class ForgettingScores:
    """Change of a model against its original on the outside set (eV/A, eV/atom)."""

    force_mae_eV_per_A: float
    energy_mae_per_atom_eV: float
    n_frames: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def forgetting_scores(model: Potential, reference: FrameDataset, batch_size: int = 32) -> ForgettingScores:
    """``model`` against ``reference``: outside structures labelled by the original model (module docstring)."""
    if not reference.labelled:
        raise AlloopError("the forgetting reference needs the original model's energies and forces")
    unknown = set(reference.elements) - set(model.elements)
    if unknown:
        raise AlloopError(f"outside structures have elements {sorted(unknown)} the model does not know")
    energy, forces = predict(model, reference, batch_size)
    residual = without_element_offsets(reference, energy - reference.energy)
    return ForgettingScores(
        force_mae_eV_per_A=float(np.mean(np.abs(forces - reference.forces))),
        energy_mae_per_atom_eV=float(np.mean(np.abs(residual) / reference.sizes)),
        n_frames=len(reference),
    )
