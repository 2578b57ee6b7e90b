"""How far candidate cheap fidelities are from B3LYP/def2-SVP on 500 K ethanol, and what each costs (1 thread).

For ASTEROID a cheap level helps only if it is closer to the expensive one than the model already is
(SevenNet-0 zero-shot: 0.208 eV/A on these frames, README "Models on ethanol"). Each candidate labels the
first ``--frames`` frames of ``benchmarks/data/ethanol_500K_short_pool_b3lyp-svp.extxyz`` with
``alloop.labeling.pyscf_labeler.PySCFLabeler``; printed: the mean absolute force difference from the file's
B3LYP/def2-SVP forces and the measured CPU seconds per frame.

GFN1- and GFN2-xTB (tblite) are candidates too (``--xtb``), labelled the same way through
:func:`alloop.labeling.factory.labeler_for`.

``--asteroid`` adds what each cheap level buys (issue 27): per seed, ``--expensive`` frames drawn at random from
the 500 K equilibrium pool (B3LYP labels; the draw of ``al_vs_random.py``) and the pool's 150 frames labelled
at each ``--levels`` cheap level (the committed ``ethanol_500K_eqpool_<level>.extxyz`` when there is one, else
``alloop label`` into ``--runs``); ``alloop train --method asteroid`` with each, and ``--method standard``
without cheap labels, all scored on the 500 K equilibrium test set. Cost: the B3LYP labels' CPU plus the
cheap labels' (the pool's MD is the same for every row and not counted). Each level's row also gives its force
distance from B3LYP over the pool's 150 frames and its CPU per label (both from the labelled pool files).

    python benchmarks/cheap_levels.py              # 8 frames, ~2 min
    python benchmarks/cheap_levels.py --xtb --frames 150 --data benchmarks/data/ethanol_500K_eqpool_b3lyp-svp.extxyz
    python benchmarks/cheap_levels.py --asteroid --levels hf-sto3g gfn1-xtb gfn2-xtb --seeds 0 1 2
    python benchmarks/cheap_levels.py --asteroid --model sevennet-0 --levels gfn1-xtb   # ~1 CPU h per seed
    python benchmarks/cheap_levels.py --asteroid --model sevennet-0+gfn2-xtb --levels gfn1-xtb   # on the Delta baseline
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from lib.common import DATA as DATA_DIR
from lib.common import ROOT, alloop, data_file, label_cpu, mean_std, model_args

DATA = DATA_DIR / "ethanol_500K_short_pool_b3lyp-svp.extxyz"
POOL = DATA_DIR / "ethanol_500K_eqpool_b3lyp-svp.extxyz"
TEST = data_file("ethanol_500K_eqtest_b3lyp-svp.extxyz")
XTB = [{"name": "gfn1-xtb", "preset": "gfn1-xtb"}, {"name": "gfn2-xtb", "preset": "gfn2-xtb"}]
CANDIDATES = [
    {"name": "hf-sto3g", "method": "hf", "basis": "sto-3g"},
    {"name": "hf-321g", "method": "hf", "basis": "3-21g"},
    {"name": "pbe-sto3g", "method": "pbe", "basis": "sto-3g", "grid_level": 1},
    {"name": "b3lyp-sto3g", "method": "b3lyp", "basis": "sto-3g", "grid_level": 1},
    {"name": "pbe-321g-df", "method": "pbe", "basis": "3-21g", "density_fit": True, "grid_level": 1},
    {"name": "b3lyp-321g-df", "method": "b3lyp", "basis": "3-21g", "density_fit": True, "grid_level": 1},
    {"name": "pbe-svp-df", "method": "pbe", "basis": "def2-svp", "density_fit": True, "grid_level": 1},
]


def distances(data: Path, n_frames: int, xtb: bool) -> None:
    """The table of force MAE against the file's B3LYP forces and CPU per frame, per candidate."""
    from ase.io import read

    from alloop.fidelity import Fidelity, load_fidelity
    from alloop.labeling.factory import labeler_for
    from alloop.labeling.threads import set_compute_threads

    set_compute_threads(1)
    reference = read(data, f":{n_frames}")
    print("| cheap fidelity | force MAE vs B3LYP/def2-SVP (eV/A) | CPU s per frame |")
    print("|---|---:|---:|")
    for spec in CANDIDATES + (XTB if xtb else []):
        fidelity = load_fidelity(spec["preset"]) if "preset" in spec else Fidelity(**spec)
        labeler = labeler_for(fidelity, threads=1)
        errors, cpu = [], []
        for atoms in reference:
            result = labeler.label(atoms)
            errors.append(np.abs(result.forces_eV_per_A - atoms.get_forces()).mean())
            cpu.append(result.cpu_seconds)
        print(f"| {spec['name']} | {np.mean(errors):.3f} | {np.mean(cpu):.3f} |", flush=True)
    print(f"\n{len(reference)} frames of {data.name}; 1 compute thread")


