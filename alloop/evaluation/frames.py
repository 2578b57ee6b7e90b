"""A labelled evaluation set as plain arrays: what every model a campaign trains is scored on.

:func:`read_evaluation_frames` reads an extxyz file whose frames carry an
energy (an ``atoms.info`` key or a calculator result) and forces (an
``atoms.arrays`` key or a calculator result) and checks them;
:class:`EvaluationFrames` holds them as arrays (eV, Angstrom, eV/Angstrom),
packed into bytes (an ``.npz``, nothing pickled) for the campaign store. The
campaign file's ``evaluation:`` section is :mod:`alloop.config.evaluation`.
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

from alloop.errors import AlloopError
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
    cells: np.ndarray | None = None  # [M, 3, 3] Angstrom, periodic sets only
    pbc: np.ndarray | None = None  # [M, 3]

    @property
    def n_frames(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def elements(self) -> list[int]:
        return sorted({int(z) for z in np.unique(self.numbers)})

    def dataset_arrays(self) -> dict[str, Any]:
        """Keyword arguments of a FrameDataset of these frames (numbers, positions, offsets; cells and pbc)."""
        return {"numbers": self.numbers, "positions": self.positions_A, "offsets": self.offsets,
                "cells": self.cells, "pbc": self.pbc}

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        periodic = {} if self.pbc is None or self.cells is None else {"cells": self.cells, "pbc": self.pbc}
        # allow_pickle=True: numpy's default, named so that mypy lets **periodic pass
        np.savez(buffer, allow_pickle=True, numbers=self.numbers, positions_A=self.positions_A, offsets=self.offsets,
                 energy_eV=self.energy_eV, forces_eV_per_A=self.forces_eV_per_A,
                 header=np.array(json.dumps(self.header)), **periodic)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> EvaluationFrames:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            arrays = {k: np.array(data[k]) for k in _ARRAYS}
            periodic = {k: np.array(data[k]) for k in ("cells", "pbc") if k in data.files}
            header = json.loads(str(data["header"]))
        return cls(**arrays, header=header, **periodic)


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
        if atoms.pbc.any() and (not atoms.pbc.all() or not abs(atoms.cell.volume) > 1e-9):
            raise AlloopError(f"frame {k}: alloop handles molecules and cells periodic in all three directions, not "
                              f"pbc={atoms.pbc.tolist()} with a cell of volume {abs(atoms.cell.volume):.3g} A^3")
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
        **({"cells": np.stack([a.cell.array for a in structures]), "pbc": np.stack([a.pbc for a in structures])}
           if any(a.pbc.any() for a in structures) else {}),
        header={"source": str(path), "energy_key": energy_key, "forces_key": forces_key,
                "recorded_fidelity_hashes": hashes},
    )
