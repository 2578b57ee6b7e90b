"""Models on ethanol at 500 K: EGNN, SevenNet from scratch, SevenNet-0 zero-shot, fine-tuned and with ASTEROID.

Data (``benchmarks/make_ethanol_data.py``): the 150-frame 500 K pool trajectory
(B3LYP/def2-SVP and HF/STO-3G labels with their PySCF CPU seconds) and two
held-out test trajectories, 500 K and 1000 K (50 frames each, B3LYP/def2-SVP).
For each seed the pool is put in a seeded random order
(``np.random.default_rng(seed).permutation``): N = 30 / 55 / 150 means the
first N frames, whose expensive labels cost C CPU seconds. Every run is what
``alloop train`` does (``alloop.training.recipe`` with the command's defaults for the
model's start, 10 % of the expensive frames as the validation guard,
``train_asteroid``):

- ``egnn-small``: EGNN preset ``small``, standard training, the from-scratch defaults;
- ``sevennet-small``: SevenNet from scratch (preset ``sevennet-small``), standard, the same defaults;
- ``sevennet-0-zero-shot``: the pretrained SevenNet-0, no weight update; its per-element
  reference energies fitted by least squares on the N frames' residuals (label - prediction);
- ``sevennet-0``: SevenNet-0 fine-tuned, standard (``alloop train --model sevennet-0``'s defaults);
- ``sevennet-0-asteroid``: ASTEROID from SevenNet-0 at equal label cost C: the cheap
  labels of all 150 pool frames are bought first, the rest of C buys expensive frames of
  the same order (``benchmarks/asteroid_ethanol.py``'s ``plan``).

Scores on the test trajectories (never used to choose anything): force MAE (eV/A)
and energy MAE (meV/atom), mean +- std over seeds; training seconds per optimiser
step and per epoch of the expensive training frames (one torch thread, on a shared
machine); inference ms per frame (energy and forces) for 1 and for 32 ethanol
replicas in one call. Finished runs are cached as JSON in ``--runs`` (key: model,
N, seed and the settings' hash), so the benchmark resumes and runs in pieces:

    python benchmarks/models_ethanol.py                                   # everything: 5 models x 3 N x 3 seeds
    python benchmarks/models_ethanol.py --only sevennet-0 --n 55          # one piece
    python benchmarks/models_ethanol.py --quick                           # smoke: one seed, N = 30, 20 steps
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from lib.asteroid_plan import plan  # the label-cost plan of the ASTEROID benchmark
from lib.common import DATA, cached_json, mean_std

ELEMENTS = (1, 6, 8)
CHEAP, EXPENSIVE = "hf-sto3g", "b3lyp-svp"
TESTS = {"500K": "ethanol_500K_short_test_b3lyp-svp.extxyz", "1000K": "ethanol_1000K_short_test_b3lyp-svp.extxyz"}
#: name -> (model preset, method); the method "zero-shot" re-references the pretrained model only
MODELS: dict[str, tuple[str, str]] = {
    "egnn-small": ("small", "standard"),
    "sevennet-small": ("sevennet-small", "standard"),
    "sevennet-0-zero-shot": ("sevennet-0", "zero-shot"),
    "sevennet-0": ("sevennet-0", "standard"),
    "sevennet-0-asteroid": ("sevennet-0", "asteroid"),
}
QUICK_STEPS = 20


def _read(name: str, fidelity: str):
    """(FrameDataset, the labels' recorded CPU seconds per frame) of one data file."""
    import ase.io

    from alloop.training.data import FrameDataset

    frames = ase.io.read(DATA / name, index=":")
    cost = np.array([a.info.get("cpu_seconds", np.nan) for a in frames], float)
    return FrameDataset.from_atoms(frames, fidelity=fidelity), cost


def recipe(name: str, quick: bool) -> dict[str, Any]:
    """``alloop train``'s options for this model beyond its defaults (a scratch or pretrained start): none, or
    the quick budget."""
    return {"steps": QUICK_STEPS} if quick else {}


def _factory(preset: str, seed: int):
    from alloop.potentials.registry import build_model
    from alloop.presets import load_preset

    hparams = load_preset("models", preset)
    architecture = hparams.pop("architecture")
    return lambda: build_model(architecture, ELEMENTS, seed=seed, **hparams)


def run_one(name: str, n: int, seed: int, quick: bool) -> dict[str, Any]:
    """Train (or re-reference) one model on the first ``n`` pool frames of seed's order; score it on the tests."""
    import torch

    from alloop.evaluation.metrics import evaluate_model
    from alloop.presets import load_preset
    from alloop.training.asteroid import train_asteroid
    from alloop.training.recipe import asteroid_settings, section_from_options
    from alloop.training.references import refit_references

    torch.set_num_threads(1)
    preset, method = MODELS[name]
    pool_exp, exp_cost = _read(f"ethanol_500K_short_pool_{EXPENSIVE}.extxyz", EXPENSIVE)
    pool_cheap, cheap_cost = _read(f"ethanol_500K_short_pool_{CHEAP}.extxyz", CHEAP)
    order = np.random.default_rng(seed).permutation(len(pool_exp))
    budget = float(np.cumsum(exp_cost[order])[n - 1])
    bought = plan(budget, seed, cheap_cost, exp_cost)["asteroid" if method == "asteroid" else "standard"]
    expensive = pool_exp.subset(bought["expensive_idx"])
    cheap = pool_cheap if method == "asteroid" else None
    options = recipe(name, quick)
    t0 = time.perf_counter()
    if method == "zero-shot":
        model = _factory(preset, seed)()
        refit_references(model, expensive)
        steps, stage_seconds, n_train = 0, 0.0, len(expensive)
    else:
        pretrained = load_preset("models", preset).get("base") is not None
        settings = asteroid_settings(section_from_options(options, pretrained=pretrained), seed, 1, 300.0,
                                     split_seed=seed)
        result = train_asteroid(method, expensive, cheap, model_factory=_factory(preset, seed), settings=settings)
        model = result.model
        steps = sum(s.steps for s in result.stages.values())
        stage_seconds = sum(s.seconds for s in result.stages.values())
        n_train = len(result.splits["expensive_train"])
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {
        "model": name, "n": n, "seed": seed, "method": method, "n_expensive": len(expensive),
        "n_cheap": len(cheap) if cheap is not None else 0, "cost": bought["cost"], "budget": budget,
        "seconds": seconds, "steps": steps, "seconds_per_step": stage_seconds / steps if steps else None,
        "steps_per_epoch": math.ceil(n_train / options["batch_size"]) if options else None, "options": options,
    }
    for key, file in TESTS.items():
        m = evaluate_model(model, _read(file, EXPENSIVE)[0])
        out[f"test{key}_force_mae"] = m["force_mae_eV_per_A"]
        out[f"test{key}_energy_mae_meV_atom"] = 1000 * m["energy_mae_per_atom_eV"]
    return out


def inference_ms(preset: str, replicas: int, repeats: int = 5) -> float:
    """Median wall ms per frame of energy + forces for ``replicas`` ethanol molecules in one call (1 thread)."""
    import torch
    from ase.build import molecule

    from alloop.potentials.base import AtomsBatch

    torch.set_num_threads(1)
    model = _factory(preset, 0)().eval()
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(replicas):
        atoms = molecule("CH3CH2OH")
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        frames.append(atoms)
    batch = AtomsBatch.from_atoms(frames)
    model(batch, compute_forces=True)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(batch, compute_forces=True)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times)) / replicas


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | N | seeds | expensive / cheap frames | label CPU s | 500 K F-MAE (eV/A) | 500 K E-MAE (meV/atom) "
             "| 1000 K F-MAE (eV/A) | 1000 K E-MAE (meV/atom) | steps | s/step | s/epoch |",
             "|---|---:|---:|---|---:|---|---|---|---|---:|---:|---:|"]
    for n in sorted({r["n"] for r in rows}):
        for name in MODELS:
            g = sorted((r for r in rows if r["n"] == n and r["model"] == name), key=lambda r: r["seed"])
            if not g:
                continue
            n_exp = "/".join(str(k) for k in sorted({r["n_expensive"] for r in g}))
            per_step = [r["seconds_per_step"] for r in g if r["seconds_per_step"]]
            step = f"{np.mean(per_step):.2f}" if per_step else "-"
            epoch = f"{np.mean(per_step) * g[0]['steps_per_epoch']:.1f}" if per_step else "-"
            lines.append(
                f"| {name} | {n} | {len(g)} | {n_exp} / {g[0]['n_cheap']} | {np.mean([r['cost'] for r in g]):.0f} "
                f"| {mean_std([r['test500K_force_mae'] for r in g])} "
                f"| {mean_std([r['test500K_energy_mae_meV_atom'] for r in g], 1)} "
                f"| {mean_std([r['test1000K_force_mae'] for r in g])} "
                f"| {mean_std([r['test1000K_energy_mae_meV_atom'] for r in g], 1)} "
                f"| {g[0]['steps']} | {step} | {epoch} |")
    lines += ["", "mean +- sample std over seeds; s/epoch = s/step x steps per pass over the expensive training frames."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(MODELS), help=f"models, comma-separated: {', '.join(MODELS)}")
    ap.add_argument("--n", default="30,55,150", help="pool frames bought for the standard run, comma-separated")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--quick", action="store_true", help=f"one seed, N = 30, {QUICK_STEPS} steps per stage")
    ap.add_argument("--no-timing", action="store_true", help="skip the inference timing")
    ap.add_argument("--runs", type=Path, default=Path(__file__).resolve().parent / "runs" / "models_ethanol")
    args = ap.parse_args(argv)
    names = [m for m in args.only.split(",") if m]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        ap.error(f"unknown models {unknown} (known: {', '.join(MODELS)})")
    sizes = [30] if args.quick else [int(n) for n in args.n.split(",")]
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    if any(not 2 <= n <= 150 for n in sizes):
        ap.error("--n must be within 2..150 (the pool has 150 frames)")
    args.runs.mkdir(parents=True, exist_ok=True)
    rows = []
    todo = [(name, n, seed) for n in sizes for name in names for seed in seeds]
    for k, (name, n, seed) in enumerate(todo, 1):
        key = hashlib.sha256(json.dumps(recipe(name, args.quick), sort_keys=True).encode()).hexdigest()[:8]
        path = args.runs / f"{name}_n{n}_s{seed}_{key}{'_quick' if args.quick else ''}.json"
        row = cached_json(path, partial(run_one, name, n, seed, args.quick))
        rows.append(row)
        print(f"[{k}/{len(todo)}] {name} N={n} seed {seed}: 500 K F-MAE {row['test500K_force_mae']:.4f} eV/A, "
              f"E-MAE {row['test500K_energy_mae_meV_atom']:.1f} meV/atom ({row['seconds']:.0f} s)", flush=True)
    print()
    print(table(rows))
    if args.no_timing:
        return 0
    print()
    print("| model | inference ms/frame, 1 replica | ms/frame, 32 replicas in one call |")
    print("|---|---:|---:|")
    for preset in dict.fromkeys(MODELS[name][0] for name in names):
        path = args.runs / f"timing_{preset}.json"
        if not path.is_file():
            path.write_text(json.dumps({"1": inference_ms(preset, 1), "32": inference_ms(preset, 32)}))
        t = json.loads(path.read_text())
        users = ", ".join(name for name in names if MODELS[name][0] == preset)
        print(f"| {preset} ({users}) | {t['1']:.1f} | {t['32']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
