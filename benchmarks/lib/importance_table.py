"""The tables of ``importance_weights.py`` from its per-seed result files: the force errors of the loop's frames
retrained with and without importance weights, beside the loop's delivered model and random frames; and the
weights' diagnostics (effective sample size, MMD to the target, basin shares)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lib.common import markdown_table, mean_std

#: the models trained on the loop's frames: name -> the frames' weight key (None: equal weights)
MODELS: dict[str, str | None] = {"retrain": None, "weighted-md": "importance_md", "weighted-pool": "importance_pool"}
TARGETS = {"md": "the loop's MD", "pool": "the 500 K pool"}


def load_results(folder: Path) -> list[dict[str, Any]]:
    """The per-seed result files of ``importance_weights.py`` in ``folder``, by seed."""
    return sorted((json.loads(p.read_text()) for p in folder.glob("seed*.json")), key=lambda r: r["seed"])


def n30_entries(folder: Path, arm: str) -> dict[int, dict]:
    """``learning_curves.py``'s entries of ``arm`` at N = 30 in ``folder``, by seed."""
    return {int(p.stem.rsplit("seed", 1)[1]): json.loads(p.read_text()) for p in folder.glob(f"{arm}-N30-seed*.json")}


def _paired_percent(ours: dict[int, float], theirs: dict[int, float]) -> str:
    seeds = sorted(set(ours) & set(theirs))
    if not seeds:
        return "-"
    d = [100.0 * (ours[s] / theirs[s] - 1.0) for s in seeds]
    return f"{mean_std(d, 1, sign='+')} %"


def importance_table(results: list[dict[str, Any]], tests: list[str], loop: dict[int, dict], random: dict[int, dict],
                     labels: dict[str, str] | None = None) -> str:
    """Per test file: mean force MAE (eV/A, mean +- std over seeds) of random frames, the loop's delivered model and
    the three retrained models, and the weighted models' paired difference from the equal-weight retrain."""
    labels = labels or {}
    rows = []
    for test in tests:
        # the seeds whose three models are scored on this set (a seed in progress has weights, not all its models)
        seeds = [r["seed"] for r in results if all(test in r["models"].get(m, {}).get("scores", {}) for m in MODELS)]

        def of(entries: dict[int, dict], test: str = test, seeds: list[int] = seeds) -> dict[int, float]:
            return {s: e["scores"][test]["mean"] for s, e in entries.items()
                    if s in seeds and test in e.get("scores", {})}

        ours = {name: {r["seed"]: r["models"][name]["scores"][test]["mean"] for r in results if r["seed"] in seeds}
                for name in MODELS}
        if not ours["retrain"]:
            continue
        cells = [mean_std(v.values(), 4) if v else "-" for v in (of(random), of(loop), *ours.values())]
        rows.append([labels.get(test, test), len(ours["retrain"]), *cells,
                     _paired_percent(ours["weighted-md"], ours["retrain"]),
                     _paired_percent(ours["weighted-pool"], ours["retrain"]),
                     _paired_percent(ours["retrain"], of(loop)), _paired_percent(ours["weighted-md"], of(random)),
                     _paired_percent(of(loop), of(random))])
    return markdown_table(["test set", "seeds", "random frames", "loop (delivered)", "retrain (equal weights)",
                           "weighted (MD target)", "weighted (pool target)", "weighted (MD) vs retrain",
                           "weighted (pool) vs retrain", "retrain vs delivered", "weighted (MD) vs random",
                           "delivered vs random"], rows)


def weights_table(results: list[dict[str, Any]]) -> str:
    """Per target: the weights' effective sample size, squared MMD before -> after, max weight, and the first basin's
    share (ethanol: trans) of the labelled frames unweighted -> weighted against the target's (mean +- std)."""
    rows = []
    for key, name in TARGETS.items():
        w = [r["weights"][key] for r in results if key in r["weights"]]
        if not w:
            continue
        n = [len(x["weights"]) for x in w]
        row = [name, len(w), mean_std([x["n_target"] for x in w], 0), mean_std(n, 0),
               mean_std([x["effective_sample_size"] for x in w], 1),
               f"{mean_std([x['mmd2_before'] for x in w], 4)} -> {mean_std([x['mmd2_after'] for x in w], 4)}",
               mean_std([float(np.max(x["weights"])) for x in w], 1)]
        basins = [x["basins"] for x in w if "basins" in x]
        if basins:
            first = basins[0]["names"][0]
            row.append(f"{mean_std([b['unweighted'][0] for b in basins], 2)} -> "
                       f"{mean_std([b['weighted'][0] for b in basins], 2)} ({mean_std([b['target'][0] for b in basins], 2)};"
                       f" {first})")
        else:
            row.append("-")
        rows.append(row)
    return markdown_table(["target", "seeds", "target frames", "labelled frames", "effective sample size",
                           "MMD^2 before -> after", "largest weight", "first basin's share: unweighted -> weighted "
                           "(target)"], rows)
