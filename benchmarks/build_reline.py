"""Periodic boxes of reline (choline chloride : urea 1:2, a deep eutectic solvent) for issue 46, and their GFN1-xTB melt.

One formula unit (f.u.) is one choline cation C5H14NO+, one Cl- and two ureas CO(NH2)2: 38 atoms, 259.73 g/mol,
neutral. The boxes are cubic at 1.20 g/cm^3, the experimental density of reline at 298 K (measured from 293 to
363 K by Yadav and Pandey, J. Chem. Eng. Data 59 (2014) 2221, and from 298 K by Xie et al., J. Chem. Eng. Data 59
(2014) 3344; both about 1.20 g/cm^3 at 298 K): 359.4 A^3 per f.u., a 7.11 A cube for 1 f.u. and 8.96 A for 2.
The molecules are embedded by RDKit (ETKDG, MMFF94 relaxed), then placed one by one at random positions and
orientations (``--seed``), a placement rejected while any atom lies closer than ``--min-distance`` (1.7 A) to an
atom of another molecule or to a periodic image of its own molecule. Seed 0: closest atoms of different molecules
1.76 A (1 f.u.) and 1.71 A (2 f.u.).

Building needs RDKit, which is no dependency of alloop: it ran in a separate venv, and the committed extxyz files
(``benchmarks/data/reline_{1,2}fu.extxyz``) are what the project uses::

    python3 -m venv /tmp/rdkit-venv && /tmp/rdkit-venv/bin/pip install -q rdkit ase numpy
    /tmp/rdkit-venv/bin/python benchmarks/build_reline.py                  # reline_1fu.extxyz, reline_2fu.extxyz
    /tmp/rdkit-venv/bin/python benchmarks/build_reline.py --fu 1 --starts 3  # reline_1fu_starts.extxyz, seeds 1-3

``--starts K`` builds K further boxes (seeds ``--seed`` + 1 ... + K, the campaign's box excluded) into one file: the
independent starts of the reference MD (``make_water_box_sets.py --starts``).

``--melt`` (in alloop's environment, no RDKit) runs periodic Langevin MD on the GFN1-xTB surface (alloop's
``gfn1-xtb`` labeller through tblite, :func:`lib.box_md.cheap_langevin`: 0.5 fs, friction 0.01/fs) from
each built box, checks every ``--check-every`` steps that no covalent bond of the start broke (a bond longer than
``--max-stretch`` x its start length) and that no new one formed between molecules (two atoms of different
molecules within 1.15 x the sum of their covalent radii, e.g. a proton transferred), and writes the last frame
to ``reline_{n}fu_melt.extxyz``. Prints the cost per step and per ps (1 thread, 2 cores shared with other jobs:
0.26 CPU s per step for 1 f.u., 520 CPU s per ps; 0.89 CPU s per step for 2 f.u., 1789 CPU s per ps). The committed
melts ran 1 ps (1 f.u.) and 0.2 ps (2 f.u., still hot: 509 K over its second 0.1 ps) at 350 K, seed 0::

    python benchmarks/build_reline.py --melt --fu 1 --ps 1
    python benchmarks/build_reline.py --melt --fu 2 --ps 0.2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses
from ase.io import read, write
from lib.bonds import bond_check, bonds

DATA = Path(__file__).resolve().parent / "data"
#: experimental density of reline at 298 K (g/cm^3)
DENSITY = 1.20
#: SMILES of one formula unit
FORMULA_UNIT = ("C[N+](C)(C)CCO", "[Cl-]", "NC(N)=O", "NC(N)=O")
AVOGADRO = 0.602214076  # 1e24 / mol: g/mol / (g/cm^3) -> A^3


def embed(smiles: str, seed: int) -> Atoms:
    """One conformer of ``smiles`` with hydrogens (RDKit ETKDG, MMFF94-relaxed), centred at the origin."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    if mol.GetNumAtoms() > 1:
        AllChem.EmbedMolecule(mol, randomSeed=seed)
        AllChem.MMFFOptimizeMolecule(mol)
        positions = mol.GetConformer().GetPositions()
    else:
        positions = np.zeros((1, 3))
    atoms = Atoms([a.GetAtomicNum() for a in mol.GetAtoms()], positions=positions)
    atoms.positions -= atoms.positions.mean(axis=0)
    return atoms


def _images(delta: np.ndarray, length: float) -> np.ndarray:
    """Distances of displacement vectors ``delta`` (..., 3) over the 27 nearest periodic images (..., 27)."""
    shifts = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]) * length
    return np.linalg.norm(delta[..., None, :] + shifts, axis=-1)


def pack(molecules: list[Atoms], length: float, min_distance: float, seed: int, tries: int = 20000) -> Atoms:
    """``molecules`` placed at random positions and orientations in a periodic cube of edge ``length`` (A)."""
    rng = np.random.default_rng(seed)
    box = Atoms(cell=[length] * 3, pbc=True)
    tags: list[int] = []
    for index, molecule in enumerate(molecules):
        for _ in range(tries):
            trial = molecule.copy()
            trial.rotate(rng.uniform(0, 360), "z")
            trial.rotate(rng.uniform(0, 180), "x")
            trial.rotate(rng.uniform(0, 360), "z")
            trial.positions += rng.uniform(0, length, 3)
            own = _images(trial.positions[:, None] - trial.positions[None], length)
            own[..., 13] = np.inf  # the zero shift: the molecule itself
            if own.min() < min_distance:
                continue
            if len(box) and _images(trial.positions[:, None] - box.positions[None], length).min() < min_distance:
                continue
            box += trial
            tags += [index] * len(trial)
            break
        else:
            raise RuntimeError(f"molecule {index} found no place in {tries} tries")
    box.set_tags(tags)
    box.wrap()
    return box