def pool_at(level: str, runs: Path) -> Path:
    """The equilibrium pool labelled at ``level``: the committed file, else labelled once into ``runs``."""
    committed = DATA_DIR / f"ethanol_500K_eqpool_{level}.extxyz"
    if committed.is_file():
        return committed
    path = runs / f"ethanol_500K_eqpool_{level}.extxyz"
    if not path.is_file():
        print(f"  labelling the pool at {level} -> {path}", file=sys.stderr, flush=True)
        alloop("label", str(POOL), "--fidelity", level, "-o", str(path), "--workers", "1")
    return path


def distance_on_pool(pool: list, path: Path) -> tuple[float, float]:
    """(mean |F_cheap - F_B3LYP| in eV/A, mean CPU s per cheap label) of the pool labelled at a cheap level."""
    from ase.io import read

    cheap = read(path, ":")
    if len(cheap) != len(pool) or any(np.abs(a.positions - b.positions).max() > 1e-6
                                      for a, b in zip(cheap, pool, strict=True)):
        raise SystemExit(f"{path} does not hold the pool's frames in the pool's order")
    mae = float(np.mean([np.abs(a.get_forces() - b.get_forces()).mean() for a, b in zip(cheap, pool, strict=True)]))
    return mae, float(np.mean([float(a.info.get("cpu_seconds", np.nan)) for a in cheap]))


def asteroid_table(levels: list[str], seeds: list[int], n_expensive: int, model: str, runs: Path,
                   steps: int | None) -> None:
    """Standard training on N random pool frames vs ASTEROID with the whole pool at each cheap level."""
    from ase.io import read

    from alloop.io import write_extxyz

    runs.mkdir(parents=True, exist_ok=True)
    pool = read(POOL, ":")
    cheap = {level: pool_at(level, runs) for level in levels}
    rows: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        picked = np.sort(np.random.default_rng(10_000 + seed).choice(len(pool), size=n_expensive, replace=False))
        frames = runs / f"expensive-{n_expensive}-s{seed}.extxyz"
        if not frames.is_file():
            write_extxyz(frames, [pool[i] for i in picked])
        expensive_cpu = label_cpu(POOL, picked)
        for name, extra, cost in [("standard", [], 0.0)] + [
                (f"asteroid, {level}", ["--cheap", str(path)], label_cpu(path)) for level, path in cheap.items()]:
            method = "standard" if name == "standard" else "asteroid"
            out = runs / f"{name.replace(', ', '-')}-{model}-n{n_expensive}-s{seed}.safetensors"
            if not out.is_file():
                budget = ["--steps", str(steps)] if steps else []
                alloop("train", "--expensive", str(frames), *extra, "--method", method, *model_args(model),
                       "--seed", str(seed), "--quiet", *budget, "-o", str(out))
            score = json.loads(alloop("evaluate", str(out), str(TEST), "--json"))["force_mae_eV_per_A"]
            row = rows.setdefault(name, {"mae": [], "cpu": []})
            row["mae"].append(score)
            row["cpu"].append(expensive_cpu + cost)
            print(f"  seed {seed} {name}: {score:.4f} eV/A", file=sys.stderr, flush=True)
    print(f"\n{model}, {n_expensive} random B3LYP frames of the 500 K equilibrium pool per seed (seeds {seeds}); "
          f"force MAE on {TEST.name}")
    print("| training | cheap level vs B3LYP on the pool (force MAE, eV/A) | CPU s per cheap label | cheap labels | "
          "CPU s (B3LYP + cheap labels) | force MAE (eV/A) |\n|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        level = name.split(", ")[-1]
        far, per = distance_on_pool(pool, cheap[level]) if level in cheap else (float("nan"), 0.0)
        print(f"| {name} | {'-' if level not in cheap else f'{far:.3f}'} | {per:.4f} | "
              f"{0 if name == 'standard' else len(pool)} | {mean_std(row['cpu'], 0)} | {mean_std(row['mae'])} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8, help="frames of --data (default 8)")
    ap.add_argument("--data", type=Path, default=DATA, help="B3LYP-labelled frames for the distance table")
    ap.add_argument("--xtb", action="store_true", help="GFN1- and GFN2-xTB in the distance table too")
    ap.add_argument("--asteroid", action="store_true", help="the ASTEROID table instead of the distance table")
    ap.add_argument("--levels", nargs="+", default=["hf-sto3g", "gfn1-xtb", "gfn2-xtb"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--expensive", type=int, default=30, help="random B3LYP frames per seed")
    ap.add_argument("--model", default="small",
                    help="a model preset, or PRESET+BASELINE for a Delta model (e.g. sevennet-0+gfn2-xtb)")
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the recipe's)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "cheap-levels")
    args = ap.parse_args(argv)
    if args.asteroid:
        asteroid_table(args.levels, args.seeds, args.expensive, args.model, args.runs, args.steps)
    else:
        distances(args.data, args.frames, args.xtb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
