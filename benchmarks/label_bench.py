"""Labelling cost: seconds per label (wall, CPU) per molecule x fidelity preset x threads, and
parallel throughput on 2 Dask workers vs serial (core utilisation = sum of task CPU / (wall x cores)).

    python benchmarks/label_bench.py --quick            # water, ethanol; hf-sto3g, b3lyp-svp
    python benchmarks/label_bench.py                    # all molecules and presets, 1 and 2 threads
    python benchmarks/label_bench.py --molecules water aspirin --presets ccsdt-dz --max-seconds 120

Molecules: water, ethanol (ase.build.molecule), malonaldehyde and aspirin
(benchmarks/data/*.xyz, HF/STO-3G minima). Combinations whose estimated time
exceeds --max-seconds are skipped and listed as such: the estimate scales the
largest molecule measured so far at the same preset and threads (water first)
by (basis functions ratio)^p, p = 3 (HF, DFT), 5 (MP2), 6 (CCSD), 7 (CCSD(T)),
a crude guard that errs on the expensive side. Molecular PySCF presets only (periodic
ones: benchmarks/periodic_label_bench.py; xTB: cheap_levels.py). Writes a result file (``--results``, default
benchmarks/results/label-cost/MODE.json: every time, the command, date, commit, load average and PySCF version) and
prints the tables docs/benchmarks.md generates from it (lib/label_cost_table.py); not run by the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import molecule as ase_molecule
from lib.common import DATA, ROOT
from lib.label_cost_table import label_bench_lines
from lib.run_record import finish_record, start_record

from alloop.fidelity import load_fidelity
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.presets import preset_names

MOLECULES = ("water", "ethanol", "malonaldehyde", "aspirin")
SCALING = {"hf": 3.0, "mp2": 5.0, "ccsd": 6.0, "ccsd(t)": 7.0}
DFT_SCALING = 3.0
#: where the result files go (``MODE.json``)
RESULTS = ROOT / "benchmarks" / "results" / "label-cost"


def load_molecule(name: str) -> Atoms:
    if name == "water":
        return ase_molecule("H2O")
    if name == "ethanol":
        return ase_molecule("CH3CH2OH")
    import ase.io

    return ase.io.read(DATA / f"{name}.xyz")


def basis_functions(atoms: Atoms, basis: str) -> int:
    from pyscf import gto

    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)],
                basis=basis)
    return int(mol.nao_nr())


def per_label(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One record per molecule, preset and thread count: atoms, basis functions, status and the fastest of
    ``args.repeats`` labels' wall and CPU seconds, or ``status: skipped`` with the estimate that skipped it."""
    rows: list[dict[str, Any]] = []
    water = load_molecule("water")
    for preset in args.presets:
        fid = load_fidelity(preset)
        p = DFT_SCALING if fid.is_dft else SCALING[fid.method]
        nbf_water = basis_functions(water, fid.basis)
        for threads in args.threads:
            labeler = PySCFLabeler(fid, threads=threads)
            # reference for the estimate: the largest molecule measured so far (water to start with)
            ref_nbf, ref_wall = nbf_water, labeler.label(water).wall_seconds  # also warms up PySCF
            for name in args.molecules:
                atoms = load_molecule(name)
                nbf = basis_functions(atoms, fid.basis)
                estimate = ref_wall * (nbf / ref_nbf) ** p
                row = {"molecule": name, "atoms": len(atoms), "basis_functions": nbf, "preset": preset,
                       "threads": threads}
                if estimate > args.max_seconds:
                    rows.append({**row, "status": "skipped", "estimate_s": estimate, "max_seconds": args.max_seconds})
                    print(rows[-1], file=sys.stderr, flush=True)
                    continue
                runs = [labeler.label(atoms) for _ in range(args.repeats)]
                wall = min(r.wall_seconds for r in runs)
                if nbf > ref_nbf:
                    ref_nbf, ref_wall = nbf, wall
                rows.append({**row, "status": ",".join(sorted({r.status.value for r in runs})), "wall_s": wall,
                             "cpu_s": min(r.cpu_seconds for r in runs), "repeats": args.repeats})
                print(rows[-1], file=sys.stderr, flush=True)
    return rows


def frames(name: str, n: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = load_molecule(name)
        atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
        out.append(atoms)
    return out


def _warm_up() -> None:
    import pyscf.dft  # noqa: F401
    import pyscf.grad  # noqa: F401

    import alloop.labeling.pyscf_labeler  # noqa: F401


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    """The same frames labelled serially in-process and on a 2-worker Dask cluster (1 thread per label): each run's
    wall seconds, summed task CPU seconds, labels and labels not ok."""
    from alloop.campaign.execution.cluster import open_client
    from alloop.campaign.execution.labeling_pool import label_all

    fid = load_fidelity(args.throughput_preset)
    structures = frames(args.throughput_molecule, args.throughput_frames)
    labeler = PySCFLabeler(fid, threads=1)
    start = time.perf_counter()
    serial = [labeler.label(a) for a in structures]
    serial_wall = time.perf_counter() - start
    workers = 2
    with open_client(n_workers=workers, threads_per_worker=1) as client:
        client.wait_for_workers(workers)
        client.run(_warm_up)
        start = time.perf_counter()
        done = label_all(client, [(str(k), a) for k, a in enumerate(structures)], fid)
        parallel_wall = time.perf_counter() - start
    runs = [{"mode": mode, "cores": cores, "wall_s": wall, "cpu_s": sum(r.cpu_seconds for r in results),
             "labels": len(results), "not_ok": sum(not r.ok for r in results)}
            for mode, cores, wall, results in (("serial (in-process)", 1, serial_wall, serial),
                                               (f"Dask, {workers} workers", workers, parallel_wall,
                                                list(done.values())))]
    return {"molecule": args.throughput_molecule, "preset": fid.name, "frames": len(structures),
            "threads_per_label": 1, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="water and ethanol at hf-sto3g and b3lyp-svp, 4 frames")
    parser.add_argument("--molecules", nargs="+", choices=MOLECULES, default=None)
    parser.add_argument("--presets", nargs="+", default=None, help=f"of {', '.join(preset_names('fidelities'))}")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1, help="labels per combination (the minimum is reported)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="skip combinations estimated to take longer")
    parser.add_argument("--throughput-molecule", choices=MOLECULES, default="ethanol")
    parser.add_argument("--throughput-preset", default="b3lyp-svp")
    parser.add_argument("--throughput-frames", type=int, default=None, help="default 8 (4 with --quick)")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"result file (default {RESULTS.relative_to(ROOT)}/MODE.json, MODE quick, full or selection)")
    args = parser.parse_args(argv)
    record = start_record(__file__, argv, ("pyscf",))
    quick = args.quick
    mode = "quick" if quick else ("selection" if args.molecules or args.presets else "full")
    args.molecules = args.molecules or (["water", "ethanol"] if quick else list(MOLECULES))
    molecular = [name for name in preset_names("fidelities") if load_fidelity(name).family == "pyscf"]
    args.presets = args.presets or (["hf-sto3g", "b3lyp-svp"] if quick else molecular)
    args.throughput_frames = args.throughput_frames or (4 if quick else 8)

    body: dict[str, Any] = {"mode": mode, "threads": args.threads, "per_label": per_label(args)}
    body["throughput"] = None if args.no_throughput else throughput(args)
    result = {**finish_record(record), **body}
    path = args.results or RESULTS / f"{mode}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(label_bench_lines(result)))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
