"""Importance-weighted retraining of the loop's frames (issue 62, item 1's ablation at no label cost).

The loop's expensive labels over-sample what its MD finds new (ethanol: 37 % trans against about 10 % in the 500 K
ensemble), a density mismatch that could explain why it trails random frames of the target ensemble there. This
script asks whether weighting the loss by target density / selection density wins that back, with no new label:
for each finished loop campaign of ``learning_curves.py`` (``--loop-results``: its ``loop-N30-seedS.json`` entries
and their run folders), it

1. reads the campaign's expensive-labelled frames (the automatic test set left out) and two targets: the
   campaign's own MD frames (what a user of the loop has: every frame its replicas recorded at md.temperature_K)
   and the random arm's 500 K pool (the target ensemble's own process, an oracle the loop does not have);
2. describes all of them in the pretrained SevenNet-0's latent features (``lib/descriptors.py``) and finds each
   target's kernel-mean-matching weights of the labelled frames (``lib/importance.py``: mean 1, at most 10,
   ridge 0.3), with their effective sample size, the squared MMD to the target before and after, and the H-O-C-C
   basin shares (ethanol) unweighted, weighted and of the target;
3. trains three models on the same frames with the random arm's command (``alloop train --method standard --model
   <the campaign's preset> --baseline <its baseline> --refit --seed S``): ``retrain`` (equal weights, the paired
   control: it differs from the loop's delivered model by its training history only), ``weighted (MD)`` and
   ``weighted (pool)`` (``--weights``), and scores them on every ``--test`` file like ``learning_curves.py``.

Results: ``benchmarks/results/importance-weights/seedS.json`` (small; resumed: a model trained or scored already is
not again); models in ``runs/importance-weights/`` (not committed). About 35 CPU min per seed (three SevenNet-0
trainings of 30 frames, about 10 min each, and the scoring).

    python benchmarks/importance_weights.py --seeds 0 1 2 3 4
    python benchmarks/importance_weights.py --table          # the table of the committed results only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from lib.common import DATA, EXAMPLES, ROOT
from lib.importance import DEFAULT_BOUND, DEFAULT_RIDGE, kernel_mean_matching, weighted_shares
from lib.importance_table import MODELS, importance_table, load_results, n30_entries, weights_table
from lib.learning_curve_arms import DEFAULT_POOLS, score, sha256

from alloop.io import write_atomic

LOOP_RESULTS = ROOT / "benchmarks" / "results" / "learning-curves" / "universal-quickstart"
RESULTS = ROOT / "benchmarks" / "results" / "importance-weights"
TESTS = [EXAMPLES / "ethanol_500K_eqtest_b3lyp-svp.extxyz", DATA / "ethanol_1000K_eqtest_b3lyp-svp.extxyz",
         *(DATA / f"ethanol_{t}_eq{kind}_b3lyp-svp.extxyz" for t in ("500K", "1000K") for kind in ("verdict", "indep"))]
#: the basins of ethanol's H-O-C-C dihedral
BASINS = ("trans", "gauche+", "gauche-")


def campaign_frames(run_dir: Path) -> tuple[list, list, dict[str, Any]]:
    """The campaign's expensive-labelled frames, its MD frames and its config."""
    from alloop.store import ORIGIN_CODES, CampaignStore, store_path
    from alloop.store.exchange import labelled_frames

    with CampaignStore.open(store_path(run_dir)) as store:
        labelled = labelled_frames(store, store.config["fidelities"]["expensive"]["name"])
        meta = store.frame_meta()
        md = store.get_frames(meta["frame_id"][meta["origin"] == ORIGIN_CODES["md"]])
        return labelled, md, store.config


def basin_labels(frames: list) -> np.ndarray | None:
    """Each frame's basin of the molecule's first asymmetric rotor (ethanol: H-O-C-C); None without one."""
    from alloop.system.conformers import basin_index, dihedrals, find_rotors

    rotor = next((r for r in find_rotors(frames[0]) if not r.symmetric), None)
    if rotor is None:
        return None
    return basin_index(dihedrals(np.array([a.positions for a in frames]), [rotor])[:, 0])


def weights_for(args: argparse.Namespace, labelled: list, targets: dict[str, list]) -> dict[str, Any]:
    """Each target's KMM weights of the labelled frames, with their diagnostics."""
    from lib.descriptors import describe

    x = describe(labelled + [a for frames in targets.values() for a in frames])
    basins = basin_labels(labelled + [a for frames in targets.values() for a in frames])
    out: dict[str, Any] = {}
    start = len(labelled)
    for name, frames in targets.items():
        rows = slice(start, start + len(frames))
        got = kernel_mean_matching(x[:len(labelled)], x[rows], bound=args.bound, ridge=args.ridge)
        entry = {"n_target": len(frames), "weights": got.weights.tolist(), "mmd2_before": got.mmd2_before,
                 "mmd2_after": got.mmd2_after, "effective_sample_size": got.effective_sample_size,
                 "bandwidth": got.bandwidth}
        if basins is not None:
            own = basins[:len(labelled)]
            entry["basins"] = {"names": list(BASINS), "target": weighted_shares(basins[rows], 3),
                               "unweighted": weighted_shares(own, 3), "weighted": weighted_shares(own, 3, got.weights)}
        out[name] = entry
        start += len(frames)
    return out


