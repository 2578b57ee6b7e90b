"""An evaluation set of several small molecules: thermal frames of GFN2-xTB Langevin MD, labelled at GFN2-xTB.

For each molecule (``ase.build.molecule`` names; default the ten C/H/O molecules of
``campaigns/cho-molecules.yaml``), ``--runs`` independent Langevin runs (0.5 fs, friction 0.01/fs, alloop's
BAOAB integrator on the tblite surface, :func:`alloop.campaign.phases.surface_md.surface_md_samples`) start
from the molecule with Maxwell-Boltzmann velocities of their own seeds; after ``--equil-fs`` a frame is taken
every ``--spacing-fs`` until each run has ``--frames`` frames. Every frame is then labelled by alloop's
GFN2-xTB labeller (energy and forces as calculator results, the label's fidelity hash and cost in the info line)
and the set is written as lossless extxyz. Frames per molecule and the CPU seconds are printed as a table.

    python benchmarks/make_molecules_set.py       # benchmarks/data/cho10_500K_eqtest_gfn2-xtb.extxyz (~2 min)
    python benchmarks/make_molecules_set.py --molecules H2O CH4 --frames 2 --out /tmp/two.extxyz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ase.build import molecule
from lib.common import DATA, markdown_table

from alloop.campaign.phases.surface_md import SurfaceMD, surface_md_samples
from alloop.fidelity import load_fidelity
from alloop.io import attach_label, write_extxyz
from alloop.labeling.factory import labeler_for
from alloop.system.molecules import molecule_name

MOLECULES = ("CH4", "H2O", "CH3OH", "C2H6", "C2H4", "H2CO", "HCOOH", "CH3CHO", "CH3CH2OH", "CO2")
SEED = 8_100_000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--molecules", nargs="+", default=list(MOLECULES))
    p.add_argument("--temperature", type=float, default=500.0, help="K (default 500, the campaign's)")
    p.add_argument("--runs", type=int, default=2, help="independent runs per molecule")
    p.add_argument("--frames", type=int, default=5, help="frames per run")
    p.add_argument("--equil-fs", type=float, default=500.0)
    p.add_argument("--spacing-fs", type=float, default=250.0)
    p.add_argument("--out", type=Path, default=DATA / "cho10_500K_eqtest_gfn2-xtb.extxyz")
    args = p.parse_args()
    fidelity = load_fidelity("gfn2-xtb")
    labeler = labeler_for(fidelity)
    md = SurfaceMD(temperature_K=args.temperature, timestep_fs=0.5, friction_per_fs=0.01,
                   equilibration_fs=args.equil_fs, spacing_fs=args.spacing_fs)
    frames, rows = [], []
    for k, name in enumerate(args.molecules):
        t0, cpu = time.perf_counter(), 0.0
        for run in range(args.runs):
            samples, _, seconds = surface_md_samples(molecule(name), fidelity, args.frames, md, SEED + 100 * k + run)
            cpu += seconds
            for atoms in samples:
                result = labeler.label(atoms)
                assert result.ok, f"{name}: {result.status.value}: {result.reason}"
                cpu += result.cpu_seconds
                frames.append(attach_label(atoms, result.energy_eV, result.forces_eV_per_A,
                                           {"fidelity_hash": fidelity.hash(), "cpu_seconds": result.cpu_seconds}))
        rows.append([name, molecule_name(molecule(name).numbers), args.runs * args.frames, cpu,
                     time.perf_counter() - t0])
    write_extxyz(args.out, frames)
    print(markdown_table(["molecule", "formula", "frames", "CPU s (MD + labels)", "wall s"], rows))
    print(f"\nwrote {len(frames)} frames labelled at {fidelity.name} ({fidelity.hash()}) to {args.out}")


if __name__ == "__main__":
    main()
