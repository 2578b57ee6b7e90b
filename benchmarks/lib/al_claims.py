"""The active-learning claim (issue 62) checked on learning-curve result files: the loop against random frames,
paired by seed on the same test frames.

- **Non-inferior on the target ensemble** (claim 1): per seed, the relative difference of the mean per-frame force
  MAE, ``100 (loop - random) / random`` %, on each target set; the claim holds at N when the upper end of the
  two-sided 90 % Student-t interval of the mean over seeds is at most ``margin_pct`` (+2 %).
- **Superior where the sampler does not reach** (claim 2): the same relative difference on each shifted set; the
  claim holds at N when the mean is at most ``-gain_pct`` (-10 %); and in the tails, the loop's p95 at N (mean over
  seeds) is no worse than random's at 2N.

A row with fewer than ``min_seeds`` paired seeds is printed as such and decides nothing: one seed has no interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from lib.learning_curves_tables import arm_entries, paired_differences, relative_difference

#: two-sided 90 % interval: the 95th percentile of Student's t
CONFIDENCE = 0.90
#: the owners' claim (issue 62): non-inferior within +2 % on the target ensemble, superior by 10 % where shifted
MARGIN_PCT = 2.0
GAIN_PCT = 10.0


def t_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the two-sided Student-t interval of the mean; NaN bounds for fewer than two values."""
    from scipy.stats import t

    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if v.size < 2:
        return mean, math.nan, math.nan
    half = float(t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, mean - half, mean + half


def _verdict(n_seeds: int, min_seeds: int, holds: bool) -> str:
    if n_seeds < min_seeds:
        return f"undecided ({n_seeds} of {min_seeds} seeds)"
    return "holds" if holds else "misses"


def tail_check(loop: dict[tuple[int, int], dict], random: dict[tuple[int, int], dict], test: str, n: int,
               seeds: Iterable[int]) -> tuple[float, float, int, int]:
    """(loop's mean p95 at N, random's mean p95 at 2N, their numbers of seeds) on ``test``."""
    def p95s(entries: dict[tuple[int, int], dict], size: int) -> list[float]:
        return [entries[(size, s)]["scores"][test]["p95"] for s in seeds
                if test in entries.get((size, s), {}).get("scores", {})]

    ours, theirs = p95s(loop, n), p95s(random, 2 * n)
    return (float(np.mean(ours)) if ours else math.nan, float(np.mean(theirs)) if theirs else math.nan,
            len(ours), len(theirs))


def claim_lines(entries: dict[tuple[str, int, int], dict], spec: dict[str, Any], ns: list[int],
                seeds: list[int]) -> list[str]:
    """The claims table: one row per claim, test set and N (``spec``: ``arm``, ``reference``, ``target`` and
    ``shifted`` test file -> label, ``margin_pct``, ``gain_pct``, ``min_seeds``)."""
    loop, random = arm_entries(entries, spec["arm"]), arm_entries(entries, spec["reference"])
    min_seeds = int(spec.get("min_seeds", 5))
    lines = ["| claim | test set | N | seeds | loop vs random, mean | 90 % interval | rule | verdict |",
             "|---|---|---:|---:|---:|---|---|---|"]
    groups = (("1: non-inferior", spec["target"], f"upper end <= +{spec['margin_pct']:g} %"),
              ("2: superior", spec["shifted"], f"mean <= -{spec['gain_pct']:g} %"))
    for claim, tests, rule in groups:
        for test, label in tests.items():
            for n in ns:
                diffs = paired_differences(loop, random, test, n, seeds, relative_difference)
                if not diffs:
                    continue
                mean, low, high = t_interval(diffs.values())
                holds = high <= spec["margin_pct"] if claim.startswith("1") else mean <= -spec["gain_pct"]
                interval = "-" if math.isnan(low) else f"{low:+.1f} to {high:+.1f} %"
                lines.append(f"| {claim} | {label} | {n} | {len(diffs)} | {mean:+.1f} % | {interval} | {rule} | "
                             f"{_verdict(len(diffs), min_seeds, bool(holds))} |")
    for test, label in spec["shifted"].items():
        for n in ns:
            ours, theirs, n_ours, n_theirs = tail_check(loop, random, test, n, seeds)
            if n_ours and n_theirs:
                lines.append(f"| 2: tails | {label} | {n} | {n_ours} / {n_theirs} | p95 {ours:.4f} eV/A | random's "
                             f"at {2 * n}: {theirs:.4f} eV/A | loop at N <= random at 2N | "
                             f"{_verdict(min(n_ours, n_theirs), min_seeds, ours <= theirs)} |")
    return lines
