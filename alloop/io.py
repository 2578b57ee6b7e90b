"""Files: read any ASE-readable file or an ``ase.build.molecule`` name; labelled extxyz; atomic writes.

Labelled structures carry energy (eV) and forces (eV/Angstrom) as ASE
calculator results (a SinglePointCalculator), which extxyz writes as the
standard ``energy`` and ``forces`` fields; metadata goes in ``atoms.info``.

:func:`write_atomic` is the one way alloop replaces a file (the store's blobs
and JSON, model checkpoints, exports): a temporary file beside it, fsync,
rename, fsync of the folder; a kill or a full disk leaves the old file. New
files get the mode ``open`` gives (0666 less the umask), so the group reads a
saved model like every other file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols

from alloop.errors import AlloopError


def read_structures(source: str | Path, index: str = ":") -> list[Atoms]:
    """All structures of an ASE-readable file, or the molecule ``ase.build.molecule`` knows by that name."""
    path = Path(source)
    if path.exists():
        try:
            import ase.io  # lazily: ase.io costs about a second to import, and the store needs none of it

            structures = ase.io.read(path, index=index)
        except Exception as exc:  # ASE raises many types for unreadable files
            raise AlloopError(f"cannot read structures from {path}: {exc}") from exc
        structures = structures if isinstance(structures, list) else [structures]
        if not structures:
            raise AlloopError(f"{path} holds no structures")
        return structures
    from ase.build import molecule

    if str(source) in molecule_names():
        return [molecule(str(source))]
    raise AlloopError(f"'{source}' is neither a file nor a molecule name that ase.build.molecule knows")


def molecule_names() -> frozenset[str]:
    """The names ``ase.build.molecule`` knows (ASE's G2 set and its extras), read from ``ase.data`` without
    importing ``ase.collections``, which opens a database (about a second of every command that resolves a name)."""
    from ase.data import extra_molecules, g2_1, g2_2

    return frozenset(g2_1.data) | frozenset(g2_2.data) | frozenset(extra_molecules.data)


def attach_label(
    atoms: Atoms,
    energy_eV: float,
    forces_eV_per_A: np.ndarray,
    info: Mapping[str, Any] | None = None,
) -> Atoms:
    """A copy of ``atoms`` (its cell, pbc and tags) carrying energy and forces as calculator results, plus ``info``."""
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc, tags=atoms.get_tags())
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


def labels_under(
    structures: list[Atoms], energy_key: str, forces_key: str, source: str | Path = ""
) -> tuple[list[float], list[np.ndarray]] | None:
    """Energies (eV) and forces (eV/A) stored under the given keys: calculator results (extxyz ``energy`` and
    ``forces``), else ``info`` / ``arrays`` (any other extxyz key). None when no frame has either; AlloopError
    when some frame lacks one of them."""
    found = []
    for atoms in structures:
        results = atoms.calc.results if atoms.calc is not None else {}
        found.append((results.get(energy_key, atoms.info.get(energy_key)),
                      results.get(forces_key, atoms.arrays.get(forces_key))))
    if all(e is None and f is None for e, f in found):
        return None
    for k, (energy, force) in enumerate(found):
        if energy is None or force is None:
            where = f"{source}: " if source else ""
            raise AlloopError(f"{where}frame {k} has no '{energy_key if energy is None else forces_key}' label")
    return ([float(e) for e, _ in found],
            [np.asarray(f, dtype=np.float64).reshape(len(a), 3) for a, (_, f) in zip(structures, found, strict=True)])


def format_extxyz(atoms: Atoms) -> str:
    """One frame as extxyz text; energy and forces from ``atoms.calc.results`` if present; per-atom tags (e.g.
    molecule numbers) when any is non-zero; floats exact."""
    results = atoms.calc.results if atoms.calc is not None else {}
    energy, forces = results.get("energy"), results.get("forces")
    tags = atoms.get_tags()
    tags = tags if tags.any() else None
    header = []
    if atoms.cell.any():
        header.append('Lattice="' + " ".join(repr(float(x)) for x in atoms.cell.array.ravel()) + '"')
    header.append("Properties=species:S:1:pos:R:3" + (":forces:R:3" if forces is not None else "")
                  + (":tags:I:1" if tags is not None else ""))
    info: dict[str, Any] = {} if energy is None else {"energy": float(energy)}
    for key, value in atoms.info.items():
        info[key] = value.replace("\n", " ") if isinstance(value, str) else value
    info["pbc"] = np.asarray(atoms.pbc)
    from ase.io.extxyz import key_val_dict_to_str

    header.append(key_val_dict_to_str(info))
    table = atoms.positions if forces is None else np.hstack([atoms.positions, np.asarray(forces)])
    symbols = [chemical_symbols[z] for z in atoms.numbers]
    lines = [str(len(atoms)), " ".join(header)]
    rows = [f"{s} " + " ".join(map(repr, row)) for s, row in zip(symbols, table.astype(float).tolist(), strict=True)]
    if tags is not None:
        rows = [f"{row} {int(tag)}" for row, tag in zip(rows, tags, strict=True)]
    return "\n".join(lines + rows) + "\n"


def write_extxyz(path: str | Path, structures: Iterable[Atoms]) -> int:
    """Write structures as standard, lossless extxyz (floats with repr precision; via a temporary file renamed at the end).

    ASE's own writer prints 8 decimals; this one round-trips every float exactly. Returns the count.
    """
    count = 0

    def write(fh: BinaryIO) -> None:
        nonlocal count
        for atoms in structures:
            fh.write(format_extxyz(atoms).encode("utf-8"))
            count += 1

    write_atomic(path, write)
    return count


def write_atomic(path: str | os.PathLike[str], content: bytes | Callable[[BinaryIO], None], *, fsync_file: bool = True,
                 fsync_dir: bool = True, exclusive: bool = False, suffix: str = ".tmp", hidden: bool = True) -> Path:
    """Replace ``path`` by ``content`` (bytes, or a function writing to the open binary file) atomically.

    The temporary file ``.<name>.<random><suffix>`` beside ``path`` (no leading dot unless ``hidden``) is written,
    fsync'd (``fsync_file``), moved into place and the folder fsync'd (``fsync_dir``); ``exclusive``: FileExistsError
    if ``path`` exists. Whatever fails (a full disk, a kill), ``path`` keeps its previous content. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{'.' if hidden else ''}{path.name}.{uuid.uuid4().hex}{suffix}")
    try:
        with tmp.open("xb") as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content)
            if fsync_file:
                fh.flush()
                os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync_dir:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path