def reline_box(n_fu: int, seed: int, min_distance: float) -> Atoms:
    """``n_fu`` formula units of reline in a cube at :data:`DENSITY`; tags number the molecules."""
    molecules = [embed(smiles, seed) for _ in range(n_fu) for smiles in FORMULA_UNIT]
    mass = sum(float(atomic_masses[m.numbers].sum()) for m in molecules)
    length = (mass / (DENSITY * AVOGADRO)) ** (1 / 3)
    box = pack(molecules, length, min_distance, seed)
    box.info["name"] = f"reline-{n_fu}fu-seed{seed}"
    box.info["density_g_cm3"] = mass / (AVOGADRO * box.get_volume())
    return box


def melt(n_fu: int, ps: float, temperature: float, seed: int, check_every: int, max_stretch: float) -> None:
    """GFN1-xTB Langevin MD of ``reline_{n_fu}fu.extxyz``; writes the last frame to ``reline_{n_fu}fu_melt.extxyz``."""
    from lib.box_md import cheap_langevin

    start = read(DATA / f"reline_{n_fu}fu.extxyz")
    start_bonds = bonds(start)
    tags = start.get_tags()
    if np.any(tags[start_bonds[:, 0]] != tags[start_bonds[:, 1]]):
        raise RuntimeError("the start has a bond between molecules")
    start_lengths = np.array([start.get_distance(i, j, mic=True) for i, j in start_bonds])
    atoms = start.copy()
    dyn = cheap_langevin(atoms, "gfn1-xtb", temperature, 0.5, seed)
    n_steps = int(round(ps * 2000))
    worst, temperatures = 1.0, []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for step in range(0, n_steps, check_every):
        dyn.run(min(check_every, n_steps - step))
        stretch, new = bond_check(atoms, start_bonds, start_lengths)
        worst = max(worst, stretch)
        temperatures.append(atoms.get_temperature())
        done = min(step + check_every, n_steps)
        if done % 200 == 0 or done == n_steps:
            print(f"  {done * 0.5 / 1000:.2f} ps: T {temperatures[-1]:.0f} K, largest bond stretch {stretch:.2f}, "
                  f"new intermolecular bonds {new}, {time.process_time() - cpu0:.0f} CPU s", flush=True)
        if stretch > max_stretch or new:
            raise RuntimeError(f"structure broke at step {done}: stretch {stretch:.2f}, {new} new bonds")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"{n_fu} f.u. ({len(atoms)} atoms), {n_steps} steps at {temperature:g} K: {cpu / n_steps:.3f} CPU s "
          f"({wall / n_steps:.3f} wall s) per step, {cpu / (n_steps / 2000):.0f} CPU s per ps; mean T after the "
          f"first half {np.mean(temperatures[len(temperatures) // 2:]):.0f} K; largest bond stretch {worst:.3f} "
          f"(limit {max_stretch}); {atoms.calc.n_calls} GFN1-xTB labels")
    out = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True, tags=tags)
    out.wrap()
    out.info["name"] = f"reline-{n_fu}fu-gfn1-{temperature:g}K-{ps:g}ps-seed{seed}"
    path = DATA / f"reline_{n_fu}fu_melt.extxyz"
    write(path, out, format="extxyz")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fu", type=int, nargs="+", default=[1, 2], help="formula units per box")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-distance", type=float, default=1.7, help="A, between molecules")
    parser.add_argument("--starts", type=int, default=0,
                        help="build this many further boxes (seeds + 1, ...) into reline_{n}fu_starts.extxyz")
    parser.add_argument("--melt", action="store_true", help="GFN1-xTB MD from the built boxes (alloop's env)")
    parser.add_argument("--ps", type=float, default=2.0, help="melt length")
    parser.add_argument("--temperature", type=float, default=350.0, help="K")
    parser.add_argument("--check-every", type=int, default=20, help="steps between bond checks")
    parser.add_argument("--max-stretch", type=float, default=1.4, help="largest bond length / start length")
    args = parser.parse_args(argv)
    for n_fu in args.fu:
        if args.melt:
            melt(n_fu, args.ps, args.temperature, args.seed, args.check_every, args.max_stretch)
            continue
        seeds = range(args.seed + 1, args.seed + 1 + args.starts) if args.starts else [args.seed]
        boxes = [reline_box(n_fu, seed, args.min_distance) for seed in seeds]
        path = DATA / (f"reline_{n_fu}fu_starts.extxyz" if args.starts else f"reline_{n_fu}fu.extxyz")
        write(path, boxes, format="extxyz")
        for box in boxes:
            between = _images(box.positions[:, None] - box.positions[None], box.cell[0, 0])
            tags = box.get_tags()
            between[tags[:, None] == tags[None]] = np.inf
            print(f"{box.info['name']}: {len(box)} atoms, {box.get_chemical_formula()}, cube {box.cell[0, 0]:.3f} A, "
                  f"{box.info['density_g_cm3']:.3f} g/cm^3, closest atoms of different molecules "
                  f"{between.min():.2f} A -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
