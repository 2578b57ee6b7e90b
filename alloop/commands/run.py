"""``alloop run CAMPAIGN.yaml``: start a campaign (bootstrap, then cycles of MD, labels, training)."""

from __future__ import annotations

import argparse

ORDER = 10


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="start a campaign from its YAML file",
        description="Validate CAMPAIGN.yaml, create the run directory (a Zarr campaign store) and run the "
        "active-learning loop on the embedded Dask cluster (or --address). Progress goes to stderr, "
        "events to stdout and RUN_DIR/campaign.log. A campaign stopped at any point continues with "
        "'alloop resume RUN_DIR'.",
    )
    p.add_argument("campaign", help="campaign YAML file (see campaigns/quickstart.yaml)")
    p.add_argument("--dir", dest="run_dir", help="run directory (default: store.run_dir of the campaign)")
    p.add_argument("--address", help="address of an existing Dask scheduler (tcp://host:8786)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a campaign field, e.g. --set schedule.n_cycles=5 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no live progress line")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from alloop.campaign.loop.runner import start_campaign
    from alloop.config import load_campaign

    cfg = load_campaign(args.campaign, overrides=args.overrides)
    start_campaign(cfg, args.run_dir, address=args.address, progress=not args.no_progress)
    return 0
