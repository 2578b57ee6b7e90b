"""``alloop report RUN_DIR``: PNG plots and a Markdown summary of a campaign; ``--compare``: several side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from alloop.errors import AlloopError

ORDER = 13
#: where ``--compare`` writes without -o (relative to the working folder)
COMPARE_DIR = "compare-report"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write plots (cost, uncertainty, parity, labels, coverage, predicted, levels) and a summary of a campaign "
        "(--compare: of several)",
        description="Read the campaign store in RUN_DIR (read-only; works while the campaign runs) and write "
        "cost.png (validation force error vs cumulative labelling cost), uncertainty.png (frame Q-residual "
        "along MD with the limit and the selected frames), parity.png (latest model vs expensive labels), "
        "labels.png (labels per cycle, failures included), coverage.png (each model's share of the evaluation set "
        "within the Q-residual limit; for one molecule with rotatable bonds, the conformer-basin shares of the frames "
        "labelled so far per cycle and fidelity), predicted.png (predicted against measured force error), levels.png "
        "(CPU s per label per fidelity and cycle; ASTEROID's median bias B per model against the cheap level's "
        "measured distance from the expensive one on the frames labelled at both) and summary.md into RUN_DIR/report "
        "(or -o DIR). "
        "With --compare and two or more run directories: compare_cost.png (each run's force MAE, and per-atom "
        "energy MAE, on its evaluation set - or its validation split when it has none, as the legend says - vs "
        f"cumulative labelling CPU s) and compare.md (one column per run) into ./{COMPARE_DIR} (or -o DIR).",
    )
    p.add_argument("run_dir", nargs="+", metavar="RUN_DIR",
                   help="the campaign's run directory (two or more with --compare)")
    p.add_argument("--compare", action="store_true",
                   help="compare two or more campaigns: learning curves in one figure and a side-by-side summary")
    p.add_argument("-o", "--output",
                   help=f"output folder (default RUN_DIR/report; with --compare ./{COMPARE_DIR})")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.compare:
        return _compare(args)
    if len(args.run_dir) > 1:
        raise AlloopError(f"{len(args.run_dir)} run directories given: add --compare to compare campaigns")
    files = _single(args.run_dir[0], args.output)
    for f in files:
        print(f)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from alloop.report.compare import write_comparison

    for f in write_comparison(args.run_dir, Path(args.output or COMPARE_DIR)):
        print(f)
    return 0


def _single(run_dir: str, output: str | None) -> list[Path]:
    from alloop.config import CampaignConfig
    from alloop.report import write_report
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import find_store

    path = find_store(run_dir)
    out = Path(output) if output else Path(run_dir) / "report"
    with CampaignStore.open(path) as store:
        expensive = None
        try:
            expensive = CampaignConfig.from_dict(store.config, check_files=False).expensive_fidelity.hash()
        except Exception:  # a store made by `alloop import` has no campaign config
            expensive = None
        return write_report(store, out, expensive)