def train(args: argparse.Namespace, frames_file: Path, model: Path, config: dict[str, Any], seed: int,
          weights_key: str | None) -> float:
    """``alloop train`` as learning_curves.py's random arm trains; its CPU seconds."""
    m, system = config["model"], config["system"]
    cmd = [sys.executable, "-m", "alloop.cli", "train", "--expensive", str(frames_file), "--method", "standard",
           *(["--refit"] if config["training"].get("final_refit") else []), "--model", m["preset"],
           *(["--baseline", m["baseline"], "--charge", str(system.get("charge", 0)), "--spin",
              str(system.get("spin", 0))] if m.get("baseline") else []),
           "--seed", str(seed), "--threads", str(args.threads), "--quiet", "-o", str(model),
           *(["--weights", weights_key] if weights_key else [])]
    print(f"  seed {seed}: training {model.name} ({' '.join(cmd[3:])})", flush=True)
    started = time.process_time()
    before = _children_cpu()
    subprocess.run(cmd, check=True)
    return _children_cpu() - before + time.process_time() - started


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One loop campaign's weights, models and scores (resumed from its result file)."""
    from alloop.io import write_extxyz

    path = args.results / f"seed{seed}.json"
    result: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    entry = json.loads((args.loop_results / f"loop-N30-seed{seed}.json").read_text())
    run_dir = Path(entry["model"])
    run_dir = run_dir if run_dir.is_absolute() else ROOT / run_dir
    folder = args.runs / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    frames_file = folder / "frames.extxyz"
    if "weights" not in result or not frames_file.is_file():
        labelled, md, config = campaign_frames(run_dir)
        from ase.io import read

        pool = [a for p in args.pool for a in read(p, ":")]
        print(f"seed {seed}: {len(labelled)} labelled frames, {len(md)} MD frames, pool {len(pool)}", flush=True)
        weights = weights_for(args, labelled, {"md": md, "pool": pool})
        for name, w in weights.items():
            print(f"  {name}: effective sample size {w['effective_sample_size']:.1f} of {len(labelled)}, MMD^2 "
                  f"{w['mmd2_before']:.4f} -> {w['mmd2_after']:.4f}", flush=True)
            for atoms, value in zip(labelled, w["weights"], strict=True):
                atoms.info[f"importance_{name}"] = value
        write_extxyz(frames_file, labelled)
        result = {"seed": seed, "run": str(run_dir.relative_to(ROOT)) if run_dir.is_relative_to(ROOT) else str(run_dir),
                  "frame_ids": [int(a.info["frame_id"]) for a in labelled], "bound": args.bound, "ridge": args.ridge,
                  "pool": {p.name: sha256(p) for p in args.pool}, "config": config, "weights": weights, "models": {}}
        save(path, result)
    for name, key in MODELS.items():
        model = folder / f"{name}.safetensors"
        got = result["models"].setdefault(name, {})
        if "train_cpu_s" not in got or not model.is_file():
            got.clear()
            got["train_cpu_s"] = train(args, frames_file, model, result["config"], seed, key)
            save(path, result)
        for test in args.test:
            old = got.setdefault("scores", {}).get(test.name)
            if old is None or old["sha256"] != sha256(test):
                got["scores"][test.name] = score(model, test)
                save(path, result)
            s = got["scores"][test.name]
            print(f"  seed {seed} {name:<16} {test.name}: force MAE {s['mean']:.4f}, p95 {s['p95']:.4f}", flush=True)
    return result


def save(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(result, indent=1) + "\n").encode())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--loop-results", type=Path, default=LOOP_RESULTS,
                   help="learning_curves.py's results folder whose loop-N30-seedS.json name the campaigns")
    p.add_argument("--test", type=Path, nargs="+", default=TESTS)
    p.add_argument("--pool", type=Path, nargs="+", default=DEFAULT_POOLS, help="the random arm's pool (a target)")
    p.add_argument("--bound", type=float, default=DEFAULT_BOUND, help="the largest weight (mean 1)")
    p.add_argument("--ridge", type=float, default=DEFAULT_RIDGE, help="KMM's ridge on the kernel's diagonal")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "importance-weights")
    p.add_argument("--table", action="store_true", help="print the table of --results and exit (nothing runs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.table:
        for path in [*args.test, *args.pool]:
            if not path.is_file():
                raise SystemExit(f"{path}: no such file")
        for seed in args.seeds:
            run_seed(args, seed)
    results = load_results(args.results)
    if not results:
        raise SystemExit(f"no results in {args.results}")
    print(weights_table(results))
    print()
    print(importance_table(results, [t.name for t in args.test], n30_entries(args.loop_results, "loop"),
                           n30_entries(args.loop_results, "random")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
