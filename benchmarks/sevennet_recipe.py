"""Choosing SevenNet-0's fine-tuning recipe on ethanol, on the 500 K pool only (never on a test file).

For each seed the 150 pool frames (B3LYP/def2-SVP) are put in a seeded random
order (``np.random.default_rng(seed).permutation``, as in the other ethanol
benchmarks): the first N are the training run's frames (``alloop train``'s
default 10 % of them validation, a guard only), frames 100-149 of that order
are the *selection* set the recipe is chosen on. The run is exactly what
``alloop train --model sevennet-0 --method standard`` does (``alloop.training.recipe``,
``train_asteroid``), with the recipe's options. Scores: selection force MAE
(eV/A) and energy MAE (meV/atom); the held-out test files are not read here.

    python benchmarks/sevennet_recipe.py --recipes lr1e-3-300,lr1e-3-600 --seeds 0
    python benchmarks/sevennet_recipe.py --list

Finished runs are cached as JSON in ``--runs`` (default
``benchmarks/runs/sevennet_recipe``) so an interrupted search resumes.

Result (N = 55, seed 0, batch 4, EMA 0.99, energy weight 0.1; selection force MAE
in eV/A): lr 1e-3 x 600 steps 0.034, 3e-3 x 300 0.034, 3e-3 x 600 0.026,
3e-3 x 1200 0.022, 1e-2 x 600 0.023, **1e-2 x 1200 0.020**, 3e-2 x 600 0.026;
Huber instead of MSE 0.023 (3e-3 x 600) and 0.022 (1e-2 x 600); freezing the
embeddings and 2 of the 5 blocks 0.031 (3e-3 x 600). ``alloop train``'s
``alloop.config.training.PRETRAINED_DEFAULTS`` are the best of these: lr 1e-2, 1200 steps of batch 4, MSE.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from lib.common import DATA, cached_json, mean_std, recipe_sizes

ELEMENTS = (1, 6, 8)

BASE: dict[str, Any] = dict(steps=600, batch_size=4, lr=1e-3, energy_weight=0.1, loss="mse", ema=0.99)
RECIPES: dict[str, dict[str, Any]] = {
    "lr1e-3-600": {},
    "lr3e-3-300": dict(lr=3e-3, steps=300),
    "lr3e-3-600": dict(lr=3e-3),
    "lr3e-3-1200": dict(lr=3e-3, steps=1200),
    "lr1e-2-600": dict(lr=1e-2),
    "lr1e-2-1200": dict(lr=1e-2, steps=1200),
    "lr3e-2-600": dict(lr=3e-2),
    "lr3e-3-600-huber": dict(lr=3e-3, loss="huber"),
    "lr1e-2-600-huber": dict(lr=1e-2, loss="huber"),
    "lr3e-3-600-rho0.01": dict(lr=3e-3, energy_weight=0.01),
    "lr3e-3-600-freeze2": dict(lr=3e-3, freeze_blocks=2),
}


def run_one(recipe: str, n: int, seed: int) -> dict[str, Any]:
    """One fine-tuning run of SevenNet-0 on the first ``n`` frames of seed's order, scored on frames 100-149."""
    import ase.io
    import torch

    from alloop.evaluation.metrics import evaluate_model
    from alloop.potentials.registry import build_model
    from alloop.training.asteroid import train_asteroid
    from alloop.training.data import FrameDataset
    from alloop.training.recipe import asteroid_settings, section_from_options

    torch.set_num_threads(1)
    pool = FrameDataset.from_atoms(ase.io.read(DATA / "ethanol_500K_short_pool_b3lyp-svp.extxyz", index=":"),
                                   fidelity="b3lyp-svp")
    order = np.random.default_rng(seed).permutation(len(pool))
    data, selection = pool.subset(order[:n]), pool.subset(order[100:])
    options = {**BASE, **RECIPES[recipe]}
    freeze = options.pop("freeze_blocks", 0)
    settings = asteroid_settings(section_from_options(options, pretrained=True), seed, 1, 300.0, split_seed=seed)

    def factory():
        return build_model("sevennet", ELEMENTS, base="7net-0", freeze_blocks=freeze)

    t0 = time.perf_counter()
    result = train_asteroid("standard", data, model_factory=factory, settings=settings)
    seconds = time.perf_counter() - t0
    m = evaluate_model(result.model, selection)
    stage = result.stages["stage1"]
    return {"recipe": recipe, "n": n, "seed": seed, "seconds": seconds, "steps": stage.steps,
            "seconds_per_step": stage.seconds / max(stage.steps, 1), "val_force_mae": result.metrics["force_mae_eV_per_A"],
            "selection_force_mae": m["force_mae_eV_per_A"],
            "selection_energy_mae_meV_atom": 1000 * m["energy_mae_per_atom_eV"]}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| recipe | N | seeds | steps | s/step | selection F-MAE (eV/A) | selection E-MAE (meV/atom) |",
             "|---|---:|---:|---:|---:|---|---|"]
    for recipe, n in sorted({(r["recipe"], r["n"]) for r in rows}, key=lambda k: (k[1], list(RECIPES).index(k[0]))):
        g = [r for r in rows if r["recipe"] == recipe and r["n"] == n]
        f = np.array([r["selection_force_mae"] for r in g])
        e = np.array([r["selection_energy_mae_meV_atom"] for r in g])
        lines.append(f"| {recipe} | {n} | {len(g)} | {g[0]['steps']} | {np.mean([r['seconds_per_step'] for r in g]):.2f} "
                     f"| {mean_std(f, 4)} | {mean_std(e, 2)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", default="lr1e-3-600")
    ap.add_argument("--n", default="55", help="training frames (validation included), comma-separated, 5..100")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--runs", type=Path, default=Path(__file__).resolve().parent / "runs" / "sevennet_recipe")
    ap.add_argument("--list", action="store_true", help="print the recipes and exit")
    args = ap.parse_args()
    if args.list:
        for name, change in RECIPES.items():
            print(f"{name}: {({**BASE, **change})}")
        return
    recipes = args.recipes.split(",")
    sizes = recipe_sizes(recipes, RECIPES, args.n)
    args.runs.mkdir(parents=True, exist_ok=True)
    rows = []
    todo = [(r, n, int(s)) for n in sizes for s in args.seeds.split(",") for r in recipes]
    for k, (recipe, n, seed) in enumerate(todo, 1):
        row = cached_json(args.runs / f"{recipe}_n{n}_s{seed}.json", partial(run_one, recipe, n, seed))
        rows.append(row)
        print(f"[{k}/{len(todo)}] {recipe} N={n} seed {seed}: selection F-MAE {row['selection_force_mae']:.4f} eV/A, "
              f"E-MAE {row['selection_energy_mae_meV_atom']:.2f} meV/atom ({row['seconds']:.0f} s)", flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
