"""The table of ``naive_vs_periodic.py``: one column per run name (strategy, or the starting model), one row per
quantity of its scores, over seeds; and the committed scores of finished runs read back for it.

A run's scores (``RUN_DIR/naive_vs_periodic_scores.json``) hold one entry per scoring setting (its ``key``: replicas,
ps, temperatures, test files, MD start, g(r) reference); a finished campaign's ``naive_vs_periodic.json`` its wall
seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lib.common import mean_std


def table_rows(temperatures: list[float], cap_ps: float, tests: list[str], rdf_pairs: list[str],
               cycles: list[int]) -> list[tuple[str, str, int]]:
    """(label, scores key, decimals) of every row the table can have."""
    return [
        *[(f"force MAE, {t} test (eV/A)", f"{t}_force", 3) for t in tests],
        *[(f"energy MAE, {t} test (meV/atom)", f"{t}_energy_meV_atom", 2) for t in tests],
        *[(f"MD at {t:g} K: ps to first failure (cap {cap_ps:g})", f"stable_ps_{t:g}K", 2) for t in temperatures],
        *[(f"MD at {temperatures[0]:g} K: RMS of g(r) - g_ref(r), {pair}", f"rdf_rms_{pair}", 3) for pair in rdf_pairs],
        *[(f"cycle {c}: share of its MD frames flagged", f"flag_rate_c{c}", 3) for c in cycles],
        ("forgetting: force MAE vs the campaign's original model (v0) on outside molecules (eV/A)", "forget_force", 3),
        ("forgetting: energy change vs the original, offsets removed (meV/atom)", "forget_energy_meV_atom", 1),
        ("outside molecules: force MAE vs B3LYP/def2-SVP (eV/A)", "outside_b3lyp_force", 3),
        *[(f"{t} test frames not covered by the labels", f"uncovered_{t}", 2) for t in tests],
        ("labelled frames' energy above the lowest test frame (meV/atom)", "energy_mean_meV_atom", 1),
        ("  its spread (std, meV/atom)", "energy_std_meV_atom", 1),
        ("expensive labels", "labels_expensive", 0), ("cheap labels", "labels_cheap", 0),
        ("CPU s, expensive labels", "cpu_expensive_s", 0), ("CPU s, cheap labels", "cpu_cheap_s", 0),
        ("training wall s (sum)", "train_s", 0), ("campaign wall s", "wall_seconds", 0),
    ]


def _values(run: dict[str, Any], key: str) -> list[float]:
    v = run.get(key)
    values = list(v) if isinstance(v, list) else [v]
    return [x for x in values if x is not None and np.isfinite(x)]


def cell(runs: list[dict[str, Any]], key: str, digits: int, per_seed: bool) -> str:
    """Mean +- std over the runs (lists, e.g. MD replicas, pooled); ``per_seed``: each run's value (a list's mean),
    joined by " / "; "n/a" where nothing is known."""
    if per_seed:
        got = [_values(r, key) for r in runs]
        return " / ".join(f"{np.mean(v):.{digits}f}" if v else "-" for v in got) if any(got) else "n/a"
    values = [x for r in runs for x in _values(r, key)]
    return mean_std(values, digits) if values else "n/a"


def table(results: dict[str, list[dict[str, Any]]], temperatures: list[float], cap_ps: float, tests: list[str],
          rdf_pairs: list[str], per_seed: bool = False, skip_empty: bool = False) -> list[str]:
    """The Markdown table (and its notes) of every column's runs; ``per_seed`` prints each seed's value instead
    of the mean +- std, ``skip_empty`` leaves out the rows no run has."""
    names = list(results)
    cycles = sorted({int(k.removeprefix("flag_rate_c")) for runs in results.values() for r in runs for k in r
                     if k.startswith("flag_rate_c")})
    lines = [f"| quantity | {' | '.join(names)} |", f"|---|{'---|' * len(names)}"]
    for label, key, digits in table_rows(temperatures, cap_ps, tests, rdf_pairs, cycles):
        cells = [cell(results[strategy], key, digits, per_seed) for strategy in names]
        if not (skip_empty and all(c == "n/a" for c in cells)):
            lines.append(f"| {label} | {' | '.join(cells)} |")
    ref = next(r for runs in results.values() for r in runs if f"ref_{tests[0]}_energy_mean_meV_atom" in r)
    lines += ["", "test frames' own energies above their lowest (meV/atom): " + ", ".join(
              f"{t} {ref[f'ref_{t}_energy_mean_meV_atom']:.1f} +- {ref[f'ref_{t}_energy_std_meV_atom']:.1f}"
              for t in tests),
              "each seed's value, seed by seed (MD rows: the mean over replicas)" if per_seed else
              "mean +- sample std over seeds (MD rows: over seeds x replicas)"]
    return lines


def committed_scores(run_dir: Path, temperatures: list[float]) -> dict[str, Any] | None:
    """The scores a finished run cached for the scoring at ``temperatures`` (with its campaign's wall seconds when
    its ``naive_vs_periodic.json`` is there), or None."""
    path = run_dir / "naive_vs_periodic_scores.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    entry = next((e for e in saved.get("entries", [saved]) if e["key"]["temperatures"] == temperatures), None)
    if entry is None:
        return None
    scores = dict(entry["scores"])
    marker = run_dir / "naive_vs_periodic.json"
    if marker.is_file():
        scores["wall_seconds"] = json.loads(marker.read_text())["wall_seconds"]
    return scores


def committed_results(folder: Path, columns: dict[str, str], seeds: list[int],
                      temperatures: list[float]) -> dict[str, list[dict[str, Any]]]:
    """Per column (``columns``: run name -> column name) the committed scores of ``folder/RUN-sSEED``, seed by
    seed; a seed without scores is left out."""
    out: dict[str, list[dict[str, Any]]] = {}
    for run, column in columns.items():
        found = [committed_scores(folder / f"{run}-s{seed}", temperatures) for seed in seeds]
        out[column] = [s for s in found if s is not None]
    return out
