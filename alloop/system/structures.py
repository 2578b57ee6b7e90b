"""The campaign's starting structures: where they come from, and whether they can be simulated and labelled.

A source is an ASE-readable file (a path relative to the campaign file's
folder) or a name ``ase.build.molecule`` knows. Files win over names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError, ConfigError
from alloop.io import read_structures


def resolve_source(source: str, base_dir: str | Path) -> str:
    """An absolute file path if ``source`` names a file (relative to ``base_dir``), else the molecule name.

    Raises ValueError (a configuration mistake) when it is neither.
    """
    path = (Path(base_dir) / Path(source).expanduser()).resolve()
    if path.is_file():
        return str(path)
    from alloop.io import molecule_names

    if source in molecule_names():
        return source
    raise ValueError(f"file not found: {path} (nor is '{source}' a molecule name ase.build.molecule knows)")


def load_structures(source: str | Path | Sequence[str]) -> list[Atoms]:
    """The starting structures of a resolved source (see :func:`resolve_source`), or of several in turn, without
    calculators."""
    sources = [source] if isinstance(source, (str, Path)) else list(source)
    try:
        structures = [atoms for one in sources for atoms in read_structures(one)]
    except AlloopError as exc:
        raise ConfigError(f"system.structures: {exc}") from None
    out = []
    for atoms in structures:
        clean = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        clean.info.update(atoms.info)
        out.append(clean)
    return out


def elements_of(structures: Sequence[Atoms]) -> list[int]:
    """Sorted atomic numbers present in any of the structures (the model's element list)."""
    return sorted({int(z) for atoms in structures for z in atoms.numbers})


def pair_distances(positions: np.ndarray, cell: np.ndarray | None = None) -> np.ndarray:
    """Distances [..., n, n] between the atoms of positions [..., n, 3]; minimum-image ones in ``cell`` (3x3, rows
    the lattice vectors; exact while no distance asked for exceeds half the cell's shortest height)."""
    delta = positions[..., None, :, :] - positions[..., :, None, :]
    if cell is not None:
        cell = np.asarray(cell, dtype=np.float64)
        frac = delta @ np.linalg.inv(cell)
        delta = (frac - np.round(frac)) @ cell
    return np.linalg.norm(delta, axis=-1)


def periodic_cell(atoms: Atoms) -> np.ndarray | None:
    """The cell [3, 3] of a structure periodic in all three directions, None for a molecule; AlloopError for a
    slab, a wire or a cell without volume (alloop simulates molecules and 3D-periodic cells)."""
    if not atoms.pbc.any():
        return None
    if not atoms.pbc.all() or not abs(atoms.cell.volume) > 1e-9:
        raise AlloopError(f"alloop simulates molecules and cells periodic in all three directions with a volume, not "
                          f"pbc={atoms.pbc.tolist()} with a cell of volume {abs(atoms.cell.volume):.3g} A^3")
    return np.array(atoms.cell.array, dtype=np.float64)


def min_distance_A(atoms: Atoms) -> float:
    """The shortest interatomic distance (inf for a single atom without images; minimum image in a cell)."""
    if len(atoms) < 2:
        return float("inf")
    d = pair_distances(atoms.positions, periodic_cell(atoms))
    return float(d[np.triu_indices(len(atoms), k=1)].min())


def check_structures(structures: Sequence[Atoms], *, charge: int, spin: int, min_distance: float) -> None:
    """Raise ConfigError (key path ``system.*``) for structures alloop cannot simulate at this charge and spin."""
    first = None
    for k, atoms in enumerate(structures):
        where = f"structure {k}" if len(structures) > 1 else "the structure"
        if len(atoms) == 0:
            raise ConfigError(f"system.structures: {where} has no atoms")
        try:
            cell = periodic_cell(atoms)
        except AlloopError as exc:
            raise ConfigError(f"system.structures: {where}: {exc}") from None
        first = cell if k == 0 else first
        if (cell is None) != (first is None) or (cell is not None and first is not None and not np.allclose(cell, first)):
            raise ConfigError(f"system.structures: {where} has another cell than structure 0; the cell is fixed "
                              "(NVT), so every start shares one (or every start is a molecule)")
        n_electrons = int(atoms.numbers.sum()) - charge
        if n_electrons <= 0:
            raise ConfigError(f"system.charge: leaves {n_electrons} electrons in {where} ({atoms.get_chemical_formula()})")
        if (n_electrons - spin) % 2 != 0:
            raise ConfigError(
                f"system.spin: {n_electrons} electrons in {where} ({atoms.get_chemical_formula()}, charge {charge})"
                f" cannot have spin (2S) = {spin}; the parities of the electron count and 2S must agree"
            )
        if spin > n_electrons:
            raise ConfigError(f"system.spin: {spin} exceeds the {n_electrons} electrons in {where}")
        closest = min_distance_A(atoms)
        if closest < min_distance:
            raise ConfigError(
                f"system.structures: {where} has atoms {closest:.3f} A apart, closer than md.min_distance_A"
                f" ({min_distance:g}); MD would stop at once"
            )


def summarize(structures: Sequence[Atoms]) -> dict[str, Any]:
    """Counts for a user's dry run: structures, atoms, formulas, elements and the periodic cell (JSON-serialisable)."""
    sizes = [len(a) for a in structures]
    formulas = Counter(a.get_chemical_formula() for a in structures)
    cell = periodic_cell(structures[0])
    return {
        "n_structures": len(structures),
        "n_atoms_min": min(sizes),
        "n_atoms_max": max(sizes),
        "n_atoms_total": int(sum(sizes)),
        "formulas": dict(formulas),
        "elements": elements_of(structures),
        "cell_A": None if cell is None else cell.tolist(),
    }
