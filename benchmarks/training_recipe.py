"""The training recipe's learning curve: which defaults (loss, energy weight, schedule, EMA, step budget) train best.

Standard training (expensive labels only) of the EGNN on ethanol at 500 K,
B3LYP/def2-SVP labels (``benchmarks/data/ethanol_500K_*``). For each seed the
150 pool frames are put in a seeded random order: the first N are the training
run's frames (20 % of them validation, the early-stopping guard), frames
100-149 of that order are the *selection* set on which the defaults are chosen;
the independent 500 K and 300 K test trajectories are reported only, never
used to choose. Scores: force MAE (eV/A) and energy MAE (meV/atom).

Recipes (``--recipes``, comma-separated; ``--list`` shows them):
``old`` is the trainer before the recipe (MAE, energy weight 0.01, plateau
schedule watching the validation MAE, early stopping after 20 epochs, best
epoch kept, no EMA); the others are the new trainer with one setting changed
from the default ``mse`` (MSE, energy weight 0.1, warm-up + cosine, EMA 0.99,
3000 steps of batch 8, the final weights kept).

    python benchmarks/training_recipe.py --n 52 --seeds 0,1,2
    python benchmarks/training_recipe.py --n 26,52,104 --recipes mse --seeds 0,1,2
    python benchmarks/training_recipe.py --quick          # smoke: 2 recipes, 1 seed, 200 steps

Finished runs are cached as JSON in ``--runs`` (default
``benchmarks/runs/training_recipe``) so an interrupted benchmark resumes.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
from lib.common import DATA, cached_json, mean_std, recipe_sizes

ELEMENTS = (1, 6, 8)

BASE = dict(max_steps=3000, batch_size=8, lr=1e-3, min_lr=1e-5, loss="mse", energy_weight=0.1, ema_decay=0.99)
RECIPES: dict[str, dict] = {
    "old": dict(max_epochs=200, max_steps=None, batch_size=16, loss="mae", energy_weight=0.01, scheduler="plateau",
                lr_patience=5, min_lr=1e-6, patience=20, eval_every=1, ema_decay=None, select="best"),
    "mse": {},
    "mse-rho0.01": dict(energy_weight=0.01),
    "mse-rho0.5": dict(energy_weight=0.5),
    "huber": dict(loss="huber"),
    "mae": dict(loss="mae"),
    "mse-noema": dict(ema_decay=None),
    "mse-1k": dict(max_steps=1000),
    "mse-6k": dict(max_steps=6000),
    "mse-lr3e-3": dict(lr=3e-3),
    "mse-lr1e-2": dict(lr=1e-2),
    "mse-lr3e-2": dict(lr=3e-2),
    "mse-lr1e-2-1k": dict(lr=1e-2, max_steps=1000),
    "mse-lr1e-2-6k": dict(lr=1e-2, max_steps=6000),
    "mse-lr1e-2-noema": dict(lr=1e-2, ema_decay=None),
    "mse-lr1e-2-rho0.01": dict(lr=1e-2, energy_weight=0.01),
    "mse-lr1e-2-rho0.5": dict(lr=1e-2, energy_weight=0.5),
    "huber-lr1e-2": dict(lr=1e-2, loss="huber"),
    "mae-lr1e-2": dict(lr=1e-2, loss="mae"),
    "mse-lr3e-3-6k": dict(lr=3e-3, max_steps=6000),
    "mse-lr3e-3-b4": dict(lr=3e-3, batch_size=4),
    "huber-lr3e-3": dict(lr=3e-3, loss="huber"),
}


def load(name: str):
    import ase.io

    from alloop.training.data import FrameDataset

    return FrameDataset.from_atoms(ase.io.read(DATA / name, index=":"))


def run_one(recipe: str, n: int, seed: int, steps: int | None) -> dict:
    import torch

    from alloop.evaluation.metrics import evaluate_model
    from alloop.potentials.registry import build_model
    from alloop.training.trainer import TrainSettings, fit_output_scale, train

    torch.set_num_threads(1)
    pool = load("ethanol_500K_short_pool_b3lyp-svp.extxyz")
    order = np.random.default_rng(seed).permutation(len(pool))
    data, selection = pool.subset(order[:n]), pool.subset(order[100:])
    train_set, val_set, _, _ = data.split(0.2, seed)
    settings = TrainSettings(**{**BASE, **RECIPES[recipe], "seed": seed, "threads": 1})
    if steps is not None and settings.max_steps is not None:
        settings = replace(settings, max_steps=steps)
    torch.manual_seed(seed)
    model = build_model("egnn", ELEMENTS, hidden_features=64, n_layers=3, seed=seed)
    if recipe != "old":
        fit_output_scale(model, train_set)
    t0 = time.perf_counter()
    result = train(model, train_set, val_set, settings)
    seconds = time.perf_counter() - t0
    out = {"recipe": recipe, "n": n, "seed": seed, "seconds": seconds, "steps": result.steps,
           "val_force_mae": result.best_val_force_mae}
    for key, name in (("selection", None), ("test500", "ethanol_500K_short_test_b3lyp-svp.extxyz"),
                      ("test300", "ethanol_300K_short_test_b3lyp-svp.extxyz")):
        m = evaluate_model(model, selection if name is None else load(name))
        out[f"{key}_force_mae"] = m["force_mae_eV_per_A"]
        out[f"{key}_energy_mae_meV_atom"] = 1000 * m["energy_mae_per_atom_eV"]
    return out


def table(rows: list[dict]) -> str:
    lines = ["| recipe | N | seeds | steps | s/run | selection F-MAE | 500 K test F-MAE | 300 K test F-MAE "
             "| 500 K test E-MAE (meV/atom) |",
             "|---|---:|---:|---:|---:|---|---|---|---|"]
    keys = sorted({(r["recipe"], r["n"]) for r in rows}, key=lambda k: (k[1], list(RECIPES).index(k[0])))
    for recipe, n in keys:
        group = [r for r in rows if r["recipe"] == recipe and r["n"] == n]
        lines.append(
            f"| {recipe} | {n} | {len(group)} | {int(np.mean([r['steps'] for r in group]))} "
            f"| {np.mean([r['seconds'] for r in group]):.0f} | {mean_std([r['selection_force_mae'] for r in group])} "
            f"| {mean_std([r['test500_force_mae'] for r in group])} | {mean_std([r['test300_force_mae'] for r in group])} "
            f"| {mean_std([r['test500_energy_mae_meV_atom'] for r in group])} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--n", default="52", help="training frames (validation included), comma-separated")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=None, help="override every recipe's step budget")
    ap.add_argument("--runs", type=Path, default=Path(__file__).resolve().parent / "runs" / "training_recipe")
    ap.add_argument("--quick", action="store_true", help="2 recipes, 1 seed, 200 steps")
    ap.add_argument("--list", action="store_true", help="print the recipes and exit")
    args = ap.parse_args()
    if args.list:
        for name, change in RECIPES.items():
            print(f"{name}: {change or BASE}")
        return
    recipes = ["old", "mse"] if args.quick else args.recipes.split(",")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    steps = 200 if args.quick else args.steps
    sizes = recipe_sizes(recipes, RECIPES, args.n)
    args.runs.mkdir(parents=True, exist_ok=True)
    rows = []
    todo = [(r, n, s) for n in sizes for r in recipes for s in seeds]
    for k, (recipe, n, seed) in enumerate(todo, 1):
        path = args.runs / f"{recipe}_n{n}_s{seed}{'' if steps is None else f'_steps{steps}'}.json"
        row = cached_json(path, partial(run_one, recipe, n, seed, steps))
        rows.append(row)
        print(f"[{k}/{len(todo)}] {recipe} N={n} seed {seed}: selection {row['selection_force_mae']:.3f}, "
              f"test500 {row['test500_force_mae']:.3f} eV/A ({row['seconds']:.0f} s)", flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
