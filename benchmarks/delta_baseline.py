"""The Delta baseline (issue 27, part 3): error per B3LYP label and MD stability, with and without GFN-xTB.

For each seed and each number of expensive frames N (``--frames``), N frames are drawn at random from the
500 K equilibrium pool (``benchmarks/data/ethanol_500K_eqpool_b3lyp-svp.extxyz``: independent GFN2-xTB runs,
B3LYP/def2-SVP labels) and the model (``--model``, default the quickstart's ``small`` EGNN) is trained on
them with ``alloop train --method standard``, once plain and once per baseline (``--baselines``:
``alloop train --baseline gfn2-xtb``, the network learning B3LYP - GFN2-xTB). Every model is scored with
``alloop evaluate --json`` on the equilibrium test sets (500 K and 1000 K; independent runs, never trained
on); a Delta model's error is the whole model's (baseline added), so the columns compare like with like.

MD stability (``--md-ps``, default 1 ps, 0 to skip): the models trained on the largest N run ``--replicas`` (6) Langevin
replicas (alloop's batched MD, 0.5 fs, friction 0.01/fs, the campaign's default guards: a bond beyond
1.5x its start, two atoms closer than 0.7 A, temperature out of range) at 500 K and 1000 K from the
trans rotamer, for ``--md-ps`` ps or until the guard stops a replica; the table gives the median time to the
first guard stop (censored at the run length: ">= T") and the stopped share. The baseline's share of the MD
wall time is printed too.

Runs are cached in ``--runs`` (models and their scores), so a stopped run resumes. The result file
(``--results``, default ``benchmarks/results/delta-baseline/MODEL.json``) holds every seed's scores and MD stops and
the run record; ``python benchmarks/docs_tables.py`` writes its tables into docs/benchmarks.md ("Delta baseline").

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
from typing import Any

import numpy as np
from lib.common import DATA, ROOT, alloop, data_file, md_first_stops
from lib.delta_baseline_table import error_lines, md_lines
from lib.run_record import finish_record, start_record

POOL = DATA / "ethanol_500K_eqpool_b3lyp-svp.extxyz"
RESULTS = ROOT / "benchmarks" / "results" / "delta-baseline"
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[30], help="expensive frames (default 30)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--baselines", nargs="+", default=["gfn2-xtb"], help="GFN-xTB presets (default gfn2-xtb)")
    p.add_argument("--model", default="small", help="model preset (default small)")
    p.add_argument("--md-ps", type=float, default=1.0, help="MD length per replica (ps; 0: no MD test)")
    p.add_argument("--replicas", type=int, default=6, help="MD replicas per model and temperature (default 6)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (default: alloop train's)")
    p.add_argument("--runs", type=Path, default=Path("runs/delta-baseline"))
    p.add_argument("--results", type=Path, default=None,
                   help=f"the result file (default {RESULTS.relative_to(ROOT)}/MODEL.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    record = start_record(__file__, argv, packages=("torch", "tblite", "pyscf"))
    args.runs.mkdir(parents=True, exist_ok=True)
    tags = ["plain", *args.baselines]
    scored = {f"{n}/{s}/{tag}": scores(train(args.runs, args.model, n, s, None if tag == "plain" else tag,
                                                args.threads, args.steps))
              for n in args.frames for s in args.seeds for tag in tags}
    result: dict[str, Any] = {
        "model": args.model, "frames": args.frames, "seeds": args.seeds, "baselines": args.baselines,
        "pool": POOL.name, "tests": {name: path.name for name, path in TESTS.items()}, "scores": scored}
    if args.md_ps > 0:
        n = max(args.frames)
        result["md"] = {"frames": n, "ps": args.md_ps, "replicas": args.replicas, "temperatures": [500.0, 1000.0],
                        "runs": {f"{t:g}/{s}/{tag}": md_stability(
                            args.runs / f"{args.model}_n{n}_s{s}_{tag}.safetensors", t, args.md_ps, args.replicas,
                            seed=100 + s) for t in (500.0, 1000.0) for s in args.seeds for tag in tags}}
    result["record"] = finish_record(record)
    path = args.results or RESULTS / f"{args.model}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"Force MAE (eV/A) of `{args.model}` trained on N random frames of the 500 K equilibrium pool "
          f"(standard training), on the equilibrium test sets; mean +- sample std over seeds {args.seeds}:\n")
    print("\n".join(error_lines(result)))
    if "md" in result:
        print(f"\nMD stability of the N = {result['md']['frames']} models: {args.replicas} replicas per model from "
              f"trans ethanol, {args.md_ps:g} ps each:\n")
        print("\n".join(md_lines(result)))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
