"""The README's generated results table: one row per entry of ``readme.rows`` in ``benchmarks/registry.yaml``.

A row is ``what`` (Markdown, as written in the registry) and a result cell its ``kind`` computes from the row's
committed ``result`` files, so no number in the generated table is typed by hand:

- ``status-final``: a campaign's final model on its evaluation set (``alloop status --json``): force and energy
  MAE;
- ``naive-vs-periodic``: per run name (``columns``: name -> label) the mean +- std over ``seeds`` of the force MAE
  on ``test`` (the committed scores of ``naive_vs_periodic.py``);
- ``learning-curves``: per arm (``arms``: arm -> label) at ``n`` labels the mean +- std over seeds of the mean
  per-frame force MAE on ``test``, and each arm's paired difference to ``reference`` in % of the reference;
- ``herding``: the squared MMD of the herded frames and of random ones (mean, 90 % range of the draws);
- ``llpr``: Spearman rho and the 90 % bound's coverage of the force LLPR per evaluation set;
- ``delta-baseline``: the force MAE on ``test`` with the baseline and without (mean over seeds), and the MD
  replicas stopped at 1000 K with and without it (``delta_baseline.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from lib.common import ROOT, mean_std
from lib.importance_table import load_results
from lib.learning_curves_tables import arm_entries, entry_summary, load_entries
from lib.nvp_table import committed_results


def _json(spec: dict[str, Any]) -> Any:
    return json.loads((ROOT / spec["result"][0]).read_text())


def status_final(spec: dict[str, Any]) -> str:
    final = _json(spec)["evaluation"]["models"][-1]
    return (f"**{final['eval_force_mae_eV_per_A']:.4f} eV/A** (energy {1e3 * final['eval_energy_mae_per_atom_eV']:.2f} "
            f"meV/atom; model v{final['model_version']}, cycle {final['cycle']})")


def naive_vs_periodic(spec: dict[str, Any]) -> str:
    results = committed_results(ROOT / spec["result"][0], spec["columns"], spec["seeds"], spec["temperatures"])
    key = f"{spec['test']}_force"
    cells = [f"{label} {mean_std([r[key] for r in runs if key in r], 3)}" for label, runs in results.items()]
    return ", ".join(cells) + f" eV/A ({len(spec['seeds'])} seed{'s' if len(spec['seeds']) > 1 else ''})"


def _arm_means(entries: dict, arm: str, test: str, n: int, seeds: list[int]) -> dict[int, float]:
    mine = arm_entries(entries, arm)
    return {s: float(np.mean(mine[(n, s)]["scores"][test]["per_frame"])) for s in seeds if (n, s) in mine}


def learning_curves(spec: dict[str, Any]) -> str:
    entries: dict = {}
    for folder, arms in spec["arms"].items():
        entries.update(load_entries(ROOT / folder, arms))
    _, _, seeds = entry_summary(entries)
    ref = _arm_means(entries, spec["reference"], spec["test"], spec["n"], seeds)
    cells = []
    for label in (a for arms in spec["arms"].values() for a in arms.values()):
        means = _arm_means(entries, label, spec["test"], spec["n"], seeds)
        if not means:
            continue
        cell = f"{label} {mean_std(list(means.values()), 4)}"
        paired = [100 * (means[s] - ref[s]) / ref[s] for s in means if s in ref]
        if label != spec["reference"] and paired:
            cell += f" ({mean_std(paired, 1)} %)"
        if len(means) != len(ref):  # an arm run on fewer seeds than the reference says so
            cell += f" [{len(means)} seed{'' if len(means) == 1 else 's'}]"
        cells.append(cell)
    return ", ".join(cells) + f" eV/A at {spec['n']} labels, {len(ref)} seeds"


def herding(spec: dict[str, Any]) -> str:
    mmd = _json(spec)["mmd2"]
    return (f"MMD^2 {mmd['herding']:.4f} against random frames' {mmd['random_mean']:.4f} (90 % of draws "
            f"{mmd['random_p5']:.4f}-{mmd['random_p95']:.4f})")


def llpr(spec: dict[str, Any]) -> str:
    sets = _json(spec)["sets"]
    forces = {name: s["signals"]["llpr_forces"] for name, s in sets.items()}
    return "; ".join(f"{name}: Spearman rho {f['spearman']:.2f}, predicted / measured MAE "
                     f"{f['predicted_over_measured']:.2f}, 90 % bound covers {100 * f['bound_coverage']:.0f} %"
                     for name, f in forces.items())


def importance_weights(spec: dict[str, Any]) -> str:
    """The importance-weighted retrain (loop MD target) against the equal-weight retrain, per test set in ``tests``
    (file -> label): paired percent, mean +- std over seeds."""
    results = load_results(ROOT / spec["result"][0])
    cells, n = [], 0
    for test, label in spec["tests"].items():
        scored = [r["models"] for r in results
                  if all(test in r["models"].get(m, {}).get("scores", {}) for m in ("retrain", "weighted-md"))]
        d = [100 * (m["weighted-md"]["scores"][test]["mean"] / m["retrain"]["scores"][test]["mean"] - 1) for m in scored]
        if d:
            cells.append(f"{label} {mean_std(d, 1, sign='+')} %")
            n = max(n, len(d))
    return ", ".join(cells) + f" ({n} seed{'s' if n != 1 else ''})"


def delta_baseline(spec: dict[str, Any]) -> str:
    result = _json(spec)
    baseline, test = result["baselines"][0], spec["test"]

    def mae(tag: str) -> str:
        return f"{np.mean([result['scores'][f'{n}/{s}/{tag}'][test] for s in result['seeds']]):.3f}"

    n = max(result["frames"])
    text = f"{mae(baseline)} / {mae('plain')} eV/A ({len(result['seeds'])} seeds)"
    md = result.get("md")
    if md:
        def stopped(tag: str) -> str:
            stops = np.concatenate([md["runs"][f"1000/{s}/{tag}"]["stops_fs"] for s in result["seeds"]])
            return f"{int(np.isfinite(np.asarray(stops, dtype=float)).sum())} of {stops.size}"
        text += (f"; MD replicas stopped at 1000 K within {md['ps']:g} ps: {stopped(baseline)} with it, "
                 f"{stopped('plain')} without")
    return text


KINDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "status-final": status_final, "naive-vs-periodic": naive_vs_periodic, "learning-curves": learning_curves,
    "herding": herding, "llpr": llpr, "importance-weights": importance_weights, "delta-baseline": delta_baseline,
}


def readme_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The generated table's Markdown lines; a one-line error for an unknown kind or a missing result."""
    lines = ["| what | result |", "|---|---|"]
    for row in rows:
        if row["kind"] not in KINDS:
            raise SystemExit(f"registry: README row {row['what'][:40]!r}: unknown kind {row['kind']!r}")
        missing = [r for r in row["result"] if not (ROOT / r).exists()]
        if missing:
            raise SystemExit(f"registry: README row {row['what'][:40]!r}: result {', '.join(missing)} not found")
        lines.append(f"| {row['what']} | {KINDS[row['kind']](row)} |")
    return lines
