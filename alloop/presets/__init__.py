"""The YAML presets shipped with the package: ``fidelities/``, ``models/`` and ``clusters/`` beside this file.

They are package data (a wheel carries them; the repository's ``configs/`` is a link to this folder), found
with :mod:`importlib.resources` the same way from a checkout, an editable install and a wheel. Presets are
looked up by short name (``b3lyp-svp``), never by import path. ``ALLOOP_CONFIGS`` names another folder with
the same three sub-folders instead (a site's own presets).
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from alloop.errors import ConfigError

_SINGULAR = {"fidelities": "fidelity", "models": "model", "clusters": "cluster"}


def configs_dir() -> Path:
    """The folder holding ``fidelities/``, ``models/`` and ``clusters/`` presets."""
    env = os.environ.get("ALLOOP_CONFIGS")
    if env:
        return Path(env)
    return Path(str(files(__name__)))


def preset_names(kind: str) -> list[str]:
    """Names of the presets of one kind (``fidelities``, ``models``, ``clusters``)."""
    folder = configs_dir() / kind
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_preset(kind: str, name: str) -> dict[str, Any]:
    """Read one preset as a dict; unknown names raise ConfigError listing the known ones."""
    path = configs_dir() / kind / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(preset_names(kind)) or "none"
        raise ConfigError(f"unknown {_SINGULAR.get(kind, kind)} preset '{name}' (known: {known})")
    with path.open() as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset {path} must be a mapping")
    return data
