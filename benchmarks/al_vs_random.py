"""The active-learning loop against random frames of an equilibrium trajectory, at equal expensive-label counts.

For each seed, the campaign (``--campaign``, default the quickstart) runs as a user would
(``alloop run --set seed=S``, reused when finished) and its final model is scored on the equilibrium test
sets (``--test``: files of ``benchmarks/make_equilibrium_sets.py``; long GFN2-xTB MD from several starts,
B3LYP/def2-SVP labels). The baseline draws, with the same seed, as many frames as the loop bought
expensive labels from the equilibrium *pool* (``--pool``: independent runs of the same kind) and trains
the campaign's model on them with ``alloop train`` (``--method standard``, and ``asteroid`` with the
pool's cheap labels of ``--pool-cheap`` too when given; on the campaign's ``model.baseline`` when it has one),
scored on the same sets.

Cost columns: the loop's labelling CPU seconds (both fidelities, from its store); the baseline's CPU
seconds of its expensive labels plus its share of the pool's MD (the xTB MD CPU per pool frame, from the
pool's summary JSON, times the frames drawn) plus, for ASTEROID, the cheap labels'. Training is not counted
on either side. A campaign with ``training.final_refit`` also gets the row "loop, before the refit": its final
retrain as validated, before the refit on every label (the stored role ``validated``), on the same frames; the
random frames then also get the row "random standard, refit on all" (``alloop train --refit``: no holdout). Errors
per conformer basin come from ``alloop evaluate --json``. A test set of xTB-driven frames
with a ``_gfn2-xtb`` companion file is also scored over the target level's own ensemble ("reweighted" columns):
each frame's force MAE weighted by exp(-(E_B3LYP - E_xTB) / kT) (B3LYP/def2-SVP favours trans ethanol: about
a third of the 500 K ensemble, against 13 % on the xTB surface; see ``conformer_populations.py``). A table (mean +- sample
std over seeds) and ``al_vs_random.png`` (force MAE vs expensive labels) are written to ``--runs``; then the loop
against the random frames trained the same way seed by seed, paired on the test frames (the difference of the
per-frame errors with a bootstrap interval over frames), which says in which seeds either side wins.

    python benchmarks/al_vs_random.py --seeds 0 1 2
    python benchmarks/al_vs_random.py --campaign campaigns/universal-quickstart.yaml --runs runs/al-vs-random-7net
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from lib.campaign_runs import loop_numbers, run_campaign
from lib.common import DATA, ROOT, alloop, data_file, mean_std, per_frame_force_mae, target_ensemble_weights
from lib.plots import figure

DEFAULT_TESTS = [data_file("ethanol_500K_eqtest_b3lyp-svp.extxyz"), DATA / "ethanol_1000K_eqtest_b3lyp-svp.extxyz"]


def evaluate(model: Path, data: Path, version: int | None = None) -> dict:
    """``alloop evaluate MODEL DATA --json [--version N]``."""
    chosen = [] if version is None else ["--version", str(version)]
    return json.loads(alloop("evaluate", str(model), str(data), "--json", *chosen))


def validated_version(run_dir: Path) -> int | None:
    """The checkpoint version of the final retrain before its refit on every label (``training.final_refit``), if
    the run has one."""
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    with CampaignStore.open(store_path(run_dir)) as store:
        found = [int(c["version"]) for c in store.checkpoints() if c.get("role") == "validated"]
    return found[-1] if found else None


def pool_md_cpu_per_frame(pool: Path) -> float:
    """The pool's xTB MD CPU seconds per frame, from ``<molecule>_<T>K_eq_summary.json`` beside it (0 if absent)."""
    prefix = pool.name.split("_eq")[0]
    summary = pool.parent / f"{prefix}_eq_summary.json"
    if not summary.is_file():
        return 0.0
    data = json.loads(summary.read_text())
    return float(data["sets"]["pool"]["md_cpu_seconds"]) / data["settings"]["frames"]


def draw(pool: list, n: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(10_000 + seed).choice(len(pool), size=n, replace=False))


