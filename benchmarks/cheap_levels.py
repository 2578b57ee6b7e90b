"""How far candidate cheap fidelities are from B3LYP/def2-SVP on 500 K ethanol, and what each costs (1 thread).

For ASTEROID a cheap level helps only if it is closer to the expensive one than the model already is
(SevenNet-0 zero-shot: 0.208 eV/A on these frames, README "Models on ethanol"). Each candidate labels the
first ``--frames`` frames of ``benchmarks/data/ethanol_500K_short_pool_b3lyp-svp.extxyz`` with
``alloop.labeling.pyscf_labeler.PySCFLabeler``; printed: the mean absolute force difference from the file's
B3LYP/def2-SVP forces and the measured CPU seconds per frame.

    python benchmarks/cheap_levels.py              # 8 frames, ~2 min
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "ethanol_500K_short_pool_b3lyp-svp.extxyz"
CANDIDATES = [
    {"name": "hf-sto3g", "method": "hf", "basis": "sto-3g"},
    {"name": "hf-321g", "method": "hf", "basis": "3-21g"},
    {"name": "pbe-sto3g", "method": "pbe", "basis": "sto-3g", "grid_level": 1},
    {"name": "b3lyp-sto3g", "method": "b3lyp", "basis": "sto-3g", "grid_level": 1},
    {"name": "pbe-321g-df", "method": "pbe", "basis": "3-21g", "density_fit": True, "grid_level": 1},
    {"name": "b3lyp-321g-df", "method": "b3lyp", "basis": "3-21g", "density_fit": True, "grid_level": 1},
    {"name": "pbe-svp-df", "method": "pbe", "basis": "def2-svp", "density_fit": True, "grid_level": 1},
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8, help="frames of the 500 K pool (default 8)")
    args = ap.parse_args(argv)
    from ase.io import read

    from alloop.fidelity import Fidelity
    from alloop.labeling.pyscf_labeler import PySCFLabeler
    from alloop.labeling.threads import set_compute_threads

    set_compute_threads(1)
    reference = read(DATA, f":{args.frames}")
    print("| cheap fidelity | force MAE vs B3LYP/def2-SVP (eV/A) | CPU s per frame |")
    print("|---|---:|---:|")
    for spec in CANDIDATES:
        labeler = PySCFLabeler(Fidelity(**spec), threads=1)
        errors, cpu = [], []
        for atoms in reference:
            result = labeler.label(atoms)
            errors.append(np.abs(result.forces_eV_per_A - atoms.get_forces()).mean())
            cpu.append(result.cpu_seconds)
        print(f"| {spec['name']} | {np.mean(errors):.3f} | {np.mean(cpu):.2f} |", flush=True)
    print(f"\n{len(reference)} frames of {DATA.name}; 1 compute thread")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
