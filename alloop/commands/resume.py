"""``alloop resume RUN_DIR``: continue a campaign from its store after any stop or crash."""

from __future__ import annotations

import argparse

ORDER = 11


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "resume",
        help="continue a stopped or crashed campaign from its store",
        description="Continue the campaign in RUN_DIR from its last commit: committed labels are never "
        "recomputed, selected frames without a label are labelled, MD replicas continue from their saved "
        "states, an unfinished training restarts. A finished campaign says so and does nothing. --set changes "
        "the stop rules (e.g. a new deadline after the last one stopped the run), stored for later resumes too.",
    )
    p.add_argument("run_dir", help="the campaign's run directory")
    p.add_argument("--address", help="address of an existing Dask scheduler (tcp://host:8786)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change a stop rule, e.g. --set schedule.deadline=2025-06-03T08:00 or --set "
                   "schedule.deadline=null (repeatable; only schedule.deadline, max_hours, budgets, max_labels, "
                   "targets, min_flag_rate, stop_when_nothing_new)")
    p.add_argument("--no-progress", action="store_true", help="no live progress line")
    p.add_argument("--allow-version-mix", action="store_true",
                   help="accept labels from another PySCF/libxc version than the store's labels (recording both)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from alloop.campaign.loop.runner import resume_campaign

    resume_campaign(args.run_dir, address=args.address, progress=not args.no_progress,
                    allow_version_mix=args.allow_version_mix, overrides=args.overrides)
    return 0
