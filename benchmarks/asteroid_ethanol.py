"""ASTEROID on ethanol at 500 K: test force error at equal labelling cost (CPU seconds).

Data (``benchmarks/make_ethanol_data.py``): a pool trajectory (training
candidates) and a held-out test trajectory, every frame labelled at HF/STO-3G
(cheap) and B3LYP/def2-SVP (expensive), each label with its measured PySCF CPU
seconds. A budget C (CPU s) is spent per method as follows; the expensive frames
are taken in one seeded random order of the pool, so for one seed every method's
expensive frames are a prefix of the same list:

- standard: expensive labels only, as many pool frames as C buys;
- asteroid-no-weights / asteroid: cheap labels of *all* pool frames are bought
  first, the rest of C buys expensive frames; pretrain on cheap (w = 1, or
  ASTEROID's bias weights w = exp(-B/gamma), gamma chosen on the expensive
  validation split), fine-tune on expensive;
- score-matching: sliced score matching on the unlabelled pool frames (500 K),
  then fine-tuning; the unlabelled frames are charged nothing (in the loop they
  come from MD with the model; the HF/STO-3G MD that produced them here is not
  counted), so all of C buys expensive frames.

The expensive frames a method buys are split 80/20 into training and validation
(the early-stopping guard); both count against C. gamma is fixed at the median
bias B (alloop's default). Scores: force MAE on the
expensive labels of the test trajectory (eV/A and kcal/mol/A), energy MAE per
atom. Model: EGNN (hidden 64, 3 layers, cutoff 5 A), float32, one torch thread per
run, trained with alloop's recipe (MSE, warm-up + cosine, EMA; steps in ``Config``); runs go to ``--workers``
processes. Finished runs are cached as JSON in
``--runs`` so an interrupted benchmark resumes.

    python benchmarks/asteroid_ethanol.py                 # budgets 150,300,600 CPU s, seeds 0-2
    python benchmarks/asteroid_ethanol.py --quick         # one budget, one seed, 200 steps
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from ase import units
from lib.asteroid_plan import METHODS, plan
from lib.common import DATA, mean_std, training_code_digest

PREFIX = "ethanol_500K_short"
CHEAP, EXPENSIVE = "hf-sto3g", "b3lyp-svp"
EV_PER_A_TO_KCAL_PER_MOL_A = 1.0 / (units.kcal / units.mol)
ELEMENTS = (1, 6, 8)


@dataclass(frozen=True)
class Config:
    """Training budget of one run: the recipe's defaults (alloop.training.trainer), budgets in optimiser steps."""

    exp_steps: int = 3000  # standard training and ASTEROID stage 1
    pre_steps: int = 3000  # stage 2 (cheap) and score matching
    finetune_steps: int = 1000  # stage 3
    lr: float | None = None  # None: TrainSettings' default
    finetune_lr: float | None = None  # None: 0.3 x lr
    energy_weight: float = 0.5  # rho (the recipe's default)
    batch: int = 8
    val_fraction: float = 0.2
    hidden: int = 64
    layers: int = 3

    @classmethod
    def quick(cls) -> Config:
        return cls(exp_steps=200, pre_steps=200, finetune_steps=100)


# --------------------------------------------------------------------------- data and budgets
def load_data(folder: Path) -> dict[str, list]:
    """The four extxyz files; checks that the cheap and expensive pool files hold the same frames."""
    import ase.io

    out = {}
    for traj in ("pool", "test"):
        for fid in (CHEAP, EXPENSIVE):
            path = folder / f"{PREFIX}_{traj}_{fid}.extxyz"
            if not path.is_file():
                raise SystemExit(f"missing {path}: run benchmarks/make_ethanol_data.py first")
            out[f"{traj}_{fid}"] = ase.io.read(path, index=":")
    cheap, exp = out[f"pool_{CHEAP}"], out[f"pool_{EXPENSIVE}"]
    if [a.info["frame_index"] for a in cheap] != [a.info["frame_index"] for a in exp]:
        raise SystemExit("the cheap and expensive pool files do not hold the same frames in the same order")
    if not all(np.array_equal(a.positions, b.positions) for a, b in zip(cheap, exp, strict=True)):
        raise SystemExit("the cheap and expensive pool files differ in positions")
    return out


