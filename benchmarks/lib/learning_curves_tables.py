"""The tables of the learning curves (``learning_curves.py``): per test set, each arm's force-error summaries per
number of labels (mean +- std over seeds), and paired per-seed differences between two arms on the same frames.

An entry is one (arm, N, seed) result file of ``learning_curves.py`` (its ``scores`` per test file name: the
per-frame force MAE and its ``mean``, ``p95``, ``max``, ``top_decile``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from lib.common import ROOT, mean_std

METRICS = ("mean", "p95", "max", "top_decile")
#: the header of a metric table: one row per arm and N
METRIC_HEADER = ["| arm | N | seeds | expensive labels | label CPU s | MAE | p95 | max | top decile |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]


def load_entries(folder: Path, arm_names: dict[str, str] | None = None) -> dict[tuple[str, int, int], dict]:
    """The result files ``ARM-NN-seedS.json`` of ``folder`` keyed by (arm, N, seed); ``arm_names`` renames arms."""
    entries = {}
    for path in sorted(folder.glob("*-N*-seed*.json")):
        entry = json.loads(path.read_text())
        arm = (arm_names or {}).get(entry["arm"], entry["arm"])
        entries[(arm, int(entry["n"]), int(entry["seed"]))] = entry
    return entries


def metric_rows(entries: dict[tuple[str, int, int], dict], test: str, arms: Iterable[str], ns: Iterable[int],
                seeds: Iterable[int]) -> list[str]:
    """Rows of one test file's table (:data:`METRIC_HEADER`): per arm and N, mean +- std over the seeds found."""
    rows = []
    for arm in arms:
        for n in ns:
            got = [entries[(arm, n, s)] for s in seeds if (arm, n, s) in entries]
            if not got:
                continue
            cells = [mean_std([e["scores"][test][m] for e in got], 4) for m in METRICS]
            rows.append(f"| {arm} | {n} | {len(got)} | {mean_std([e['labels'] for e in got], 1)} | "
                        f"{mean_std([e['label_cpu_s'] for e in got], 0)} | " + " | ".join(cells) + " |")
    return rows


def arm_entries(entries: dict[tuple[str, int, int], dict], arm: str) -> dict[tuple[int, int], dict]:
    """The entries of one arm keyed by (N, seed)."""
    return {(n, seed): e for (a, n, seed), e in entries.items() if a == arm}


def absolute_difference(ours: list[float], theirs: list[float]) -> float:
    """The mean per-frame force MAE difference ours - theirs (eV/A)."""
    return float(np.mean(np.subtract(ours, theirs)))


def relative_difference(ours: list[float], theirs: list[float]) -> float:
    """100 (ours - theirs) / theirs of the mean per-frame force MAE (%)."""
    return 100.0 * (float(np.mean(ours)) - float(np.mean(theirs))) / float(np.mean(theirs))


def paired_differences(ours: dict[tuple[int, int], dict], theirs: dict[tuple[int, int], dict], test: str, n: int,
                       seeds: Iterable[int],
                       difference: Callable[[list[float], list[float]], float] = absolute_difference,
                       ) -> dict[int, float]:
    """Per seed with both entries scored on the same ``test`` frames: ``difference`` of their per-frame force MAEs
    (by default the mean difference ours - theirs)."""
    diffs = {}
    for seed in seeds:
        a, b = (x.get((n, seed), {}).get("scores", {}).get(test) for x in (ours, theirs))
        if a is not None and b is not None and a["sha256"] == b["sha256"]:
            diffs[seed] = difference(a["per_frame"], b["per_frame"])
    return diffs


def paired_row(label: str, diffs: dict[int, float], seeds: list[int]) -> str:
    """``| label | seed cells | mean +- std |`` of :func:`paired_differences`."""
    return (f"| {label} | " + " | ".join(f"{diffs[s]:+.4f}" if s in diffs else "-" for s in seeds)
            + f" | {mean_std(diffs.values(), 4, sign='+')} |")


def paired_lines(ours: dict[tuple[int, int], dict], theirs: dict[tuple[int, int], dict], tests: list[str],
                 ns: list[int], seeds: list[int]) -> list[str]:
    """Per test file and N: the paired differences per seed and their mean +- std (a Markdown table)."""
    lines = ["| test set | N | " + " | ".join(f"seed {s}" for s in seeds) + " | mean +- std |",
             "|---|---:|" + "---:|" * (len(seeds) + 1)]
    for test in tests:
        for n in ns:
            diffs = paired_differences(ours, theirs, test, n, seeds)
            if diffs:
                lines.append(paired_row(f"{test} | {n}", diffs, seeds))
    return lines


def md_rows(entries: dict[tuple[str, int, int], dict], arms: Iterable[str], ns: Iterable[int], seeds: list[int],
            md_temperatures: list[float]) -> list[str]:
    """MD robustness per arm and N: replicas that ran the whole time and the mean ps to the first guard stop."""
    rows = []
    for arm in arms:
        for n in ns:
            got = [entries[(arm, n, s)].get("md", {}) for s in seeds if (arm, n, s) in entries]
            cells = []
            for temperature in md_temperatures:
                runs = [g[f"{temperature:g}K"] for g in got if f"{temperature:g}K" in g]
                if not runs:
                    cells.append("-")
                    continue
                stops = np.concatenate([np.asarray(r["stops_fs"], dtype=float) / 1000 for r in runs])
                lengths = np.concatenate([np.full(len(r["stops_fs"]), r["ps"]) for r in runs])
                ran = np.isnan(stops)
                cells.append(f"{int(ran.sum())}/{len(stops)}, {np.where(ran, lengths, stops).mean():.2f}")
            if any(c != "-" for c in cells):
                rows.append(f"| {arm} | {n} | " + " | ".join(cells) + " |")
    return rows


def entry_summary(entries: dict[tuple[str, int, int], Any]) -> tuple[list[str], list[int], list[int]]:
    """The arms (in first-seen order), Ns and seeds the entries hold."""
    arms = list(dict.fromkeys(a for a, _, _ in entries))
    return arms, sorted({n for _, n, _ in entries}), sorted({s for _, _, s in entries})


def loop_runs(folders: list[Path]) -> list[tuple[str, int, Path]]:
    """(entry name, seed, run directory) of every loop entry whose run directory is on disk."""
    runs = []
    for folder in folders:
        for (arm, n, seed), entry in sorted(load_entries(folder).items()):
            run_dir = ROOT / entry.get("model", "")
            if arm == "loop" and run_dir.is_dir():
                runs.append((f"{folder.name}/loop-N{n}-seed{seed}", seed, run_dir))
    return runs
