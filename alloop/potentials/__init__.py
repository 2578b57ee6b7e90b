"""Potentials: energy per structure, forces by autograd, per-atom latent features.

The protocol (``AtomsBatch``, ``Potential``, ``PotentialOutput``) is imported
eagerly; models, the registry, checkpoints and the ASE calculator are loaded
on first access (torch-geometric takes seconds to import).
"""

from __future__ import annotations

import importlib
from typing import Any

from alloop.potentials.base import AtomsBatch, Potential, PotentialOutput

_LAZY = {
    "EGNN": "alloop.potentials.egnn",
    "PairPotential": "alloop.potentials.pair",
    "TwoHeadPotential": "alloop.potentials.two_head",
    "build_model": "alloop.potentials.registry",
    "register_model": "alloop.potentials.registry",
    "model_preset": "alloop.potentials.registry",
    "model_names": "alloop.potentials.registry",
    "checkpoint_to_bytes": "alloop.potentials.checkpoint",
    "model_from_bytes": "alloop.potentials.checkpoint",
    "save_checkpoint": "alloop.potentials.checkpoint",
    "load_checkpoint": "alloop.potentials.checkpoint",
    "PotentialCalculator": "alloop.potentials.calculator",
}

__all__ = ["AtomsBatch", "Potential", "PotentialOutput", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'alloop.potentials' has no attribute {name!r}")
