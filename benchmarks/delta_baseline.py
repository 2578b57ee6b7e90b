"""The Delta baseline (issue 27, part 3): error per B3LYP label and MD stability, with and without GFN-xTB.

For each seed and each number of expensive frames N (``--frames``), N frames are drawn at random from the
500 K equilibrium pool (``benchmarks/data/ethanol_500K_eqpool_b3lyp-svp.extxyz``: independent GFN2-xTB runs,
B3LYP/def2-SVP labels) and the model (``--model``, default the quickstart's ``small`` EGNN) is trained on
them with ``alloop train --method standard``, once plain and once per baseline (``--baselines``:
``alloop train --baseline gfn2-xtb``, the network learning B3LYP - GFN2-xTB). Every model is scored with
``alloop evaluate --json`` on the equilibrium test sets (500 K and 1000 K; independent runs, never trained
on); a Delta model's error is the whole model's (baseline added), so the columns compare like with like.

MD stability (``--md-ps``, 0 to skip): the models trained on the largest N run ``--replicas`` Langevin
replicas (alloop's batched MD, 0.5 fs, friction 0.01/fs, the campaign's default guards: a bond beyond
1.5x its start, two atoms closer than 0.7 A, temperature out of range) at 500 K and 1000 K from the
trans rotamer, for ``--md-ps`` ps or until the guard stops a replica; the table gives the median time to the
first guard stop (censored at the run length: ">= T") and the stopped share. The baseline's share of the MD
wall time is printed too.

Runs are cached in ``--runs`` (models and their scores), so a stopped run resumes.

    python benchmarks/delta_baseline.py                                   # N = 30, seeds 0-2, gfn2-xtb
    python benchmarks/delta_baseline.py --frames 10 30 55 --baselines gfn1-xtb gfn2-xtb
    python benchmarks/delta_baseline.py --model sevennet-0 --frames 30 --md-ps 0 --runs runs/delta-7net
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from lib.common import DATA, alloop, data_file, md_first_stops, mean_std

POOL = DATA / "ethanol_500K_eqpool_b3lyp-svp.extxyz"
TESTS = {"500 K": data_file("ethanol_500K_eqtest_b3lyp-svp.extxyz"),
         "1000 K": DATA / "ethanol_1000K_eqtest_b3lyp-svp.extxyz"}


def train(folder: Path, model: str, n: int, seed: int, baseline: str | None, threads: int,
          steps: int | None = None) -> Path:
    """``alloop train --method standard`` on N random pool frames (the draw of ``seed``); cached."""
    from ase.io import read, write

    tag = baseline or "plain"
    path = folder / f"{model}_n{n}_s{seed}_{tag}.safetensors"
    if path.exists():
        return path
    pool = read(POOL, ":")
    frames = folder / f"pool_n{n}_s{seed}.extxyz"
    if not frames.exists():
        idx = np.random.default_rng(seed).choice(len(pool), n, replace=False)
        write(frames, [pool[i] for i in idx])
    extra = (["--baseline", baseline] if baseline else []) + (["--steps", str(steps)] if steps else [])
    start = time.perf_counter()
    alloop("train", "--expensive", str(frames), "--method", "standard", "--model", model, "--seed", str(seed),
           "--threads", str(threads), "--quiet", *extra, "-o", str(path))
    print(f"  trained {path.name} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return path


def scores(model: Path) -> dict[str, float]:
    """Force MAE (eV/A) on each test set; cached next to the model."""
    cache = model.with_suffix(".scores.json")
    if cache.exists():
        return json.loads(cache.read_text())
    out = {name: json.loads(alloop("evaluate", str(model), str(path), "--json"))["force_mae_eV_per_A"]
           for name, path in TESTS.items()}
    cache.write_text(json.dumps(out))
    return out


def md_stability(model_path: Path, temperature_K: float, ps: float, replicas: int, seed: int) -> dict[str, float]:
    """First guard stop (fs, NaN if none) per replica of batched Langevin MD from trans ethanol; cached."""
    cache = model_path.with_suffix(f".md{int(temperature_K)}K_{ps:g}ps.json")
    if cache.exists():
        return json.loads(cache.read_text())
    out = md_first_stops(model_path, temperature_K, ps, replicas, seed)
    cache.write_text(json.dumps(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[30], help="expensive frames (default 30)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--baselines", nargs="+", default=["gfn2-xtb"], help="GFN-xTB presets (default gfn2-xtb)")
    parser.add_argument("--model", default="small", help="model preset (default small)")
    parser.add_argument("--md-ps", type=float, default=2.0, help="MD length per replica (ps; 0: no MD test)")
    parser.add_argument("--replicas", type=int, default=8, help="MD replicas per model and temperature (default 8)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: alloop train's)")
    parser.add_argument("--runs", type=Path, default=Path("runs/delta-baseline"))
    args = parser.parse_args(argv)
    args.runs.mkdir(parents=True, exist_ok=True)
    variants = [None, *args.baselines]
    results: dict[tuple, dict] = {}
    for n in args.frames:
        for seed in args.seeds:
            for baseline in variants:
                results[(n, seed, baseline)] = scores(train(args.runs, args.model, n, seed, baseline, args.threads,
                                                                 args.steps))
    print(f"Force MAE (eV/A) of `{args.model}` trained on N random frames of the 500 K equilibrium pool "
          f"(standard training), on the equilibrium test sets; mean +- sample std over seeds {args.seeds}:\n")
    print("| N | baseline | " + " | ".join(TESTS) + " |\n|---:|---|" + "---:|" * len(TESTS))
    for n in args.frames:
        for baseline in variants:
            cells = [mean_std([results[(n, s, baseline)][t] for s in args.seeds]) for t in TESTS]
            print(f"| {n} | {baseline or 'none'} | " + " | ".join(cells) + " |")
    if args.md_ps <= 0:
        return 0
    n = max(args.frames)
    print(f"\nMD stability of the N = {n} models: {args.replicas} replicas per model from trans ethanol, "
          f"{args.md_ps:g} ps each; median time to the first guard stop over all seeds' replicas (\">=\": "
          f"censored at the run length), stopped replicas, the baseline's share of the MD wall time:\n")
    print("| T (K) | baseline | median first stop (fs) | stopped | baseline share of MD wall |\n|---:|---|---:|---:|---:|")
    for temperature in (500.0, 1000.0):
        for baseline in variants:
            runs = [md_stability(args.runs / f"{args.model}_n{n}_s{s}_{baseline or 'plain'}.safetensors", temperature,
                                 args.md_ps, args.replicas, seed=100 + s) for s in args.seeds]
            stops = np.concatenate([np.asarray(r["stops_fs"], dtype=float) for r in runs])
            censored = np.where(np.isnan(stops), np.inf, stops)
            median = float(np.median(censored))
            shown = f">= {1000 * args.md_ps:.0f}" if not np.isfinite(median) else f"{median:.0f}"
            share = np.mean([r["baseline_share"] for r in runs])
            print(f"| {temperature:.0f} | {baseline or 'none'} | {shown} | {int(np.isfinite(stops).sum())} of "
                  f"{stops.size} | {100 * share:.0f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
