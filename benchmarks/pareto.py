"""Issue 62's claims, read from learning-curve result files: every arm against random frames, paired by seed.

Reads the entries ``<arm>-N<n>-seed<s>.json`` that ``learning_curves.py`` writes in one or more ``--results``
folders (a folder's ``loop`` entries get the folder's name as their arm, so loop settings stand side by side:
``loop``, ``loop[exploration0.5]``; ``random``, ``fps`` and ``hot`` keep their names) and prints, per test set:

1. **non-inferiority** on the target ensemble (``--target`` test set): per N, the paired per-seed difference of
   the mean per-frame force error, arm - random, relative to random's mean over the seeds; its mean and the upper
   end of the two-sided 90 % interval (Student t over seeds). Claim 1 holds at N when that upper end is <= +2 %;
2. **superiority** where the sampler does not reach (every other test set): the relative mean difference (claim:
   <= -10 %), and the tails: the arm's p95 at N against random's p95 at 2N, paired by seed (claim: no worse);
3. a Pareto plot (x: target-set mean / random's, y: each shifted set's mean / random's; one point per arm and N,
   seed means) in ``--plot`` and all numbers in ``--out`` (JSON).

A difference smaller than the seed-to-seed spread is a tie: the interval says so.

    python benchmarks/pareto.py --results benchmarks/results/learning-curves/universal-quickstart \
        --target ethanol_500K_eqverdict_b3lyp-svp.extxyz
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from lib.plots import figure

Entries = dict[tuple[str, int, int], dict[str, Any]]  # (arm, N, seed) -> entry


def load_entries(folders: list[Path]) -> Entries:
    """Every result file of the folders, keyed by (arm, N, seed); a folder's loop is named after the folder when
    more than one folder holds a loop."""
    loops = [f for f in folders if any(f.glob("loop-N*-seed*.json"))]
    entries: Entries = {}
    for folder in folders:
        for path in sorted(folder.glob("*-N*-seed*.json")):
            entry = json.loads(path.read_text())
            arm = entry["arm"]
            if arm == "loop" and len(loops) > 1:
                arm = f"loop[{folder.name}]"
            entries[(arm, int(entry["n"]), int(entry["seed"]))] = entry
    return entries


def t90(k: int) -> float:
    """The two-sided 90 % Student t quantile for k - 1 degrees of freedom (k seeds)."""
    from scipy import stats

    return float(stats.t.ppf(0.95, k - 1)) if k > 1 else math.inf


def paired(entries: Entries, arm: str, n: int, base_n: int, test: str, metric: str) -> dict[str, Any] | None:
    """Arm at N against random at ``base_n`` on one test set, paired by seed, relative to random's seed mean."""
    seeds = sorted(s for (a, m, s) in entries if a == arm and m == n and ("random", base_n, s) in entries)
    seeds = [s for s in seeds if test in entries[(arm, n, s)].get("scores", {})
             and test in entries[("random", base_n, s)].get("scores", {})]
    if not seeds:
        return None
    ours = np.array([entries[(arm, n, s)]["scores"][test][metric] for s in seeds])
    theirs = np.array([entries[("random", base_n, s)]["scores"][test][metric] for s in seeds])
    rel = (ours - theirs) / theirs.mean()
    half = t90(len(seeds)) * rel.std(ddof=1) / math.sqrt(len(seeds)) if len(seeds) > 1 else math.inf
    return {"seeds": seeds, "arm": float(ours.mean()), "random": float(theirs.mean()), "rel_mean": float(rel.mean()),
            "rel_lo90": float(rel.mean() - half), "rel_hi90": float(rel.mean() + half)}


