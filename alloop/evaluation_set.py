"""A campaign's fixed evaluation set: labelled frames every model the campaign trains is scored on.

The campaign file's optional section ``evaluation: {structures: FILE.extxyz,
energy_key: energy, forces_key: forces}`` names an extxyz file (relative to the
campaign file) of frames labelled at the campaign's **expensive** fidelity
(the model predicts that fidelity's absolute energies). ``energy_key`` is an
``atoms.info`` key or a calculator result, ``forces_key`` an ``atoms.arrays``
key or a calculator result: ASE's standard ``energy``/``forces`` by default,
``REF_energy``/``REF_forces`` as MACE writes them, or any other.

:class:`EvaluationConfig` checks the file when the campaign is validated and
records its SHA-256; :class:`EvaluationFrames` is the set as plain arrays
(eV, Angstrom, eV/Angstrom), packed into bytes (an ``.npz``, nothing pickled)
for the campaign store.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from pydantic import Field, ValidationInfo, field_validator, model_validator

from alloop.config_base import Section, base_dir_of, checks_files
from alloop.errors import AlloopError, ConfigError
from alloop.io import read_structures


_ARRAYS = ("numbers", "positions_A", "offsets", "energy_eV", "forces_eV_per_A")


@dataclass(frozen=True)
class EvaluationFrames:
    """M labelled frames packed end to end: atoms of frame j are ``offsets[j]:offsets[j+1]``."""

    numbers: np.ndarray  # [N] atomic numbers
    positions_A: np.ndarray  # [N, 3]
    offsets: np.ndarray  # [M + 1]
    energy_eV: np.ndarray  # [M]
    forces_eV_per_A: np.ndarray  # [N, 3]
    header: dict[str, Any] = field(default_factory=dict)  # source, sha256, keys, ... (JSON)

    @property
    def n_frames(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def elements(self) -> list[int]:
        return sorted({int(z) for z in np.unique(self.numbers)})

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, numbers=self.numbers, positions_A=self.positions_A, offsets=self.offsets,
                 energy_eV=self.energy_eV, forces_eV_per_A=self.forces_eV_per_A,
                 header=np.array(json.dumps(self.header)))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "EvaluationFrames":
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            arrays = {k: np.array(data[k]) for k in _ARRAYS}
            header = json.loads(str(data["header"]))
        return cls(**arrays, header=header)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _energy(atoms: Atoms, key: str) -> float | None:
    results = getattr(atoms.calc, "results", None) or {}
    value = atoms.info.get(key, results.get(key))
    return None if value is None else float(np.asarray(value, dtype=float).reshape(-1)[0])


def _forces(atoms: Atoms, key: str) -> np.ndarray | None:
    results = getattr(atoms.calc, "results", None) or {}
    value = atoms.arrays.get(key) if key in atoms.arrays else results.get(key)
    return None if value is None else np.asarray(value, dtype=float)


def read_evaluation_frames(
    path: str | Path, energy_key: str = "energy", forces_key: str = "forces"
) -> EvaluationFrames:
    """The labelled frames of ``path``; AlloopError (the reason, naming the first bad frame) otherwise."""
    structures = read_structures(path)
    energies, forces = [], []
    for k, atoms in enumerate(structures):
        energy, force = _energy(atoms, energy_key), _forces(atoms, forces_key)
        results = sorted(getattr(atoms.calc, "results", None) or {})
        if energy is None:
            raise AlloopError(f"frame {k} has no energy '{energy_key}' (info keys {sorted(atoms.info)}, calculator"
                              f" results {results}; set evaluation.energy_key)")
        if force is None:
            arrays = sorted(set(atoms.arrays) - {"numbers", "positions"})
            raise AlloopError(f"frame {k} has no forces '{forces_key}' (per-atom arrays {arrays}, calculator"
                              f" results {results}; set evaluation.forces_key)")
        if force.shape != (len(atoms), 3):
            raise AlloopError(f"frame {k}: forces '{forces_key}' have shape {force.shape}, not ({len(atoms)}, 3)")
        if not (np.isfinite(energy) and np.all(np.isfinite(force))):
            raise AlloopError(f"frame {k} has non-finite energy or forces")
        if atoms.pbc.any():
            raise AlloopError(f"frame {k} is periodic; alloop handles molecules only (pbc=False)")
        energies.append(energy)
        forces.append(force)
    sizes = np.array([len(a) for a in structures], dtype=np.int64)
    hashes = sorted({str(a.info["fidelity_hash"]) for a in structures if "fidelity_hash" in a.info})
    return EvaluationFrames(
        numbers=np.concatenate([a.numbers for a in structures]).astype(np.int64),
        positions_A=np.concatenate([a.positions for a in structures]).astype(np.float64),
        offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        energy_eV=np.asarray(energies, dtype=np.float64),
        forces_eV_per_A=np.concatenate(forces).astype(np.float64),
        header={"source": str(path), "energy_key": energy_key, "forces_key": forces_key,
                "recorded_fidelity_hashes": hashes},
    )


class EvaluationConfig(Section):
    """A fixed labelled set (at the expensive fidelity) every new model is scored on."""

    structures: Path = Field(description="extxyz file of labelled frames, relative to the campaign file")
    energy_key: str = Field(default="energy", min_length=1, description="info key (or calculator result), eV")
    forces_key: str = Field(default="forces", min_length=1, description="per-atom array (or calculator result), eV/A")
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", validate_default=True,
        description="the file's SHA-256, filled in at validation; if given, the file must match it",
    )

    @model_validator(mode="before")
    @classmethod
    def _file_only(cls, data: Any) -> Any:
        return {"structures": data} if isinstance(data, (str, Path)) else data

    @field_validator("structures")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        path = (base_dir_of(info) / value.expanduser()).resolve()
        if checks_files(info) and not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path

    @field_validator("sha256")
    @classmethod
    def _read(cls, value: str | None, info: ValidationInfo) -> str | None:
        path = info.data.get("structures")
        keys = info.data.get("energy_key"), info.data.get("forces_key")
        if not checks_files(info) or path is None or None in keys:
            return value
        try:
            read_evaluation_frames(path, *keys)
            digest = file_sha256(path)
        except (AlloopError, OSError) as exc:
            raise ConfigError(f"evaluation.structures: {path}: {exc}") from None
        if value is not None and value != digest:
            raise ConfigError(f"evaluation.sha256: {path} has SHA-256 {digest}, not the {value} given here")
        return digest


def check_evaluation_elements(cfg: EvaluationConfig, elements: list[int]) -> None:
    """ConfigError unless every element of the evaluation frames is among the system's ``elements``."""
    from ase.data import chemical_symbols

    frames = read_evaluation_frames(cfg.structures, cfg.energy_key, cfg.forces_key)
    for j in range(frames.n_frames):
        extra = sorted({int(z) for z in frames.numbers[frames.offsets[j]:frames.offsets[j + 1]]} - set(elements))
        if extra:
            names = ", ".join(chemical_symbols[z] for z in extra)
            known = ", ".join(chemical_symbols[z] for z in elements)
            raise ConfigError(f"evaluation.structures: frame {j} has elements ({names}) that the system's structures"
                              f" do not have ({known}); the model knows only those")
