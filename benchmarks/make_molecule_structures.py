"""The structures of the molecules benchmark (``lib/molecules.py``): built, relaxed with GFN2-xTB, checked, written.

Starting coordinates: ``ase.build.molecule`` where its G2 collection has the molecule (the ethoxy radical
``CH3CH2O``; acetate: acetic acid ``CH3COOH`` without its acidic H; 2-chloroethanol: ethanol ``CH3CH2OH`` with the
methyl H gauche to O replaced by Cl at 1.79 A and the hydroxyl H turned towards Cl), aspirin from
``benchmarks/data/aspirin.xyz`` (the Tinker example's positions), glycine by hand from standard bond lengths and
angles (conformer II: planar heavy atoms, the carboxylic O-H pointing at N, the amino H's away from it). Each is
relaxed by ASE's BFGS on tblite's GFN2-xTB at the molecule's charge and multiplicity (2S + 1) to a largest force of
``--fmax`` (0.01 eV/A) and checked: the bonds (pairs within 1.2 x the sum of covalent radii) are those of the start,
the molecule is one fragment, and its formula is the table's. Written as xyz to ``benchmarks/data/<file>`` with the
provenance, the GFN2-xTB energy and the largest force on the comment line. Malonaldehyde's file already exists and is
not rebuilt.

    python benchmarks/make_molecule_structures.py                      # every molecule but malonaldehyde
    python benchmarks/make_molecule_structures.py --molecules glycine --out /tmp/mol
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

if __name__ == "__main__":  # tblite's OpenMP threads, for the script only (a test imports its helpers)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.data import covalent_radii  # noqa: E402
from lib.common import DATA  # noqa: E402
from lib.molecules import MOLECULES, molecule_entry  # noqa: E402

BOND_FACTOR = 1.2


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _two_tetrahedral(centre: np.ndarray, a: np.ndarray, b: np.ndarray, length: float) -> list[np.ndarray]:
    """The two remaining tetrahedral positions at ``centre`` whose other two substituents lie along unit ``a``,
    ``b``, at ``length``."""
    bisector = -_unit(a + b)
    normal = _unit(np.cross(a, b))
    half = np.radians(109.47 / 2)
    return [centre + length * (np.cos(half) * bisector + s * np.sin(half) * normal) for s in (1.0, -1.0)]


def glycine() -> Atoms:
    """Glycine conformer II by hand: CA-C 1.52, CA-N 1.46, C-OH 1.35, C=O 1.21, O-H 0.98, C-H 1.09, N-H 1.01 A."""
    ang = np.radians
    ca, c = np.zeros(3), np.array([1.52, 0.0, 0.0])
    n = 1.46 * np.array([np.cos(ang(111.0)), np.sin(ang(111.0)), 0.0])
    o_h = c + 1.35 * np.array([np.cos(ang(68.0)), np.sin(ang(68.0)), 0.0])        # CA-C-O 112 deg, on N's side
    o_d = c + 1.21 * np.array([np.cos(ang(55.0)), -np.sin(ang(55.0)), 0.0])       # CA-C=O 125 deg
    to_c = _unit(c - o_h)
    turn = ang(-105.0)  # C-O-H 105 deg, turned towards N
    h_o = o_h + 0.98 * np.array([to_c[0] * np.cos(turn) - to_c[1] * np.sin(turn),
                                 to_c[0] * np.sin(turn) + to_c[1] * np.cos(turn), 0.0])
    if np.linalg.norm(h_o - n) > np.linalg.norm(o_h - n):
        raise SystemExit("glycine: the hydroxyl H points away from N; the construction is wrong")
    h_ca = _two_tetrahedral(ca, _unit(c - ca), _unit(n - ca), 1.09)
    h_n = _two_tetrahedral(n, _unit(ca - n), _unit(h_o - n), 1.01)  # the lone pair towards the hydroxyl H
    return Atoms("NCCOOH5", positions=[n, ca, c, o_d, o_h, h_o, *h_ca, *h_n])


def acetate() -> Atoms:
    from ase.build import molecule

    atoms = molecule("CH3COOH")
    del atoms[[a.index for a in atoms if a.symbol == "H" and a.position[0] < -1.5]]  # the carboxylic H
    return atoms


def chloroethanol() -> Atoms:
    """Ethanol with a methyl H gauche to O replaced by Cl, the hydroxyl H turned to the nearest of its staggered
    positions to Cl."""
    from ase.build import molecule

    atoms = molecule("CH3CH2OH")  # 0 C(methyl) 1 C 2 O 3 H(O) ... 7 H(methyl, O-C-C-H about 60 deg)
    atoms[7].symbol = "Cl"
    atoms.positions[7] = atoms.positions[0] + 1.79 * _unit(atoms.positions[7] - atoms.positions[0])
    best = min((60.0, 180.0, 300.0), key=lambda d: _hcl(atoms, d))
    atoms.set_dihedral(0, 1, 2, 3, best, indices=[3])
    return atoms


def _hcl(atoms: Atoms, dihedral: float) -> float:
    trial = atoms.copy()
    trial.set_dihedral(0, 1, 2, 3, dihedral, indices=[3])
    return float(trial.get_distance(3, 7))


def aspirin() -> Atoms:
    from ase.io import read

    return read(DATA / "aspirin.xyz")


def ethoxy() -> Atoms:
    from ase.build import molecule

    return molecule("CH3CH2O")


BUILDERS: dict[str, tuple[Callable[[], Atoms], str]] = {
    "aspirin": (aspirin, "positions of benchmarks/data/aspirin.xyz (the Tinker example)"),
    "glycine": (glycine, "conformer II built by hand from standard bond lengths and angles"),
    "acetate": (acetate, "ase.build.molecule('CH3COOH') without its carboxylic H"),
    "ethoxy": (ethoxy, "ase.build.molecule('CH3CH2O')"),
    "2-chloroethanol": (chloroethanol, "ase.build.molecule('CH3CH2OH'), the gauche methyl H -> Cl, O-H towards Cl"),
}


def bond_set(atoms: Atoms) -> set[tuple[int, int]]:
    """Pairs (i < j) closer than 1.2 x the sum of their covalent radii."""
    d = atoms.get_all_distances()
    r = covalent_radii[atoms.numbers]
    i, j = np.nonzero(np.triu(d < BOND_FACTOR * (r[:, None] + r[None, :]), k=1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


def fragments(n_atoms: int, bonds: set[tuple[int, int]]) -> int:
    """The number of connected pieces of a graph of ``n_atoms`` nodes and ``bonds``."""
    parent = list(range(n_atoms))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i, j in bonds:
        parent[root(i)] = root(j)
    return len({root(k) for k in range(n_atoms)})


def relax(name: str, fmax: float) -> tuple[Atoms, str]:
    """The molecule relaxed at its charge and spin, and its xyz comment line; SystemExit if a check fails."""
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    entry = molecule_entry(name)
    build, how = BUILDERS[name]
    atoms = build()
    start = bond_set(atoms)
    atoms.calc = TBLite(method="GFN2-xTB", charge=entry.charge, multiplicity=entry.spin + 1, verbosity=0)
    opt = BFGS(atoms, logfile=None)
    if not opt.run(fmax=fmax, steps=2000):
        raise SystemExit(f"{name}: BFGS did not reach fmax {fmax} eV/A in 2000 steps")
    energy, force = atoms.get_potential_energy(), float(np.linalg.norm(atoms.get_forces(), axis=1).max())
    end = bond_set(atoms)
    if end != start:
        raise SystemExit(f"{name}: the relaxation changed the bonds: lost {sorted(start - end)}, made {sorted(end - start)}")
    if fragments(len(atoms), end) != 1 or atoms.get_chemical_formula() != Atoms(entry.formula).get_chemical_formula():
        raise SystemExit(f"{name}: {fragments(len(atoms), end)} fragments, formula {atoms.get_chemical_formula()}")
    comment = (f"{name} ({entry.formula}, charge {entry.charge}, 2S {entry.spin}): {how}; relaxed with GFN2-xTB "
               f"(tblite) by ASE BFGS in {opt.nsteps} steps to max force {force:.4f} eV/A, energy {energy:.6f} eV")
    atoms.calc = None
    return atoms, comment


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--molecules", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    p.add_argument("--fmax", type=float, default=0.01, help="eV/A")
    p.add_argument("--out", type=Path, default=DATA)
    args = p.parse_args(argv)
    for name in args.molecules:
        atoms, comment = relax(name, args.fmax)
        path = args.out / MOLECULES[name].file
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [str(len(atoms)), comment] + [f"{s:<2} {x:20.12f} {y:20.12f} {z:20.12f}"
                                              for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions,
                                                                      strict=True)]
        path.write_text("\n".join(lines) + "\n")
        print(f"{path}: {comment}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