def random_baseline(args: argparse.Namespace, seed: int, n: int, model: str, folder: Path,
                    baseline: str | None = None, refit: bool = False) -> dict[str, dict]:
    """Train on ``n`` random pool frames (standard, and ASTEROID with cheap pool labels), on the campaign's Delta
    ``baseline`` if it has one; with ``refit`` (the campaign's training.final_refit) standard training on every
    frame too (``alloop train --refit``); scores and cost per method."""
    from ase.io import read

    from alloop.io import write_extxyz

    pool = read(args.pool, ":")
    picked = draw(pool, n, seed)
    frames = folder / f"random-{n}.extxyz"
    write_extxyz(frames, [pool[i] for i in picked])
    cost = sum(float(pool[i].info.get("cpu_seconds", 0.0)) for i in picked) + n * pool_md_cpu_per_frame(args.pool)
    runs = {"standard": ["--method", "standard"]}
    if refit:
        runs["standard, refit on all"] = ["--method", "standard", "--refit"]
    if args.pool_cheap:
        cheap = read(args.pool_cheap, ":")
        runs["asteroid"] = ["--method", "asteroid", "--cheap", str(args.pool_cheap)]
        cheap_cost = sum(float(a.info.get("cpu_seconds", 0.0)) for a in cheap)
    delta = ["--baseline", baseline] if baseline else []
    out = {}
    for method, extra in runs.items():
        path = folder / f"random-{n}-{method.replace(', refit on all', '-refit')}.safetensors"
        if not path.is_file():
            subprocess.run([sys.executable, "-m", "alloop.cli", "train", "--expensive", str(frames), *extra,
                            "--model", model, *delta, "--seed", str(seed), "--quiet", "-o", str(path)], check=True)
        out[f"random {method}"] = {"model": path, "labels": n,
                                   "cpu_s": cost + (cheap_cost if method == "asteroid" else 0.0)}
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--campaign", type=Path, default=ROOT / "campaigns" / "quickstart.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "al-vs-random")
    p.add_argument("--test", type=Path, nargs="+", default=DEFAULT_TESTS)
    p.add_argument("--pool", type=Path, default=DATA / "ethanol_500K_eqpool_b3lyp-svp.extxyz")
    p.add_argument("--pool-cheap", type=Path, default=None,
                   help="cheap labels of the same pool frames, for the ASTEROID baseline (e.g. ..._eqpool_hf-sto3g)")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override for every campaign run")
    return p.parse_args(argv)


def ensemble_weights(tests: list[Path]) -> dict[str, np.ndarray]:
    """Test sets of xTB MD frames carried over to the target level's ensemble (see lib.common), by file name."""
    weights = {}
    for test in tests:
        w = target_ensemble_weights(test, float(test.name.split("_")[1].rstrip("K")))
        if w is not None:
            weights[test.name] = w
            print(f"{test.name}: also scored over the target level's ensemble (xTB frames reweighted, "
                  f"{1 / np.sum(w**2):.0f} effective of {w.size})")
    return weights


def seed_entries(args: argparse.Namespace, cfg: Any, model: str, seed: int) -> dict[str, dict[str, Any]]:
    """The models of one seed: the loop's (run or reused), before its refit if any, and the random baselines."""
    run_dir = args.runs / f"loop-seed-{seed}"
    print(f"seed {seed}: campaign {args.campaign.name} -> {run_dir}", flush=True)
    run_campaign(args.campaign, run_dir, seed, args.overrides, "al_vs_random.json", args.runs / "campaigns.log")
    numbers = loop_numbers(run_dir)
    entries = {"loop": {"model": run_dir, "labels": numbers["labels"], "cpu_s": numbers["label_cpu_s"]}}
    validated = validated_version(run_dir)
    if validated is not None:  # training.final_refit: the same campaign's model before the refit, beside it
        entries["loop, before the refit"] = {**entries["loop"], "version": validated}
    entries.update(random_baseline(args, seed, entries["loop"]["labels"], model, args.runs / f"seed-{seed}",
                                   cfg.model.baseline, cfg.training.final_refit))
    return entries


