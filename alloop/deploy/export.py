"""Write a trained model to a file other tools load: one exporter per format.

``alloop`` (every architecture): a standalone alloop checkpoint (safetensors
plus a JSON header) that ``alloop.calculator(FILE)`` and ``alloop evaluate
FILE DATA`` load. ``sevenn`` (SevenNet models): sevenn's own checkpoint
(:func:`write_sevenn`, through ``alloop.potentials.sevennet_export``), which sevenn's ASE calculator and its
LAMMPS deployment load, alloop's energy references folded in. ``mace`` (MACE models): a MACE model file
(:func:`write_mace`, through ``alloop.potentials.mace_export``) that ``mace.calculators.MACECalculator`` loads.
A Delta model goes to neither (their calculators cannot add its GFN-xTB baseline): format ``alloop`` keeps it
whole. A format for one architecture's own tools joins with one
entry in ``_BUILTIN`` (module, function, architectures), imported on first use,
or at run time with :func:`register_format`. An exporter is
``function(trained: TrainedModel, path: Path) -> Path``.

This module imports nothing heavy at import time (the CLI lists the formats).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alloop._version import __version__
from alloop.errors import AlloopError

if TYPE_CHECKING:
    from alloop.deploy.loading import TrainedModel

Exporter = Callable[["TrainedModel", Path], Path]

#: format -> (module, function, architectures it handles or None for all)
_BUILTIN: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "alloop": ("alloop.deploy.export", "write_alloop", None),
    "sevenn": ("alloop.deploy.export", "write_sevenn", ("sevennet",)),
    "mace": ("alloop.deploy.export", "write_mace", ("mace",)),
}
_REGISTERED: dict[str, tuple[Exporter, tuple[str, ...] | None]] = {}


def format_names() -> list[str]:
    """The model export formats, built-in first."""
    return [*_BUILTIN, *(n for n in _REGISTERED if n not in _BUILTIN)]


def register_format(name: str, function: Exporter, architectures: Sequence[str] | None = None) -> None:
    """Add an export format (``architectures``: the registry names it handles; None: every one)."""
    if name in _BUILTIN:
        raise ValueError(f"export format '{name}' is built in")
    _REGISTERED[name] = (function, None if architectures is None else tuple(architectures))


def _exporter(name: str) -> tuple[Exporter, tuple[str, ...] | None]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise AlloopError(f"unknown model format '{name}' (formats: {', '.join(format_names())})")
    module, function, architectures = _BUILTIN[name]
    return getattr(importlib.import_module(module), function), architectures


def export_model(trained: TrainedModel, path: str | Path, fmt: str = "alloop") -> Path:
    """Write ``trained`` to ``path`` in format ``fmt``; AlloopError if the format does not take its architecture."""
    function, architectures = _exporter(fmt)
    architecture = trained.model.registry_name
    if architecture == "delta" and architectures is not None:
        inner = getattr(trained.model, "inner", None)
        raise AlloopError(f"format '{fmt}' cannot hold {trained.description}: it is a Delta model (a "
                          f"'{getattr(inner, 'registry_name', '?')}' model plus a GFN-xTB baseline), and {fmt}'s "
                          "calculator has no baseline to add back; export it with --format alloop "
                          "(alloop.calculator adds the baseline)")
    if architectures is not None and architecture not in architectures:
        raise AlloopError(f"format '{fmt}' exports {', '.join(architectures)} models; "
                          f"{trained.description} is a '{architecture}' model (format 'alloop' takes every model)")
    return function(trained, Path(path))


def export_metadata(trained: TrainedModel) -> dict[str, Any]:
    """The exported checkpoint's metadata: the model's own plus where it came from and its active fidelity."""
    meta = {k: v for k, v in trained.metadata.items() if k not in ("exported_from",)}
    if trained.fidelity is not None:
        meta["fidelity"] = trained.fidelity["hash"]
        meta["fidelity_name"] = trained.fidelity["name"]
    if trained.fidelities:
        meta["fidelities"] = trained.fidelities
    meta["role"] = trained.role
    meta["exported_from"] = {
        **trained.summary(),
        "alloop_version": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return meta


def write_alloop(trained: TrainedModel, path: Path) -> Path:
    """A standalone alloop checkpoint: the weights, the active references and every fidelity's references."""
    from alloop.potentials.checkpoint import save_checkpoint

    return save_checkpoint(trained.model, path, export_metadata(trained))


def write_sevenn(trained: TrainedModel, path: Path) -> Path:
    """sevenn's own checkpoint: the model at its active references, provenance under the key ``alloop``."""
    from alloop.potentials.sevennet import SevenNet
    from alloop.potentials.sevennet_export import write_sevenn_checkpoint

    assert isinstance(trained.model, SevenNet)  # the format is offered for sevennet models only (_BUILTIN)
    meta = export_metadata(trained)
    keep = ("exported_from", "fidelity", "fidelity_name", "role", "cycle")
    return write_sevenn_checkpoint(trained.model, path, {k: meta[k] for k in keep if k in meta})


def write_mace(trained: TrainedModel, path: Path) -> Path:
    """A MACE model file: the model at its active references, provenance as the network's ``alloop_provenance``."""
    from alloop.potentials.mace import MACEPotential
    from alloop.potentials.mace_export import write_mace_model

    assert isinstance(trained.model, MACEPotential)  # the format is offered for mace models only (_BUILTIN)
    meta = export_metadata(trained)
    keep = ("exported_from", "fidelity", "fidelity_name", "role", "cycle")
    return write_mace_model(trained.model, path, {k: meta[k] for k in keep if k in meta})
