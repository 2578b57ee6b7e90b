"""``alloop report RUN_DIR``: PNG plots and a Markdown summary of a campaign."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 13


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write plots (cost, uncertainty, parity, labels) and a summary of a campaign",
        description="Read the campaign store in RUN_DIR (read-only; works while the campaign runs) and write "
        "cost.png (validation force error vs cumulative labelling cost), uncertainty.png (frame Q-residual "
        "along MD with the limit and the selected frames), parity.png (latest model vs expensive labels), "
        "labels.png (labels per cycle, failures included) and summary.md into RUN_DIR/report (or -o DIR).",
    )
    p.add_argument("run_dir", help="the campaign's run directory")
    p.add_argument("-o", "--output", help="output folder (default RUN_DIR/report)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from alloop.config import CampaignConfig
    from alloop.report import write_report
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import find_store

    path = find_store(args.run_dir)
    out = Path(args.output) if args.output else Path(args.run_dir) / "report"
    with CampaignStore.open(path) as store:
        expensive = None
        try:
            expensive = CampaignConfig.from_dict(store.config, check_files=False).expensive_fidelity.hash()
        except Exception:  # a store made by `alloop import` has no campaign config
            expensive = None
        files = write_report(store, out, expensive)
    for f in files:
        print(f)
    return 0
