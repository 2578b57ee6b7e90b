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

from lib.al_claims import GAIN_PCT, MARGIN_PCT, t_interval, tail_check
from lib.learning_curves_tables import arm_entries, paired_differences, relative_difference
from lib.learning_curves_tables import load_entries as folder_entries
from lib.plots import figure

Entries = dict[tuple[str, int, int], dict[str, Any]]  # (arm, N, seed) -> entry


def load_entries(folders: list[Path]) -> Entries:
    """Every result file of the folders, keyed by (arm, N, seed); a folder's loop is named after the folder when
    more than one folder holds a loop."""
    loops = [f for f in folders if any(f.glob("loop-N*-seed*.json"))]
    entries: Entries = {}
    for folder in folders:
        names = {"loop": f"loop[{folder.name}]"} if len(loops) > 1 else None
        entries.update(folder_entries(folder, names))
    return entries


def paired(entries: Entries, arm: str, n: int, test: str) -> dict[str, Any] | None:
    """Arm against random at N on one test set, paired by seed: the per-seed relative difference of the mean
    per-frame force error (%), its mean and two-sided 90 % interval (:func:`lib.al_claims.t_interval`)."""
    seeds = sorted({s for (_, _, s) in entries})
    ours, random = arm_entries(entries, arm), arm_entries(entries, "random")
    diffs = paired_differences(ours, random, test, n, seeds, relative_difference)
    if not diffs:
        return None
    mean, low, high = t_interval(diffs.values())
    return {"seeds": sorted(diffs), "rel_mean_pct": mean, "rel_lo90_pct": _number(low), "rel_hi90_pct": _number(high)}


def _number(value: float) -> float | None:
    """None for NaN (no entry): the result file is strict JSON."""
    return None if math.isnan(value) else value


def verdicts(entries: Entries, tests: list[str], targets: list[str]) -> dict[str, Any]:
    """Claims 1 and 2 for every arm and N found (random excluded)."""
    arms = sorted({a for (a, _, _) in entries if a != "random"})
    ns = sorted({n for (_, n, _) in entries})
    seeds = sorted({s for (_, _, s) in entries})
    out: dict[str, Any] = defaultdict(dict)
    for arm in arms:
        for n in ns:
            row: dict[str, Any] = {}
            for test in tests:
                mean = paired(entries, arm, n, test)
                if mean is None:
                    continue
                p95, random_p95_2n, k, k_random = tail_check(arm_entries(entries, arm),
                                                             arm_entries(entries, "random"), test, n, seeds)
                row[test] = {"mean": mean, "p95": _number(p95), "random_p95_2N": _number(random_p95_2n)}
                if test in targets:
                    high = mean["rel_hi90_pct"]
                    row[test]["claim1_noninferior"] = None if high is None else bool(high <= MARGIN_PCT)
                else:
                    row[test]["claim2_superior"] = bool(mean["rel_mean_pct"] <= -GAIN_PCT)
                    row[test]["claim2_tails"] = None if not (k and k_random) else bool(p95 <= random_p95_2n)
            if row:
                out[arm][str(n)] = row
    return dict(out)


def fmt(cell: dict[str, Any]) -> str:
    """``mean [low, high]`` of a :func:`paired` cell (%; one seed has no interval)."""
    if cell["rel_lo90_pct"] is None:
        return f"{cell['rel_mean_pct']:+.1f} % (one seed)"
    return f"{cell['rel_mean_pct']:+.1f} % [{cell['rel_lo90_pct']:+.1f}, {cell['rel_hi90_pct']:+.1f}]"


def print_tables(result: dict[str, Any], tests: list[str], targets: list[str]) -> None:
    for test in tests:
        role = (f"target ensemble: claim 1 (upper 90 % end <= +{MARGIN_PCT:g} %)" if test in targets else
                f"shifted set: claim 2 (mean <= -{GAIN_PCT:g} %; p95 at N no worse than random's at 2N)")
        print(f"\n{test} ({role})\n")
        print("| arm | N | seeds | (arm - random) / random, 90 % CI | arm p95 | random p95 at 2N |")
        print("|---|---:|---:|---:|---:|---:|")
        for arm, by_n in result.items():
            for n, row in by_n.items():
                if test in row:
                    c = row[test]
                    p95s = ["-" if c[k] is None else f"{c[k]:.4f}" for k in ("p95", "random_p95_2N")]
                    print(f"| {arm} | {n} | {len(c['mean']['seeds'])} | {fmt(c['mean'])} | {p95s[0]} | {p95s[1]} |")


def plot(result: dict[str, Any], tests: list[str], targets: list[str], path: Path) -> None:
    target = targets[0]
    shifted = [t for t in tests if t not in targets]
    with figure(path, 1, max(1, len(shifted)), (4.8 * max(1, len(shifted)), 4.2)) as axes:
        for ax, test in zip(axes[0], shifted, strict=False):
            for arm, by_n in result.items():
                pts = [(1 + row[target]["mean"]["rel_mean_pct"] / 100, 1 + row[test]["mean"]["rel_mean_pct"] / 100, n)
                       for n, row in by_n.items() if target in row and test in row]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=arm)
                    for x, y, n in pts:
                        ax.annotate(n, (x, y), fontsize=7)
            ax.axvline(1 + MARGIN_PCT / 100, ls=":", c="grey")
            ax.axhline(1 - GAIN_PCT / 100, ls=":", c="grey")
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
    out.write_text(json.dumps({"targets": args.target, "tests": tests, "arms": result}, indent=1, allow_nan=False))
    plot(result, tests, args.target, args.plot or out.with_suffix(".png"))
    print(f"result: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
