"""Replay against forgetting, outside a campaign: fine-tune SevenNet-0 on a few ethanol B3LYP frames, with and without
replay.

Each run is ``alloop train --method standard --model sevennet-0`` on N frames
drawn (by seed) from the 500 K B3LYP pool, with the universal quickstart's
recipe (300 steps of batch 4, peak lr 1e-2), and ``--replay-fraction F`` for
each F of ``--fractions`` (0: no replay). Printed per fraction, mean +- sample std over
the seeds: force MAE on the held-out 500 K and 1000 K B3LYP frames, forgetting
(force MAE against the original SevenNet-0 on the fixed set of rattled outside
molecules, :mod:`alloop.system.outside`), the force MAE on those molecules against
their B3LYP/def2-SVP labels (``benchmarks/make_outside_labels.py``) and how
many replay frames the run drew.

    python benchmarks/replay_offline.py --seeds 0,1,2 --fractions 0,0.25

About 2.5 min per run on one core. Checkpoints and results are cached in
``--runs`` (default /tmp/alloop-replay-offline).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from lib.common import DATA
from lib.outside_labels import outside_force_mae

POOL = DATA / "ethanol_500K_short_pool_b3lyp-svp.extxyz"
TESTS = {"500K": DATA / "ethanol_500K_short_test_b3lyp-svp.extxyz",
         "1000K": DATA / "ethanol_1000K_short_test_b3lyp-svp.extxyz"}


def run_one(fraction: float, seed: int, n: int, steps: int, lr: float, runs: Path) -> dict:
    """Train one model (cached) and score it."""
    import ase.io
    import torch

    from alloop.cli import main as alloop_main
    from alloop.evaluation.metrics import evaluate_model
    from alloop.potentials.checkpoint import load_checkpoint
    from alloop.potentials.registry import build_model
    from alloop.presets import load_preset
    from alloop.system.outside import forgetting_structures, outside_molecules
    from alloop.training.data import FrameDataset
    from alloop.training.forgetting import forgetting_scores
    from alloop.training.metrics import pseudo_labelled
    from alloop.training.replay import replay_per_batch

    torch.set_num_threads(1)
    frames = ase.io.read(POOL, index=":")
    picked = np.random.default_rng(seed).choice(len(frames), n, replace=False)
    train_file = runs / f"train_n{n}_s{seed}.extxyz"
    ase.io.write(train_file, [frames[i] for i in picked])
    checkpoint = runs / f"f{fraction:g}_n{n}_s{seed}_steps{steps}_lr{lr:g}.pt"
    started = time.perf_counter()
    args = ["train", "--expensive", str(train_file), "--method", "standard", "--model", "sevennet-0",
            "--steps", str(steps), "--batch-size", "4", "--lr", str(lr), "--seed", str(seed), "--threads", "1",
            "--quiet", "-o", str(checkpoint)]
    if fraction > 0:
        args += ["--replay-fraction", str(fraction)]
    alloop_main(args)
    seconds = time.perf_counter() - started
    model, _ = load_checkpoint(checkpoint)
    preset = load_preset("models", "sevennet-0")
    original = build_model(preset.pop("architecture"), model.elements, seed=0, **preset)
    ethanol = tuple(sorted(int(z) for z in frames[0].numbers))
    reference = pseudo_labelled(original, forgetting_structures(outside_molecules(model.elements, exclude=[ethanol])))
    row = {"fraction": fraction, "seed": seed, "n": n, "seconds": seconds,
           "forgetting_force": forgetting_scores(model, reference).force_mae_eV_per_A}
    for key, path in TESTS.items():
        row[f"test{key}_force"] = evaluate_model(model, FrameDataset.from_atoms(ase.io.read(path, index=":")))[
            "force_mae_eV_per_A"]
    row["replay_frames_drawn"] = steps * replay_per_batch(fraction, 4) if fraction > 0 else 0
    return row


def table(rows: list[dict]) -> str:
    def cell(values: list[float]) -> str:
        return f"{np.mean(values):.3f} +- {np.std(values, ddof=1 if len(values) > 1 else 0):.3f}"

    lines = ["| replay fraction | seeds | force MAE 500 K (eV/A) | force MAE 1000 K (eV/A) | forgetting: force MAE vs "
             "SevenNet-0 on outside molecules (eV/A) | outside molecules vs B3LYP (eV/A) | replay frames drawn per run |",
             "|---:|---:|---|---|---|---|---:|"]
    for fraction in sorted({r["fraction"] for r in rows}):
        group = [r for r in rows if r["fraction"] == fraction]
        lines.append(f"| {fraction:g} | {len(group)} | {cell([r['test500K_force'] for r in group])} | "
                     f"{cell([r['test1000K_force'] for r in group])} | {cell([r['forgetting_force'] for r in group])} | "
                     f"{cell([r['outside_b3lyp_force'] for r in group if r.get('outside_b3lyp_force') is not None])} | "
                     f"{group[0]['replay_frames_drawn']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--fractions", default="0,0.25")
    parser.add_argument("--n", type=int, default=12, help="training frames (default 12, the bootstrap's)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--runs", type=Path, default=Path("/tmp/alloop-replay-offline"))
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    rows = []
    todo = [(float(f), int(s)) for f in args.fractions.split(",") for s in args.seeds.split(",")]
    for k, (fraction, seed) in enumerate(todo, 1):
        path = args.runs / f"f{fraction:g}_n{args.n}_s{seed}_steps{args.steps}_lr{args.lr:g}.json"
        if path.is_file():
            row = json.loads(path.read_text())
        else:
            row = run_one(fraction, seed, args.n, args.steps, args.lr, args.runs)
            path.write_text(json.dumps(row))
        if row.get("outside_b3lyp_force") is None:  # cheap: added to cached rows once the labels exist
            from alloop.potentials.checkpoint import load_checkpoint

            checkpoint = args.runs / f"f{fraction:g}_n{args.n}_s{seed}_steps{args.steps}_lr{args.lr:g}.pt"
            row["outside_b3lyp_force"] = outside_force_mae(load_checkpoint(checkpoint)[0])
            path.write_text(json.dumps(row))
        rows.append(row)
        print(f"[{k}/{len(todo)}] replay {fraction:g} seed {seed}: test 500 K {row['test500K_force']:.3f}, "
              f"1000 K {row['test1000K_force']:.3f}, forgetting {row['forgetting_force']:.3f} eV/A "
              f"({row['seconds']:.0f} s)", flush=True)
    print()
    print(table(rows))
    from alloop.potentials.registry import build_model
    from alloop.presets import load_preset

    preset = load_preset("models", "sevennet-0")
    original = outside_force_mae(build_model(preset.pop("architecture"), [1, 6, 8], seed=0, **preset))
    if original is not None:
        print(f"\nthe original SevenNet-0 on the outside molecules vs B3LYP/def2-SVP: {original:.3f} eV/A")


if __name__ == "__main__":
    main()
