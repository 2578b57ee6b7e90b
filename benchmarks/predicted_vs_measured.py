"""Does a campaign's predicted force error match the error measured on its evaluation set, cycle by cycle?

Reads finished campaign run directories (e.g. the ``loop-seed-S`` runs of ``benchmarks/al_vs_random.py``, whose
campaigns score every model on the 500 K equilibrium test set) and prints, per cycle and seed: the model trained in
that cycle, its predicted force error on the evaluation set (its error model: latent distance calibrated on the
validation frames its training held out, :mod:`alloop.uncertainty.error_model`), the measured force MAE there, their
ratio, the Spearman rho between predicted and true per-frame errors, the share of frames below the predicted 90 %
bound, and the mean predicted error of the MD frames the model then explored; then the same per cycle as mean +-
std over the runs. A cycle whose model has no calibrated error model (fewer than 5 held-out frames) is a dash.

    python benchmarks/predicted_vs_measured.py runs/al-vs-random/loop-seed-*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from lib.common import markdown_table, mean_std

from alloop.evaluation import predicted_errors
from alloop.store import CampaignStore, find_store

#: the issue's tolerance on the predicted error against the measured one
TOLERANCE = 0.25


def read_rows(run_dir: Path) -> list[dict]:
    """The per-cycle predicted-error rows of a run (alloop.evaluation.predicted_errors.status)."""
    with CampaignStore.open(find_store(run_dir), "r") as store:
        return predicted_errors.status(store)


def cell(value: float | None, fmt: str = "{:.4f}") -> str:
    return "-" if value is None or not np.isfinite(value) else fmt.format(value)


def per_run_table(runs: dict[str, list[dict]]) -> str:
    rows = []
    for name, cycles in runs.items():
        for r in cycles:
            ratio = (r["eval_predicted_eV_per_A"] / r["eval_measured_eV_per_A"]
                     if r["eval_predicted_eV_per_A"] is not None and r["eval_measured_eV_per_A"] else None)
            rows.append([name, "bootstrap" if r["cycle"] < 0 else r["cycle"], cell(r["eval_predicted_eV_per_A"]),
                         cell(r["eval_measured_eV_per_A"]), cell(ratio, "{:.2f}"), cell(r["error_spearman"], "{:.2f}"),
                         cell(r["bound_coverage"], "{:.2f}"), cell(r["md_predicted_eV_per_A"])])
    return markdown_table(["run", "cycle", "eval predicted", "eval measured", "predicted / measured", "rho",
                           "below 90 % bound", "this cycle's MD frames, predicted by the model before"], rows)


def summary_table(runs: dict[str, list[dict]]) -> tuple[str, int, int]:
    """Per cycle over runs; and how many (run, cycle) pairs lie within the tolerance, of those with both values."""
    by_cycle: dict[int, list[dict]] = {}
    for cycles in runs.values():
        for r in cycles:
            by_cycle.setdefault(r["cycle"], []).append(r)
    rows, inside, total = [], 0, 0
    for cycle in sorted(by_cycle):
        both = [r for r in by_cycle[cycle] if r["eval_predicted_eV_per_A"] is not None and r["eval_measured_eV_per_A"]]
        ratios = [r["eval_predicted_eV_per_A"] / r["eval_measured_eV_per_A"] for r in both]
        inside += sum(abs(x - 1.0) <= TOLERANCE for x in ratios)
        total += len(ratios)

        def stat(key: str, digits: int = 4, group: list[dict] = both) -> str:
            values = [r[key] for r in group if r[key] is not None]
            return mean_std(values, digits) if values else "-"

        rows.append(["bootstrap" if cycle < 0 else cycle, f"{len(both)}/{len(by_cycle[cycle])}",
                     stat("eval_predicted_eV_per_A"), stat("eval_measured_eV_per_A"),
                     mean_std(ratios, 2) if ratios else "-", stat("error_spearman", 2), stat("bound_coverage", 2)])
    table = markdown_table(["cycle", "runs calibrated", "eval predicted (eV/Å)", "eval measured (eV/Å)",
                            "predicted / measured", "rho", "below 90 % bound"], rows)
    return table, inside, total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+", help="finished campaign run directories")
    args = p.parse_args(argv)
    runs = {f"{path.parent.name}/{path.name}": read_rows(path) for path in args.runs}
    if not any(runs.values()):
        print("no run holds predicted errors (models without a calibrated error model)", file=sys.stderr)
        return 1
    print(per_run_table(runs))
    table, inside, total = summary_table(runs)
    print()
    print(table)
    print(f"\n{inside} of {total} calibrated (run, cycle) pairs predict the measured force MAE within "
          f"+-{100 * TOLERANCE:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
