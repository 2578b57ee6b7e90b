"""``alloop status RUN_DIR``: what a campaign store holds (committed content only)."""

from __future__ import annotations

import argparse
import json

ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="summarise a campaign store: frames, labels per fidelity and status, CPU cost, models (with their "
        "evaluation-set errors and, from pretrained weights, their forgetting), last commit",
        description="Summarise a campaign store (RUN_DIR/store.zarr or the store directory itself). "
        "Reads only committed data and takes no lock, so it can run beside a live campaign.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="campaign run directory or store directory")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alloop.campaign import original
    from alloop.campaign.evaluation import format_status, status
    from alloop.store import CampaignStore, find_store
    from alloop.store.summary import format_summary, summarize

    with CampaignStore.open(find_store(args.run_dir), "r") as store:
        summary = summarize(store)
        summary["evaluation"] = status(store)  # per-model errors on the campaign's evaluation set, or null
        summary["forgetting"] = original.status(store)  # per-model change against the stored original, or null
    text = "\n".join([format_summary(summary), *format_status(summary["evaluation"]),
                      *original.format_status(summary["forgetting"])])
    print(json.dumps(summary, indent=2) if args.json else text)
    return 0
