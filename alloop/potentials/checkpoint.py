"""Model checkpoints: safetensors for the tensors, a JSON header for everything else.

A checkpoint is one safetensors blob whose ``__metadata__`` holds, under the
key ``alloop``, a JSON header: format version, architecture (registry name),
hyperparameters, elements, cutoff, dtype, the active per-element reference
energies, per-fidelity energy references ``{fidelity_hash: {Z: eV}}`` and free
metadata (metrics, cycle, ...). Nothing is ever unpickled: loading rebuilds
the model from the registry and copies the tensors into it, so a float64 model
round-trips bitwise. Writing to a path is atomic (temporary file, fsync,
``os.replace``), so a kill never leaves a half-written checkpoint.

:func:`load_checkpoint` also reads a MACE model file (``torch.save`` of a
MACE network: MACE-OFF, MACE-MP; :mod:`alloop.potentials.mace`), the one
foreign format it takes; that file is a pickle, read only when it is the
file given.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from alloop.errors import AlloopError
from alloop.io import write_atomic
from alloop.potentials.base import Potential, model_dtype
from alloop.potentials.registry import cast_model, model_class

FORMAT = "alloop-potential"
FORMAT_VERSION = 1
_HEADER_KEY = "alloop"


def _energy_references(raw: Any) -> dict[str, dict[int, float]]:
    """Validate and normalise ``{fidelity_hash: {Z: eV}}`` (Z as int, eV as float)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise AlloopError(f"energy_references must map fidelity hash -> {{Z: eV}}, got {type(raw).__name__}")
    out: dict[str, dict[int, float]] = {}
    for key, table in raw.items():
        if not isinstance(table, Mapping):
            raise AlloopError(f"energy_references[{key!r}] must map Z -> eV, got {type(table).__name__}")
        try:
            out[str(key)] = {int(z): float(e) for z, e in table.items()}
        except (TypeError, ValueError) as exc:
            raise AlloopError(f"energy_references[{key!r}]: {exc}") from None
    return out


def _header(model: Potential, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    free = dict(metadata or {})
    references = _energy_references(free.pop("energy_references", None))
    ae = model.atomic_energies.detach().cpu().to(torch.float64)
    active = {str(z): float(ae[z]) for z in range(ae.numel()) if z in model.elements or ae[z] != 0}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.registry_name,
        "hyperparameters": model.hyperparameters(),
        "elements": list(model.elements),
        "cutoff": model.cutoff,
        "dtype": str(model_dtype(model)).removeprefix("torch."),
        "atomic_energies": active,
        "energy_references": {k: {str(z): e for z, e in v.items()} for k, v in references.items()},
        "metadata": free,
    }


def checkpoint_to_bytes(model: Potential, metadata: Mapping[str, Any] | None = None) -> bytes:
    """Serialise a model; ``metadata`` is JSON-serialisable, its ``energy_references`` key is validated."""
    if not model.registry_name:
        raise AlloopError(f"{type(model).__name__} has no registry_name and cannot be checkpointed")
    header = _header(model, metadata)
    try:
        text = json.dumps(header, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise AlloopError(f"checkpoint metadata is not JSON-serialisable: {exc}") from None
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    return st_save(tensors, metadata={_HEADER_KEY: text})


def _read_header(blob: bytes) -> dict[str, Any]:
    if len(blob) < 8:
        raise AlloopError("not an alloop checkpoint: too short")
    (size,) = struct.unpack("<Q", blob[:8])
    if size > len(blob) - 8:
        raise AlloopError("not an alloop checkpoint: truncated or corrupt header")
    try:
        raw = json.loads(blob[8 : 8 + size])
        header = json.loads(raw["__metadata__"][_HEADER_KEY])
    except (ValueError, KeyError, TypeError) as exc:
        raise AlloopError(f"not an alloop checkpoint: unreadable header ({type(exc).__name__})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise AlloopError("not an alloop checkpoint: wrong format tag")
    if header.get("format_version") != FORMAT_VERSION:
        raise AlloopError(f"unsupported checkpoint format version {header.get('format_version')!r}")
    return header


def model_from_bytes(blob: bytes) -> tuple[Potential, dict[str, Any]]:
    """Rebuild a model from :func:`checkpoint_to_bytes`; returns (model, metadata).

    ``metadata`` is the free metadata given at save time plus ``energy_references``
    (always present, ``{fidelity_hash: {Z: eV}}``, possibly empty).
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    header = _read_header(blob)
    try:
        tensors = st_load(blob)
    except Exception as exc:  # safetensors raises its own error types for corrupt data
        raise AlloopError(f"corrupt checkpoint tensors: {exc}") from None
    try:
        cls = model_class(header["architecture"])
    except AlloopError:
        raise AlloopError(f"checkpoint architecture '{header['architecture']}' is not registered") from None
    hparams = dict(header["hyperparameters"])
    elements = hparams.pop("elements", header["elements"])
    try:
        model = cls(elements, **hparams)
        cast_model(model, header["dtype"])
        if "output_scale" in model._buffers:  # checkpoints written before it existed
            tensors.setdefault("output_scale", torch.ones((), dtype=torch.float64))
        model.load_state_dict(tensors, strict=True)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise AlloopError(f"checkpoint does not match architecture '{header['architecture']}': {exc}") from None
    metadata = dict(header.get("metadata") or {})
    metadata["energy_references"] = _energy_references(header.get("energy_references"))
    return model, metadata


def save_checkpoint(model: Potential, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (:func:`alloop.io.write_atomic`: tmp file, fsync, rename); returns the path."""
    return write_atomic(path, checkpoint_to_bytes(model, metadata))


#: how a ``torch.save`` file starts (a zip archive; the legacy format: pickle protocol 2)
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80\x02")


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[Potential, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`, or a MACE model file (metadata: ``source_file``, no
    energy references); AlloopError if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise AlloopError(f"checkpoint not found: {path}")
    return checkpoint_from_bytes(path, path.read_bytes())


def checkpoint_from_bytes(path: Path, blob: bytes) -> tuple[Potential, dict[str, Any]]:
    """:func:`load_checkpoint` of the bytes ``blob`` read from ``path`` (named in errors; a MACE file is read
    again from it)."""
    if blob.startswith(_TORCH_MAGIC):
        return _mace_file(path), {"energy_references": {}, "source_file": str(path.resolve())}
    try:
        model, metadata = model_from_bytes(blob)
    except AlloopError as exc:
        raise AlloopError(f"{path}: {exc}") from None
    return model, metadata


def _mace_file(path: Path) -> Potential:
    """The model of a MACE model file (ConfigError naming the pip command without mace installed)."""
    cls = model_class("mace")
    try:
        return cls(model_file=str(path.resolve()))  # type: ignore[call-arg]
    except (ValueError, RuntimeError, AttributeError, ImportError) as exc:
        raise AlloopError(f"{path}: not a MACE model file alloop can read ({exc})") from None
