"""Structure files: read any ASE-readable file or an ``ase.build.molecule`` name; labelled extxyz.

Labelled structures carry energy (eV) and forces (eV/Angstrom) as ASE
calculator results (a SinglePointCalculator), which extxyz writes as the
standard ``energy`` and ``forces`` fields; metadata goes in ``atoms.info``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from alloop.errors import AlloopError


def read_structures(source: str | Path, index: str = ":") -> list[Atoms]:
    """All structures of an ASE-readable file, or the molecule ``ase.build.molecule`` knows by that name."""
    path = Path(source)
    if path.exists():
        try:
            structures = ase.io.read(path, index=index)
        except Exception as exc:  # ASE raises many types for unreadable files
            raise AlloopError(f"cannot read structures from {path}: {exc}") from exc
        structures = structures if isinstance(structures, list) else [structures]
        if not structures:
            raise AlloopError(f"{path} holds no structures")
        return structures
    from ase.build import molecule
    from ase.collections import g2

    if str(source) in g2.names:
        return [molecule(str(source))]
    raise AlloopError(f"'{source}' is neither a file nor a molecule name that ase.build.molecule knows")


def attach_label(
    atoms: Atoms,
    energy_eV: float,
    forces_eV_per_A: np.ndarray,
    info: Mapping[str, Any] | None = None,
) -> Atoms:
    """A copy of ``atoms`` carrying energy and forces as calculator results, plus ``info``."""
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.info.update(atoms.info)
    if info:
        out.info.update(info)
    out.calc = SinglePointCalculator(out, energy=float(energy_eV), forces=np.asarray(forces_eV_per_A, dtype=float))
    return out


def read_labelled(path: str | Path) -> list[Atoms]:
    """Structures with reference energy and forces; raises AlloopError naming the first frame without them."""
    structures = read_structures(path)
    for k, atoms in enumerate(structures):
        calc = atoms.calc
        if calc is None or "energy" not in calc.results or "forces" not in calc.results:
            raise AlloopError(f"{path}: frame {k} has no energy and forces")
    return structures


def write_extxyz(path: str | Path, structures: Iterable[Atoms]) -> None:
    """Write structures (with their calculator results and info) as standard extxyz."""
    ase.io.write(Path(path), list(structures), format="extxyz")
