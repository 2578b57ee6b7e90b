"""Trained models out of alloop: load one from a campaign or a checkpoint, export it.

``alloop.calculator(...)`` (the public entry point) uses :func:`load_trained`;
``alloop export RUN_DIR --model`` uses :func:`export_model`. Loading imports
torch, so the names here are resolved on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TrainedModel": "alloop.deploy.loading",
    "load_trained": "alloop.deploy.loading",
    "use_fidelity": "alloop.deploy.loading",
    "export_model": "alloop.deploy.export",
    "format_names": "alloop.deploy.export",
    "register_format": "alloop.deploy.export",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'alloop.deploy' has no attribute {name!r}")
