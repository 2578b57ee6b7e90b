"""The ASTEROID paper's ladder at small scale: CCSD(T)/cc-pVDZ expensive, B3LYP/def2-SVP cheap (issue 27, part 5).

Does bias-aware pretraining pay off when the cheap level is much closer to the target than the pretrained model
is? On 500 K equilibrium ethanol, B3LYP/def2-SVP forces are about 0.08 eV/A from CCSD(T)/cc-pVDZ's, SevenNet-0's
about 0.2. The data are ``make_ccsdt_sets.py``'s: CCSD(T) training candidates (frames of the equilibrium pool),
CCSD(T) test frames (of the equilibrium test set, never trained on), and the whole pool's 150 B3LYP labels as the
cheap set (the pool and the test set come from independent GFN2-xTB runs, so no test frame is a cheap frame).

Per ``--models`` entry (a model preset, or ``PRESET+BASELINE`` for a Delta model on a GFN-xTB baseline:
``small+gfn2-xtb`` is the quickstart's EGNN) and seed, with N CCSD(T) training frames (all there are, or
``--expensive``, a random subset per seed), ``alloop train`` gives:

- ``standard``: N CCSD(T) frames;
- ``asteroid, equal cost``: N - k CCSD(T) frames plus the 150 B3LYP frames, k the CCSD(T) labels the B3LYP
  labels' CPU would have bought, to the nearest label (the comparison the paper's claim is about);
- ``standard on B3LYP only``: the 150 B3LYP frames, no CCSD(T) (the cheap surface learned, for scale; its
  energies sit on B3LYP's zero, so only its forces are compared);
- with ``--equal-labels`` also ``asteroid, equal labels``: the same N CCSD(T) frames plus the 150 B3LYP frames
  (what the cheap labels add on top; one more ASTEROID training per model and seed, off by default);
- with ``--no-weights`` also ``asteroid-no-weights, equal cost``: the frames of ``asteroid, equal cost`` trained
  with ``--method asteroid-no-weights`` (stages 2-3 with every B3LYP frame at weight 1, no stage 1: do the weights
  exp(-B/gamma) matter here? One more training per model and seed, off by default; no bias B to show).

All scored against CCSD(T) on the test frames; the first row is B3LYP itself (its labels as a prediction). CPU
s: the labels' own ``cpu_seconds``. Under the table, for each ASTEROID row, the bias B of the 150 B3LYP frames
against stage 1's model (median and range over frames, then over seeds, from the checkpoints): B is meant to
measure the cheap level's error, so a median far above B3LYP's own distance from CCSD(T) says stage 1's model,
not the cheap level, sets the weights. The table starts with the sets' make-up: frames per source trajectory and
per H-O-C-C basin (the test set must cover the equilibrium ensemble, not one run of it). Models are cached in
``--runs`` under names that say what they are (N and the number of CCSD(T) training frames there were), so a
rerun trains only what is new.

    python benchmarks/ccsdt_ladder.py --models small small+gfn2-xtb sevennet-0 --seeds 0 1 2
    python benchmarks/ccsdt_ladder.py --models small --seeds 0 --steps 30      # a smoke run (minutes)
    python benchmarks/ccsdt_ladder.py --models sevennet-0 --seeds 0 1 2 --no-weights --expensive 12
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lib.common import DATA, ROOT, alloop, label_cpu, mean_std, model_args

TRAIN = DATA / "ethanol_500K_ccsdttrain_ccsdt-dz.extxyz"
TEST = DATA / "ethanol_500K_ccsdttest_ccsdt-dz.extxyz"
TEST_CHEAP = DATA / "ethanol_500K_ccsdttest_b3lyp-svp.extxyz"
CHEAP = DATA / "ethanol_500K_eqpool_b3lyp-svp.extxyz"
#: fewer CCSD(T) training frames than this and the table is not worth training for
MIN_TRAIN = 4


def cheap_level_distance() -> tuple[float, float]:
    """(force MAE in eV/A, energy MAE in meV/atom after removing the mean offset) of B3LYP against CCSD(T) on
    the test frames."""
    from ase.io import read

    target, cheap = read(TEST, ":"), read(TEST_CHEAP, ":")
    if len(target) != len(cheap) or any(np.abs(a.positions - b.positions).max() > 1e-6
                                        for a, b in zip(target, cheap, strict=True)):
        raise SystemExit(f"{TEST_CHEAP.name} does not hold {TEST.name}'s frames in its order")
    forces = float(np.mean([np.abs(a.get_forces() - b.get_forces()).mean() for a, b in zip(target, cheap, strict=True)]))
    delta = np.array([(a.get_potential_energy() - b.get_potential_energy()) / len(a)
                      for a, b in zip(target, cheap, strict=True)])
    return forces, float(1000 * np.abs(delta - delta.mean()).mean())


def make_up(train: list, test: list) -> str:
    """The CCSD(T) sets' frames per source trajectory and per H-O-C-C basin, as a markdown table."""
    from alloop.system.conformers import BASINS, find_rotors, frame_basins

    rotors = [r for r in find_rotors(train[0]) if not r.symmetric]
    lines = ["| CCSD(T) set | frames | per trajectory | " + " | ".join(BASINS) + " |",
             "|---|---:|---|" + "---:|" * len(BASINS)]
    for name, frames in (("training", train), ("test", test)):
        runs = Counter(str(atoms.info.get("trajectory", "?")) for atoms in frames)
        codes = frame_basins(np.array([a.positions for a in frames]), rotors)
        shares = " | ".join(f"{np.mean(codes == j):.0%}" for j in range(len(BASINS)))
        lines.append(f"| {name} | {len(frames)} | {', '.join(f'{r} {c}' for r, c in sorted(runs.items()))} | {shares} |")
    return "\n".join(lines)


