"""Periodic labelling cost: CPU seconds per Gamma-point energy + forces of water boxes at the pyscf-pbc presets.

    python benchmarks/periodic_label_bench.py                      # 1, 4 and 8 waters; pbe-gth-szv, pbe-gth-dzvp
    python benchmarks/periodic_label_bench.py --waters 4 16 --presets pbe-gth-szv
    python benchmarks/periodic_label_bench.py --structures benchmarks/data/reline_1fu_melt.extxyz --out /tmp/l.extxyz

Boxes are cubic at 1 g/cm^3 (29.9 A^3 per molecule), molecules on a simple cubic lattice of sites with random
orientations (``--seed``), as :func:`alloop.testing.cells.water_box` builds them. One label per combination, 1 thread.
Columns: CPU and wall seconds, SCF cycles, the largest force and the net force |sum F| (the multigrid integrator's
translational-invariance error; see ``alloop.labeling.sanity``). ``--structures`` labels the first frame of each
periodic structure file instead of water boxes, and ``--out`` writes every successful label as extxyz (energy,
forces, the preset, CPU seconds, SCF cycles). Writes a result file after each label (``--results``, default
benchmarks/results/periodic-label-cost/WHAT_PRESETS.json, WHAT ``water`` or the structure files' names, PRESETS the
presets joined by +; with the command, date, commit, load average and versions) and prints the table
docs/benchmarks.md generates from it (lib/periodic_label_table.py). Not run by the tests. Reline melts of
``build_reline.py`` (2026-11-27, load ~4): 1 f.u. (38 atoms, 7.11 A) 88 CPU s and 11 SCF cycles at pbe-gth-szv,
202 s and 12 at pbe-gth-dzvp; 2 f.u. (76 atoms, 8.96 A) 129 s / 13 and 195 s / 13, all converged
(``benchmarks/data/reline_*fu_melt_labels.extxyz``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from lib.common import ROOT
from lib.periodic_label_table import periodic_label_lines
from lib.run_record import finish_record, load_text, start_record

from alloop.fidelity import load_fidelity
from alloop.io import attach_label, read_structures, write_extxyz
from alloop.labeling.factory import labeler_for
from alloop.testing.cells import water_box

#: where the result files go
RESULTS = ROOT / "benchmarks" / "results" / "periodic-label-cost"
THREADS = 1


def label_row(name: str, box: Atoms, preset: str) -> tuple[dict[str, Any], Atoms | None]:
    """One label of ``box`` at ``preset``: its record (cost, SCF cycles, largest and net force) and the labelled
    structure (None when the label failed)."""
    fidelity = load_fidelity(preset)
    result = labeler_for(fidelity, threads=THREADS).label(box)
    forces = result.forces_eV_per_A
    row = {"structure": name, "atoms": len(box), "cell_A": [round(float(x), 4) for x in box.cell.lengths()],
           "preset": preset, "ke_cutoff_Eh": fidelity.ke_cutoff_Eh, "status": result.status.value,
           "cpu_s": result.cpu_seconds, "wall_s": result.wall_seconds, "scf_cycles": result.scf_cycles}
    if not result.ok:
        return {**row, "reason": result.reason}, None
    row |= {"max_force_eV_per_A": float(np.abs(forces).max()),
            "net_force_eV_per_A": float(np.linalg.norm(forces.sum(axis=0)))}
    return row, attach_label(box, result.energy_eV, forces, {"fidelity": preset, "cpu_seconds": result.cpu_seconds,
                                                               "scf_cycles": result.scf_cycles})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waters", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--presets", nargs="+", default=["pbe-gth-szv", "pbe-gth-dzvp"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--structures", type=Path, nargs="+", help="periodic structure files (first frame each)")
    parser.add_argument("--out", type=Path, help="write the labelled structures here (extxyz)")
    parser.add_argument("--results", type=Path, help=f"result file (default {RESULTS.relative_to(ROOT)}/"
                        "WHAT_PRESETS.json)")
    args = parser.parse_args(argv)
    record = start_record(__file__, argv, ("pyscf", "tblite"))
    if args.structures:
        boxes = [(path.stem, read_structures(path, "0")[0]) for path in args.structures]
    else:
        boxes = [(f"{n}", water_box(n, args.seed)) for n in args.waters]
    what = "+".join(p.stem for p in args.structures) if args.structures else "water"
    path = args.results or RESULTS / f"{what}_{'+'.join(args.presets)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    body: dict[str, Any] = {"structures": "files" if args.structures else "water boxes", "seed": args.seed,
                            "threads": THREADS, "rows": [], "finished": False}
    labelled = []
    for name, box in boxes:
        for preset in args.presets:
            row, atoms = label_row(name, box, preset)
            body["rows"].append(row)
            # after each label: a later one may be stopped
            path.write_text(json.dumps({**finish_record(record), **body}, indent=1) + "\n")
            if atoms is not None:
                labelled.append(atoms)
                if args.out:
                    write_extxyz(args.out, labelled)
            print(f"{name}{'' if args.structures else ' waters'}, {preset}: {row['status']}, {row['cpu_s']:.1f} CPU s, "
                  f"{row['scf_cycles']} SCF cycles {row.get('reason', '')}", flush=True)
    result = {**finish_record(record), **body, "finished": True}
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\n{load_text(result)}; {THREADS} thread per label\n")
    print("\n".join(periodic_label_lines([result])))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
