"""The quickstart over seeds: wall time, labels and the held-out accuracy of every model, mean +- std.

Runs ``alloop run campaigns/quickstart.yaml --set seed=S`` for each seed
(one after another, each on its own embedded 2-worker cluster, as a user
would) into ``--runs/seed-S`` and reads the finished stores: wall time,
labels and CPU seconds per fidelity, and the evaluation-set errors of each
model (the quickstart scores every model on the 50 held-out frames of
``benchmarks/data/ethanol_500K_short_test_b3lyp-svp.extxyz``: independent 500 K
AIMD, B3LYP/def2-SVP). A finished run directory is not run again (delete it
to rerun); ``--set`` adds overrides to every run (e.g. ``training.warm_start=false``).

    python benchmarks/quickstart_seeds.py --seeds 0,1,2
    python benchmarks/quickstart_seeds.py --seeds 0 --set training.warm_start=false --runs /tmp/qs-cold
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from lib.campaign_runs import run_campaign
from lib.common import ROOT, mean_std


def summary(run_dir: Path) -> dict:
    """Per-run numbers from the store: the cycles table (labels, CPU s, evaluation errors) and the final reason."""
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    with CampaignStore.open(store_path(run_dir)) as store:
        rows = store.table("cycles")
    last = -1
    return {
        "cycles": [int(c) for c in rows["cycle"]],
        "eval_force": [float(x) for x in rows["eval_force_mae_eV_per_A"]],
        "eval_energy_meV_atom": [1000 * float(x) for x in rows["eval_energy_mae_per_atom_eV"]],
        "labels_cheap": int(rows["labels_cheap"][last]),
        "labels_expensive": int(rows["labels_expensive"][last]),
        "cpu_s": float(rows["cpu_cheap_s"][last] + rows["cpu_expensive_s"][last]),
        "train_s": float(np.sum(rows["train_seconds"])),
        "flag_rate": [float(x) for x in rows["flag_rate"]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--campaign", type=Path, default=ROOT / "campaigns" / "quickstart.yaml")
    ap.add_argument("--runs", type=Path, default=Path("/tmp/alloop-quickstart-seeds"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for seed in seeds:
        run_dir = args.runs / f"seed-{seed}"
        wall = run_campaign(args.campaign, run_dir, seed, args.overrides, "quickstart_seeds.json",
                            run_dir.parent / f"seed-{seed}.log")
        info = summary(run_dir)
        info.update(seed=seed, wall_seconds=wall)
        rows.append(info)
        print(f"seed {seed}: {wall:.0f} s, {info['labels_expensive']} expensive + {info['labels_cheap']} cheap labels "
              f"({info['cpu_s']:.0f} CPU s), evaluation-set force MAE per model "
              f"{', '.join(f'{x:.3f}' for x in info['eval_force'])} eV/A", flush=True)
    print()
    header = " | ".join(f"seed {r['seed']}" for r in rows)
    print(f"| quantity | {header} | mean +- std |")
    print(f"|---|{'---:|' * len(rows)}---|")
    for label, key, digits in (("wall time (s)", "wall_seconds", 0), ("expensive labels", "labels_expensive", 0),
                               ("cheap labels", "labels_cheap", 0), ("label CPU s", "cpu_s", 0),
                               ("training wall s (sum over models)", "train_s", 0)):
        vals = [r[key] for r in rows]
        print(f"| {label} | {' | '.join(f'{v:.{digits}f}' for v in vals)} | {mean_std(vals, digits)} |")
    n_models = min(len(r["eval_force"]) for r in rows)
    for k in range(n_models):
        cycle = rows[0]["cycles"][k]
        name = "bootstrap" if cycle < 0 else f"cycle {cycle}"
        vals = [r["eval_force"][k] for r in rows]
        print(f"| held-out force MAE, {name} model (eV/A) | {' | '.join(f'{v:.3f}' for v in vals)} | {mean_std(vals)} |")
    vals = [r["eval_energy_meV_atom"][n_models - 1] for r in rows]
    print(f"| held-out energy MAE, final model (meV/atom) | {' | '.join(f'{v:.1f}' for v in vals)} | {mean_std(vals, 1)} |")
    print(f"\nruns in {args.runs}; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
