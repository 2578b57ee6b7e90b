"""Labelling: structures in, energies and forces (or a recorded failure) out.

The names below are imported on first use (PEP 562), so that reading a store (which needs only
``alloop.labeling.result`` and ``alloop.labeling.provenance``) does not import the labellers, the fidelity models
and pydantic: ``alloop status`` starts faster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alloop.labeling.base import Labeler
    from alloop.labeling.factory import labeler_for
    from alloop.labeling.pyscf_labeler import PySCFLabeler
    from alloop.labeling.pyscf_methods import check_fidelity
    from alloop.labeling.result import LabelResult, LabelStatus
    from alloop.labeling.xtb_labeler import XTBLabeler

_HOMES = {
    "Labeler": "base", "labeler_for": "factory", "PySCFLabeler": "pyscf_labeler", "check_fidelity": "pyscf_methods",
    "LabelResult": "result", "LabelStatus": "result", "XTBLabeler": "xtb_labeler",
}

__all__ = ["Labeler", "LabelResult", "LabelStatus", "PySCFLabeler", "XTBLabeler", "check_fidelity", "labeler_for"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'alloop.labeling' has no attribute {name!r}")
    return getattr(importlib.import_module(f"alloop.labeling.{_HOMES[name]}"), name)
