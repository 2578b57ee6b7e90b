"""Periodic labelling cost: CPU seconds per Gamma-point energy + forces of water boxes at the pyscf-pbc presets.

    python benchmarks/periodic_label_bench.py                      # 1, 4 and 8 waters; pbe-gth-szv, pbe-gth-dzvp
    python benchmarks/periodic_label_bench.py --waters 4 16 --presets pbe-gth-szv

Boxes are cubic at 1 g/cm^3 (29.9 A^3 per molecule), molecules on a simple cubic lattice of sites with random
orientations (``--seed``), as :func:`alloop.testing.cells.water_box` builds them. One label per combination, 1 thread.
Columns: CPU and wall seconds, SCF cycles, the largest force and the net force |sum F| (the multigrid integrator's
translational-invariance error; see ``alloop.labeling.sanity``). Not run by the tests.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from _common import markdown_table

from alloop.fidelity import load_fidelity
from alloop.labeling.factory import labeler_for
from alloop.testing.cells import water_box


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waters", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--presets", nargs="+", default=["pbe-gth-szv", "pbe-gth-dzvp"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = []
    for n in args.waters:
        box = water_box(n, args.seed)
        for preset in args.presets:
            fidelity = load_fidelity(preset)
            result = labeler_for(fidelity).label(box)
            forces = result.forces_eV_per_A
            rows.append([n, len(box), f"{box.cell[0, 0]:.2f}", preset, result.status.value,
                         f"{result.cpu_seconds:.1f}", f"{result.wall_seconds:.1f}", result.scf_cycles,
                         f"{np.abs(forces).max():.2f}" if result.ok else "-",
                         f"{np.linalg.norm(forces.sum(axis=0)):.3f}" if result.ok else "-"])
            print(f"{n} waters, {preset}: {result.status.value}, {result.cpu_seconds:.1f} CPU s", flush=True)
    print(f"\n1-min load average {os.getloadavg()[0]:.1f}; 1 thread per label\n")
    print(markdown_table(["waters", "atoms", "box A", "preset", "status", "CPU s", "wall s", "SCF cycles",
                          "max |F| eV/A", "net |sum F| eV/A"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