def score_entries(entries: dict[str, dict[str, Any]], tests: list[Path], weights: dict[str, np.ndarray],
                  scores: tuple[dict, dict, dict]) -> None:
    """Score every model of one seed on every test set; adds to ``scores`` (rows, basins, per-frame errors)."""
    rows, basins, per_frame = scores
    for name, entry in entries.items():
        row = rows.setdefault(name, {"labels": [], "cpu_s": [], **{t.name: [] for t in tests}})
        row["labels"].append(entry["labels"])
        row["cpu_s"].append(entry["cpu_s"])
        for test in tests:
            got = evaluate(entry["model"], test, entry.get("version"))
            row[test.name].append(got["force_mae_eV_per_A"])
            errors = per_frame_force_mae(entry["model"], test, entry.get("version"))
            per_frame.setdefault((name, test.name), []).append(errors)
            if test.name in weights:
                row.setdefault(f"{test.name} reweighted", []).append(float(weights[test.name] @ errors))
            for basin, m in got.get("basins", {}).items():
                basins.setdefault(f"{name} | {test.name}", {}).setdefault(basin, []).append(m["force_mae_eV_per_A"])
            print(f"  {name:<18} {test.name}: force MAE {got['force_mae_eV_per_A']:.4f} eV/A", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from alloop.config import load_campaign

    cfg = load_campaign(args.campaign, overrides=args.overrides)
    model = cfg.model.preset or "small"
    tests = [t for t in args.test if t.is_file()]
    if not tests:
        print(f"no test set found among {[str(t) for t in args.test]}: run benchmarks/make_equilibrium_sets.py",
              file=sys.stderr)
        return 1
    args.runs.mkdir(parents=True, exist_ok=True)
    weights = ensemble_weights(tests)
    columns = [c for t in tests for c in ([t.name] + ([f"{t.name} reweighted"] if t.name in weights else []))]
    rows: dict[str, dict[str, list]] = {}
    basins: dict[str, dict[str, list[float]]] = {}
    per_frame: dict[tuple[str, str], list[np.ndarray]] = {}  # (row, test) -> each seed's per-frame force MAE
    for seed in args.seeds:
        score_entries(seed_entries(args, cfg, model, seed), tests, weights, (rows, basins, per_frame))
    delta = f" on a {cfg.model.baseline} baseline" if cfg.model.baseline else ""
    print(f"\n{args.campaign.name}, model {model}{delta}, seeds {args.seeds}: force MAE (eV/A) on equilibrium sets")
    print("| frames chosen by | expensive labels | CPU s (labels + MD) | " + " | ".join(columns) + " |")
    print("|---|---:|---:|" + "---:|" * len(columns))
    for name, row in rows.items():
        print(f"| {name} | {mean_std(row['labels'], 1)} | {mean_std(row['cpu_s'], 0)} | "
              + " | ".join(mean_std(row[c]) for c in columns) + " |")
    print("\nper conformer basin (force MAE, eV/A):")
    for key, per in basins.items():
        print(f"  {key}: " + ", ".join(f"{b} {mean_std(v)}" for b, v in sorted(per.items())))
    twin = "random standard, refit on all" if cfg.training.final_refit else "random standard"
    _paired(per_frame, weights, tests, args.seeds, twin)
    _plot(rows, tests, args.runs / "al_vs_random.png")
    return 0


def _paired(per_frame: dict[tuple[str, str], list[np.ndarray]], weights: dict[str, np.ndarray], tests: list[Path],
            seeds: list[int], twin: str, n_boot: int = 2000) -> None:
    """Loop minus the random frames trained the same way (``twin``), seed by seed on the same test frames: the
    mean difference of per-frame force MAE and a 90 % bootstrap interval over the frames (negative: the loop is
    better). A mean over seeds hides which seeds the loop wins; pairing on the frames removes their spread."""
    print(f"\nloop minus {twin}, per seed (force MAE, eV/A; [90 % bootstrap interval over the test frames]; "
          "negative: the loop is better):")
    print("| test set | " + " | ".join(f"seed {s}" for s in seeds) + " |\n|---|" + "---:|" * len(seeds))
    rng = np.random.default_rng(0)
    for test in tests:
        for weighted in ([False, True] if test.name in weights else [False]):
            w = weights[test.name] if weighted else np.full(len(per_frame[("loop", test.name)][0]), 1.0)
            cells = []
            for loop, other in zip(per_frame[("loop", test.name)], per_frame[(twin, test.name)], strict=True):
                diff = loop - other
                draws = rng.integers(0, diff.size, size=(n_boot, diff.size))
                boot = (w[draws] * diff[draws]).sum(1) / w[draws].sum(1)
                low, high = np.percentile(boot, [5, 95])
                cells.append(f"{(w @ diff) / w.sum():+.4f} [{low:+.4f}, {high:+.4f}]")
            print(f"| {test.name}{' reweighted' if weighted else ''} | " + " | ".join(cells) + " |")


def _plot(rows: dict, tests: list[Path], path: Path) -> None:
    with figure(path, 1, 2, (10, 4)) as grid:
        axes = grid[0]
        for name, row in rows.items():
            for test in tests:
                label = f"{name} ({test.name.split('_')[1]})"
                axes[0].errorbar(np.mean(row["labels"]), np.mean(row[test.name]), yerr=np.std(row[test.name]),
                                 fmt="o", label=label)
                axes[1].errorbar(np.mean(row["cpu_s"]), np.mean(row[test.name]), yerr=np.std(row[test.name]),
                                 fmt="o")
        axes[0].set_xlabel("expensive labels")
        axes[1].set_xlabel("CPU s (labels + MD)")
        for ax in axes:
            ax.set_ylabel("force MAE (eV/A)")
        axes[0].legend(fontsize=7)


if __name__ == "__main__":
    sys.exit(main())