def bias_summary(checkpoint: Path) -> tuple[float, float, float]:
    """(median, min, max) of the bias B an ASTEROID checkpoint records, eV/A."""
    from alloop.potentials.checkpoint import load_checkpoint

    bias = load_checkpoint(checkpoint)[1]["bias"]
    return bias["median_eV_per_A"], bias["min_eV_per_A"], bias["max_eV_per_A"]


def train_and_score(out: Path, expensive: Path, cheap: Path | None, model: str, seed: int,
                    steps: int | None, method: str = "asteroid") -> dict[str, float]:
    """``alloop train`` (standard without ``cheap``, else ``method``: asteroid or asteroid-no-weights) into ``out``
    once; its errors on the test frames."""
    if not out.is_file():
        options = ["--method", "standard"] if cheap is None else ["--cheap", str(cheap), "--method", method]
        budget = ["--steps", str(steps)] if steps else []
        alloop("train", "--expensive", str(expensive), *options, *model_args(model), "--seed", str(seed), "--quiet",
               *budget, "-o", str(out))
    return json.loads(alloop("evaluate", str(out), str(TEST), "--json"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["small", "small+gfn2-xtb", "sevennet-0"],
                    help="model presets; PRESET+BASELINE for a Delta model (default: small small+gfn2-xtb sevennet-0)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--expensive", type=int, default=None,
                    help="CCSD(T) training frames per seed, drawn at random (default: every one there is)")
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the recipe's)")
    ap.add_argument("--equal-labels", action="store_true",
                    help="also ASTEROID with all N CCSD(T) frames plus the B3LYP ones (one more training each)")
    ap.add_argument("--no-weights", action="store_true",
                    help="also asteroid-no-weights on the equal-cost frames (every B3LYP weight 1; one more training "
                    "each)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "ccsdt-ladder")
    return ap.parse_args(argv)


@dataclass
class Ladder:
    """The labelled sets and the label costs: ``n`` of the ``train`` frames per standard training, ``k`` the
    CCSD(T) labels the ``n_cheap`` B3LYP frames cost (``cheap_cpu`` CPU s; ``per_label`` per CCSD(T) label)."""

    train: list
    n_test: int
    n: int
    per_label: float
    cheap_cpu: float
    n_cheap: int
    k: int


def ladder_inputs(args: argparse.Namespace) -> Ladder:
    """Read the committed sets and check there are enough CCSD(T) frames for the equal-cost comparison."""
    from ase.io import read

    for path in (TRAIN, TEST, TEST_CHEAP, CHEAP):
        if not path.is_file():
            raise SystemExit(f"{path} is missing: make it with python benchmarks/make_ccsdt_sets.py")
    train = read(TRAIN, ":")
    n_test = len(read(TEST, ":"))
    n = len(train) if args.expensive is None else args.expensive
    if not MIN_TRAIN <= n <= len(train):
        raise SystemExit(f"{n} CCSD(T) training frames asked for; {len(train)} labelled "
                         f"(at least {MIN_TRAIN} needed; label more with python benchmarks/make_ccsdt_sets.py)")
    per_label = label_cpu(TRAIN) / len(train)
    cheap_cpu = label_cpu(CHEAP)
    n_cheap = len(read(CHEAP, ":"))
    k = max(1, round(cheap_cpu / per_label))  # the nearest whole number of labels: the CPU column shows both
    if n - k < 1:
        raise SystemExit(f"the cheap labels cost {k} CCSD(T) labels, and there are only {n}: label more frames")
    return Ladder(train, n_test, n, per_label, cheap_cpu, n_cheap, k)


def ladder_runs(args: argparse.Namespace, lad: Ladder, seed: int) -> list[tuple[str, Path, Path | None, int, str]]:
    """The trainings of one seed (name, expensive set, cheap set, CCSD(T) labels, method); writes the seed's random
    CCSD(T) subsets of ``n`` and ``n - k`` frames once."""
    from alloop.io import write_extxyz

    n, k, train = lad.n, lad.k, lad.train
    order = np.random.default_rng(20_000 + seed).permutation(len(train))
    sets = {}
    for size in (n, n - k):
        path = args.runs / f"ccsdt-{size}-of-{len(train)}-s{seed}.extxyz"
        if not path.is_file():
            write_extxyz(path, [train[i] for i in np.sort(order[:size])])
        sets[size] = path
    runs = [("standard", sets[n], None, n, "standard"),
            ("asteroid, equal cost", sets[n - k], CHEAP, n - k, "asteroid")]
    if args.equal_labels:
        runs.insert(1, ("asteroid, equal labels", sets[n], CHEAP, n, "asteroid"))
    if args.no_weights:
        runs.append(("asteroid-no-weights, equal cost", sets[n - k], CHEAP, n - k, "asteroid-no-weights"))
    return runs


def run_seed(args: argparse.Namespace, lad: Ladder, model: str, seed: int, rows: dict, biases: dict) -> None:
    """Train and score every row of one model and seed (and B3LYP-only standard training); adds to ``rows`` and
    ``biases``."""
    for name, expensive, cheap, n_exp, method in ladder_runs(args, lad, seed):
        tag = f"{name.replace(', ', '-').replace(' ', '-')}-{model}-n{n_exp}-of-{len(lad.train)}-s{seed}"
        out = args.runs / f"{tag}.safetensors"
        score = train_and_score(out, expensive, cheap, model, seed, args.steps, method)
        if method == "asteroid":  # asteroid-no-weights has no stage 1, so no bias B
            biases.setdefault((model, name), []).append(bias_summary(out))
        n_ch = lad.n_cheap if cheap is not None else 0
        row = rows.setdefault((model, name), {"force": [], "energy": [], "cpu": [], "labels": [n_exp, n_ch]})
        row["force"].append(score["force_mae_eV_per_A"])
        row["energy"].append(1000 * score["energy_mae_per_atom_eV"])
        row["cpu"].append(lad.per_label * n_exp + (lad.cheap_cpu if cheap is not None else 0.0))
        print(f"  {model} seed {seed} {name}: {score['force_mae_eV_per_A']:.4f} eV/A", file=sys.stderr,
              flush=True)
    out = args.runs / f"b3lyp-only-{model}-s{seed}.safetensors"
    score = train_and_score(out, CHEAP, None, model, seed, args.steps)
    row = rows.setdefault((model, "standard on B3LYP only"), {"force": [], "energy": [], "cpu": [],
                                                               "labels": [0, lad.n_cheap]})
    row["force"].append(score["force_mae_eV_per_A"])
    row["energy"].append(1000 * score["energy_mae_per_atom_eV"])
    row["cpu"].append(lad.cheap_cpu)


def print_tables(args: argparse.Namespace, lad: Ladder, rows: dict, biases: dict, forces: float,
                 energies: float) -> None:
    """The ladder's table (Markdown) and, when ASTEROID ran, the bias B of the B3LYP frames per model."""
    print(f"\nCCSD(T)/cc-pVDZ ladder on 500 K equilibrium ethanol: {lad.n} of {len(lad.train)} CCSD(T) training frames "
          f"({lad.per_label:.0f} CPU s each), {lad.n_cheap} B3LYP/def2-SVP cheap frames ({lad.cheap_cpu:.0f} CPU s: "
          f"{lad.k} CCSD(T) labels); scored against CCSD(T) on {lad.n_test} test frames; seeds {args.seeds}")
    print("| model | training | CCSD(T) / B3LYP labels | CPU s (labels) | force MAE (eV/A) | energy MAE (meV/atom) |")
    print("|---|---|---:|---:|---:|---:|")
    print(f"| B3LYP/def2-SVP itself | - | 0 / 0 | - | {forces:.3f} | {energies:.2f} (offset removed) |")
    for (model, name), row in rows.items():
        energy = mean_std(row["energy"], 2) if row["labels"][0] else "- (B3LYP's zero)"
        print(f"| {model} | {name} | {row['labels'][0]} / {row['labels'][1]} | {mean_std(row['cpu'], 0)} | "
              f"{mean_std(row['force'])} | {energy} |")
    if biases:
        print(f"\nbias B of the {lad.n_cheap} B3LYP frames against stage 1's model (eV/A; B3LYP's own distance from "
              f"CCSD(T) on the test frames: {forces:.3f})")
        print("| model | training | median B per seed | range over frames and seeds |\n|---|---|---|---|")
        for (model, name), values in biases.items():
            medians = " / ".join(f"{v[0]:.3f}" for v in values)
            print(f"| {model} | {name} | {medians} | {min(v[1] for v in values):.3f}-{max(v[2] for v in values):.3f} |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ase.io import read

    lad = ladder_inputs(args)
    args.runs.mkdir(parents=True, exist_ok=True)
    forces, energies = cheap_level_distance()
    rows: dict[tuple[str, str], dict[str, list[float]]] = {}
    biases: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for model in args.models:
        for seed in args.seeds:
            run_seed(args, lad, model, seed, rows, biases)
    print(make_up(lad.train, read(TEST, ":")))
    print_tables(args, lad, rows, biases, forces, energies)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
