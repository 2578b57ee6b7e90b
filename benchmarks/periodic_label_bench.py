"""Periodic labelling cost: CPU seconds per Gamma-point energy + forces of water boxes at the pyscf-pbc presets.

    python benchmarks/periodic_label_bench.py                      # 1, 4 and 8 waters; pbe-gth-szv, pbe-gth-dzvp
    python benchmarks/periodic_label_bench.py --waters 4 16 --presets pbe-gth-szv
    python benchmarks/periodic_label_bench.py --structures benchmarks/data/reline_1fu_melt.extxyz --out /tmp/l.extxyz

Boxes are cubic at 1 g/cm^3 (29.9 A^3 per molecule), molecules on a simple cubic lattice of sites with random
orientations (``--seed``), as :func:`alloop.testing.cells.water_box` builds them. One label per combination, 1 thread.
Columns: CPU and wall seconds, SCF cycles, the largest force and the net force |sum F| (the multigrid integrator's
translational-invariance error; see ``alloop.labeling.sanity``). ``--structures`` labels the first frame of each
periodic structure file instead of water boxes, and ``--out`` writes every successful label as extxyz (energy,
forces, the preset, CPU seconds, SCF cycles). Not run by the tests. Reline melts of ``build_reline.py`` (2026-11-27,
load ~4): 1 f.u. (38 atoms, 7.11 A) 88 CPU s and 11 SCF cycles at pbe-gth-szv, 202 s and 12 at pbe-gth-dzvp;
2 f.u. (76 atoms, 8.96 A) 129 s / 13 and 195 s / 13, all converged (``benchmarks/data/reline_*fu_melt_labels.extxyz``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from lib.common import markdown_table

from alloop.fidelity import load_fidelity
from alloop.io import attach_label, read_structures, write_extxyz
from alloop.labeling.factory import labeler_for
from alloop.testing.cells import water_box


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waters", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--presets", nargs="+", default=["pbe-gth-szv", "pbe-gth-dzvp"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--structures", type=Path, nargs="+", help="periodic structure files (first frame each)")
    parser.add_argument("--out", type=Path, help="write the labelled structures here (extxyz)")
    args = parser.parse_args(argv)
    if args.structures:
        boxes = [(path.stem, read_structures(path, "0")[0]) for path in args.structures]
    else:
        boxes = [(f"{n}", water_box(n, args.seed)) for n in args.waters]
    rows, labelled = [], []
    for n, box in boxes:
        for preset in args.presets:
            fidelity = load_fidelity(preset)
            result = labeler_for(fidelity).label(box)
            forces = result.forces_eV_per_A
            if result.ok:
                labelled.append(attach_label(box, result.energy_eV, forces, {
                    "fidelity": preset, "cpu_seconds": result.cpu_seconds, "scf_cycles": result.scf_cycles}))
                if args.out:  # after each label: a later one may be stopped
                    write_extxyz(args.out, labelled)
            rows.append([n, len(box), f"{box.cell[0, 0]:.2f}", preset, result.status.value,
                         f"{result.cpu_seconds:.1f}", f"{result.wall_seconds:.1f}", result.scf_cycles,
                         f"{np.abs(forces).max():.2f}" if result.ok else "-",
                         f"{np.linalg.norm(forces.sum(axis=0)):.3f}" if result.ok else "-"])
            print(f"{n}{'' if args.structures else ' waters'}, {preset}: {result.status.value}, "
                  f"{result.cpu_seconds:.1f} CPU s, {result.scf_cycles} SCF cycles {result.reason}", flush=True)
    print(f"\n1-min load average {os.getloadavg()[0]:.1f}; 1 thread per label\n")
    print(markdown_table(["structure" if args.structures else "waters", "atoms", "box A", "preset", "status", "CPU s",
                          "wall s", "SCF cycles",
                          "max |F| eV/A", "net |sum F| eV/A"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
