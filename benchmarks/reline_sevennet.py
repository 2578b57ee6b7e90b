"""SevenNet-0 (no fine-tuning) and GFN1-xTB forces on labelled periodic frames: how far the starting model is.

For each frame of a labelled extxyz file (e.g. ``periodic_label_bench.py --structures ... --out FILE``), the force
MAE, RMSE and largest component error (eV/A) of SevenNet-0 (the ``sevennet-0`` model preset, periodic neighbour
lists) and of periodic GFN1-xTB (alloop's ``gfn1-xtb`` labeller), against the frame's label, overall and per
element; energies are left out (SevenNet-0's are VASP-referenced totals, an offset from PySCF's). One thread::

    python benchmarks/reline_sevennet.py benchmarks/data/reline_1fu_melt_labels.extxyz

On the 1 f.u. reline melt (2026-11-27), against PBE/GTH-DZVP (mean |F| 0.784 eV/A): SevenNet-0 force MAE 0.176
eV/A (RMSE 0.216, largest component error 0.52), GFN1-xTB 0.382; against PBE/GTH-SZV both are off by ~2 eV/A
(SZV's own error, as for water). On the 2 f.u. melt (0.2 ps, hot) against DZVP: SevenNet-0 0.180 (RMSE 0.221),
GFN1-xTB 0.351.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from lib.common import markdown_table

from alloop.io import read_labelled


def sevennet_forces(atoms: Atoms) -> np.ndarray:
    """SevenNet-0's forces (eV/A) on ``atoms`` (its cell and pbc)."""
    import torch

    from alloop.potentials.calculator import PotentialCalculator
    from alloop.potentials.registry import build_model, model_preset

    torch.set_num_threads(1)
    preset = dict(model_preset("sevennet-0"))
    model = build_model(preset.pop("architecture"), sorted(set(atoms.numbers.tolist())), **preset).eval()
    frame = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    frame.calc = PotentialCalculator(model)
    return frame.get_forces()


def xtb_forces(atoms: Atoms) -> np.ndarray:
    """Periodic GFN1-xTB forces (eV/A) through alloop's labeller."""
    from alloop.fidelity import load_fidelity
    from alloop.labeling.factory import labeler_for

    return labeler_for(load_fidelity("gfn1-xtb")).label(atoms).forces_eV_per_A


def errors(pred: np.ndarray, ref: np.ndarray, numbers: np.ndarray) -> list[str]:
    """MAE, RMSE, largest |error| and the MAE per element (eV/A), formatted."""
    diff = pred - ref
    per = ", ".join(f"{sym} {np.abs(diff[numbers == z]).mean():.3f}" for z, sym in
                    sorted({(int(z), Atoms([int(z)]).get_chemical_symbols()[0]) for z in numbers}))
    return [f"{np.abs(diff).mean():.3f}", f"{np.sqrt((diff ** 2).mean()):.3f}", f"{np.abs(diff).max():.2f}", per]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labelled", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for k, frame in enumerate(read_labelled(args.labelled)):
        ref = frame.get_forces()
        name = f"{k}: {frame.info.get('name', '')} ({frame.info.get('fidelity', '?')})"
        for model, compute in (("SevenNet-0", sevennet_forces), ("GFN1-xTB", xtb_forces)):
            t0 = time.process_time()
            forces = compute(frame)
            cpu = time.process_time() - t0
            rows.append([name, model, f"{np.abs(ref).mean():.3f}", *errors(forces, ref, frame.numbers), f"{cpu:.1f}"])
            print(markdown_table(["frame (label)", "model", "mean abs F_ref", "force MAE", "RMSE", "max abs dF",
                                  "MAE per element", "CPU s"], rows[-1:]), flush=True)
    print()
    print(markdown_table(["frame (label)", "model", "mean abs F_ref eV/A", "force MAE eV/A", "RMSE", "max abs dF",
                          "MAE per element", "CPU s (incl. load)"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