# --------------------------------------------------------------------------- one run
def training_settings(cfg: Config, n_pool: int, seed: int) -> Any:
    """The ASTEROID stages' settings of a run (score matching: as many optimiser steps as stage 2)."""
    from alloop.config.training import TrainingConfig
    from alloop.training.score_matching import ScoreMatchingSettings
    from alloop.training.stages import AsteroidSettings
    from alloop.training.trainer import TrainSettings

    lr = cfg.lr or TrainingConfig().learning_rate_pretrain
    sm_epochs = max(1, round(cfg.pre_steps / -(-n_pool // cfg.batch)))  # as many steps as stage 2
    exp_ts = TrainSettings(max_steps=cfg.exp_steps, batch_size=cfg.batch, lr=lr, energy_weight=cfg.energy_weight,
                           threads=1)
    return AsteroidSettings(
        stage1=exp_ts,
        stage2=replace(exp_ts, max_steps=cfg.pre_steps),
        stage3=replace(exp_ts, max_steps=cfg.finetune_steps, lr=cfg.finetune_lr or 0.3 * lr),
        score=ScoreMatchingSettings(temperature_K=500.0, max_epochs=sm_epochs, batch_size=cfg.batch, lr=lr,
                                    patience=sm_epochs, threads=1),
        val_fraction=cfg.val_fraction,
        seed=seed,
    )


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (method, budget, seed) and score it on the test trajectory."""
    import torch

    torch.set_num_threads(1)
    from alloop.evaluation.metrics import evaluate_model
    from alloop.potentials.registry import build_model
    from alloop.training.asteroid import train_asteroid
    from alloop.training.data import FrameDataset

    cfg = Config(**job["config"])
    data = load_data(Path(job["data"]))
    method, seed = job["method"], job["seed"]
    exp_frames = [data[f"pool_{EXPENSIVE}"][k] for k in job["expensive_idx"]]
    expensive = FrameDataset.from_atoms(exp_frames, fidelity=EXPENSIVE)
    cheap = FrameDataset.from_atoms(data[f"pool_{CHEAP}"], fidelity=CHEAP) if job["n_cheap"] else None
    unlabelled = (
        FrameDataset.from_atoms(data[f"pool_{CHEAP}"], fidelity="unlabelled", labelled=False)
        if job["n_unlabelled"] else None
    )
    test = FrameDataset.from_atoms(data[f"test_{EXPENSIVE}"], fidelity=EXPENSIVE)

    settings = training_settings(cfg, len(data[f"pool_{CHEAP}"]), seed)

    def factory():
        return build_model("egnn", ELEMENTS, hidden_features=cfg.hidden, n_layers=cfg.layers, cutoff_A=5.0)

    t0 = time.perf_counter()
    result = train_asteroid(method, expensive, cheap=cheap, unlabelled=unlabelled, model_factory=factory,
                            settings=settings)
    seconds = time.perf_counter() - t0
    metrics = evaluate_model(result.model, test)
    out = {
        "method": method, "budget": job["budget"], "seed": seed, "cost": job["cost"],
        "n_expensive": len(exp_frames), "n_cheap": job["n_cheap"], "n_unlabelled": job["n_unlabelled"],
        "test_force_mae": metrics["force_mae_eV_per_A"], "test_force_rmse": metrics["force_rmse_eV_per_A"],
        "test_energy_mae_per_atom": metrics["energy_mae_per_atom_eV"],
        "val_force_mae": result.metrics["force_mae_eV_per_A"], "train_seconds": seconds,
        "stages": {k: int(getattr(v, "steps", 0) or getattr(v, "epochs_run", 0)) for k, v in result.stages.items()},
    }
    if result.bias is not None:
        out.update(gamma=result.gamma, bias_median=float(np.median(result.bias)),
                   bias_min=float(result.bias.min()), bias_max=float(result.bias.max()),
                   weight_min=float(result.weights.min()))
    return out


# --------------------------------------------------------------------------- driver and table
def table(results: list[dict[str, Any]], budgets: list[float], seeds: list[int]) -> list[str]:
    lines = [
        "| budget (CPU s) | method | expensive frames | cheap frames | unlabelled | cost charged (CPU s) "
        "| test F-MAE (eV/Å) | test F-MAE (kcal/mol/Å) | vs standard | test E-MAE (meV/atom) | train time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for budget in budgets:
        base = {r["seed"]: r["test_force_mae"] for r in results if r["budget"] == budget and r["method"] == "standard"}
        for method in METHODS:
            rows = [r for r in results if r["budget"] == budget and r["method"] == method]
            rows.sort(key=lambda r: r["seed"])
            if not rows:
                lines.append(f"| {budget:g} | {method} | (too few expensive frames in this budget) |||||||||")
                continue
            f = [r["test_force_mae"] for r in rows]
            rel = [r["test_force_mae"] / base[r["seed"]] - 1 for r in rows if r["seed"] in base]
            n_exp = sorted({r["n_expensive"] for r in rows})
            lines.append(
                f"| {budget:g} | {method} | {'/'.join(map(str, n_exp))} | {rows[0]['n_cheap']} "
                f"| {rows[0]['n_unlabelled']} "
                f"| {np.mean([r['cost'] for r in rows]):.0f} | {mean_std(f)} | {mean_std(f, 2, EV_PER_A_TO_KCAL_PER_MOL_A)} "
                f"| {'—' if method == 'standard' or not rel else mean_std(rel, 0, 100, '+') + ' %'} "
                f"| {mean_std([r['test_energy_mae_per_atom'] for r in rows], 1, 1000)} "
                f"| {np.mean([r['train_seconds'] for r in rows]):.0f} |"
            )
    lines.append("")
    lines.append(f"mean ± sample std over seeds {seeds}; 'vs standard': mean ± std of the per-seed relative change"
                 " of the test force MAE.")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--budgets", default="150,300,600", help="labelling budgets in CPU seconds, comma-separated")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--workers", type=int, default=2, help="parallel runs (one torch thread each)")
    parser.add_argument("--runs", type=Path, default=Path("/tmp/asteroid_ethanol_runs"), help="cache of finished runs")
    parser.add_argument("--quick", action="store_true", help="one budget (400 CPU s), one seed, 200 steps")
    for name, kind in (("exp_steps", int), ("pre_steps", int), ("finetune_steps", int), ("lr", float),
                       ("finetune_lr", float), ("batch", int)):
        parser.add_argument("--" + name.replace("_", "-"), type=kind, help=f"override Config.{name}")
    args = parser.parse_args(argv)
    unknown = {m for m in args.methods.split(",") if m} - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}")
    return args


def plan_jobs(args: argparse.Namespace, cfg: Config, costs: tuple[np.ndarray, np.ndarray], grid: tuple[list, list],
              run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The runs to do (one job each) and the results cached in ``run_dir``, over ``grid`` (budgets, seeds) and the
    methods asked for; a method whose budget buys fewer than 2 expensive frames is skipped."""
    methods = [m for m in args.methods.split(",") if m]
    jobs, results = [], []
    for budget in grid[0]:
        for seed in grid[1]:
            for method, p in plan(budget, seed, *costs).items():
                if method not in methods:
                    continue
                if len(p["expensive_idx"]) < 2:
                    print(f"budget {budget:g}, seed {seed}: {method} buys {len(p['expensive_idx'])} expensive frames "
                          "(needs 2 for training + validation): skipped", flush=True)
                    continue
                path = run_dir / f"{method}_b{budget:g}_s{seed}.json"
                if path.exists():
                    results.append(json.loads(path.read_text()))
                    continue
                jobs.append({"method": method, "budget": budget, "seed": seed, "data": str(args.data),
                             "config": asdict(cfg), "expensive_idx": p["expensive_idx"].tolist(),
                             "n_cheap": p["n_cheap"], "n_unlabelled": p["n_unlabelled"], "cost": p["cost"],
                             "path": str(path)})
    return jobs, results


def run_jobs(jobs: list[dict[str, Any]], workers: int, results: list[dict[str, Any]]) -> None:
    """Run the jobs in ``workers`` processes, each result written to its job's path and appended to ``results``."""
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(run_one, job): job for job in jobs}
        for fut in as_completed(futures):
            res = fut.result()
            Path(futures[fut]["path"]).write_text(json.dumps(res))
            results.append(res)
            print(f"  {res['method']:>20} budget {res['budget']:g} seed {res['seed']}: "
                  f"{res['n_expensive']} exp frames, "
                  f"test F-MAE {res['test_force_mae']:.4f} eV/A ({res['train_seconds']:.0f} s; "
                  f"{(time.perf_counter() - t0) / 60:.1f} min elapsed)", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"
    cfg = Config.quick() if args.quick else Config()
    overrides = {k: v for k, v in vars(args).items() if k in Config.__dataclass_fields__ and v is not None}
    cfg = replace(cfg, **overrides)
    budgets = [400.0] if args.quick else [float(b) for b in args.budgets.split(",")]
    seeds = [0] if args.quick else list(range(args.seeds))

    data = load_data(args.data)
    cheap_cost = np.array([a.info["cpu_seconds"] for a in data[f"pool_{CHEAP}"]])
    exp_cost = np.array([a.info["cpu_seconds"] for a in data[f"pool_{EXPENSIVE}"]])
    print(f"pool {len(exp_cost)} frames: {CHEAP} {cheap_cost.mean():.2f} CPU s/frame ({cheap_cost.sum():.0f} in all), "
          f"{EXPENSIVE} {exp_cost.mean():.2f} CPU s/frame ({exp_cost.sum():.0f} in all); "
          f"test {len(data[f'test_{EXPENSIVE}'])} frames", flush=True)

    key = json.dumps({"config": asdict(cfg), "data": str(args.data.resolve()), "code": training_code_digest()},
                     sort_keys=True)  # a change of the training code is a new set of runs
    run_dir = args.runs / hashlib.sha256(key.encode()).hexdigest()[:12]  # cached runs of this config and data
    run_dir.mkdir(parents=True, exist_ok=True)
    jobs, results = plan_jobs(args, cfg, (cheap_cost, exp_cost), (budgets, seeds), run_dir)
    print(f"{len(jobs)} runs to do, {len(results)} cached in {run_dir}", flush=True)
    run_jobs(jobs, args.workers, results)
    print()
    print("\n".join(table(results, budgets, seeds)))
    gammas = [r for r in results if "gamma" in r]
    if gammas:
        print(f"ASTEROID bias B (eV/A): median {np.median([r['bias_median'] for r in gammas]):.3f}, "
              f"range {min(r['bias_min'] for r in gammas):.3f}..{max(r['bias_max'] for r in gammas):.3f}; "
              f"chosen gamma / median B: {sorted({round(r['gamma'] / r['bias_median'], 2) for r in gammas})}; "
              f"smallest weight {min(r['weight_min'] for r in gammas):.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