def verdicts(entries: Entries, tests: list[str], targets: list[str]) -> dict[str, Any]:
    """Claims 1 and 2 for every arm and N found (random excluded)."""
    arms = sorted({a for (a, _, _) in entries if a != "random"})
    ns = sorted({n for (_, n, _) in entries})
    out: dict[str, Any] = defaultdict(dict)
    for arm in arms:
        for n in ns:
            row: dict[str, Any] = {}
            for test in tests:
                mean = paired(entries, arm, n, n, test, "mean")
                tail = paired(entries, arm, n, 2 * n, test, "p95")
                if mean is None:
                    continue
                row[test] = {"mean": mean, "p95_vs_random_2N": tail}
                if test in targets:
                    row[test]["claim1_noninferior"] = mean["rel_hi90"] <= 0.02
                else:
                    row[test]["claim2_superior"] = mean["rel_mean"] <= -0.10
                    row[test]["claim2_tails"] = None if tail is None else tail["rel_mean"] <= 0.0
            if row:
                out[arm][str(n)] = row
    return dict(out)


def fmt(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "-"
    return f"{100 * cell['rel_mean']:+.1f} % [{100 * cell['rel_lo90']:+.1f}, {100 * cell['rel_hi90']:+.1f}]"


def print_tables(result: dict[str, Any], tests: list[str], targets: list[str]) -> None:
    for test in tests:
        role = "target ensemble: claim 1 (upper 90 % end <= +2 %)" if test in targets else \
            "shifted set: claim 2 (mean <= -10 %; p95 at N no worse than random's at 2N)"
        print(f"\n{test} ({role})\n")
        print("| arm | N | seeds | arm mean | random mean | (arm - random) / random, 90 % CI | p95 vs random's at 2N |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for arm, by_n in result.items():
            for n, row in by_n.items():
                if test in row:
                    m = row[test]["mean"]
                    print(f"| {arm} | {n} | {len(m['seeds'])} | {m['arm']:.4f} | {m['random']:.4f} | {fmt(m)} | "
                          f"{fmt(row[test]['p95_vs_random_2N'])} |")


def plot(result: dict[str, Any], tests: list[str], targets: list[str], path: Path) -> None:
    target = targets[0]
    shifted = [t for t in tests if t not in targets]
    with figure(path, 1, max(1, len(shifted)), (4.8 * max(1, len(shifted)), 4.2)) as axes:
        for ax, test in zip(axes[0], shifted, strict=False):
            for arm, by_n in result.items():
                pts = [(1 + row[target]["mean"]["rel_mean"], 1 + row[test]["mean"]["rel_mean"], n)
                       for n, row in by_n.items() if target in row and test in row]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=arm)
                    for x, y, n in pts:
                        ax.annotate(n, (x, y), fontsize=7)
            ax.axvline(1.02, ls=":", c="grey")
            ax.axhline(0.90, ls=":", c="grey")
            ax.set_xlabel(f"{target.removesuffix('.extxyz')}: mean / random's")
            ax.set_ylabel(f"{test.removesuffix('.extxyz')}: mean / random's")
            ax.legend(fontsize=7)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, nargs="+", required=True, help="learning_curves.py --results folders")
    p.add_argument("--target", nargs="+", required=True, help="the target-ensemble test files' names (claim 1; "
                   "the first is the Pareto plot's x axis); the other test sets are the shifted ones (claim 2)")
    p.add_argument("--tests", nargs="+", default=None, help="test file names (default: every one scored)")
    p.add_argument("--out", type=Path, default=None, help="result JSON (default: beside the first folder)")
    p.add_argument("--plot", type=Path, default=None, help="Pareto plot (default: beside --out)")
    args = p.parse_args(argv)
    missing = [str(f) for f in args.results if not f.is_dir()]
    if missing:
        p.error(f"no such results folder: {missing}")
    entries = load_entries(args.results)
    if not any(a == "random" for (a, _, _) in entries):
        p.error("no random entries in the folders: nothing to compare against")
    scored = sorted({t for e in entries.values() for t in e.get("scores", {})})
    tests = args.tests or scored
    if not set(args.target) <= set(tests):
        p.error(f"--target {args.target} are not all among the scored test sets: {scored}")
    tests = [*args.target, *[t for t in tests if t not in args.target]]
    result = verdicts(entries, tests, args.target)
    print_tables(result, tests, args.target)
    out = args.out or args.results[0].parent / f"{args.results[0].name}-claims.json"
    out.write_text(json.dumps({"targets": args.target, "tests": tests, "arms": result}, indent=1))
    plot(result, tests, args.target, args.plot or out.with_suffix(".png"))
    print(f"result: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
