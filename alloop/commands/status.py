"""``alloop status RUN_DIR``: what a campaign store holds (committed content only);
``alloop status --check RUN_DIR``: every committed part read back against the commit record."""

from __future__ import annotations

import argparse
import json

ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="summarise a campaign store: frames, labels per fidelity and status, CPU cost, models (with their "
        "evaluation-set errors, coverage and predicted errors and, from pretrained weights, their forgetting), "
        "the conformer basins of labelled frames (real rotors only), the MD's reaction events per cycle and the labelled "
        "frames along them, per molecule of a campaign of several (frames, flagged share, labels, "
        "evaluation errors), last commit",
        description="Summarise a campaign store (RUN_DIR/store.zarr or the store directory itself). "
        "Reads only committed data and takes no lock, so it can run beside a live campaign. With --check, "
        "verifies every committed part of the store instead (read-only).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="campaign run directory or store directory")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument(
        "--recompute",
        action="store_true",
        help="compute every count from the store, not from the summary the loop stored after its last cycle (used "
        "only while the store's content is exactly what it was computed from; at a million frames it saves about "
        "a second)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="instead of the summary, read every committed array and blob back against the commit record "
        "(length, every chunk decoded, CRC-32 / SHA-256 where recorded) and report each part ok or damaged; "
        "writes nothing; exit status 1 if any part is damaged",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.check:
        return _check(args)
    from alloop.campaign import status_summary
    from alloop.campaign.phases import original
    from alloop.evaluation import predicted_errors
    from alloop.evaluation.molecule_table import format_molecules
    from alloop.evaluation.records import format_status
    from alloop.store import CampaignStore, find_store
    from alloop.store.coverage import format_basins
    from alloop.store.md_cost import format_md_cost
    from alloop.store.reactions import format_reactions
    from alloop.store.summary import format_summary, summarize

    with CampaignStore.open(find_store(args.run_dir), "r") as store:
        parts, stored = status_summary.current(store, use_stored=not args.recompute)
        summary = {**summarize(store, parts), **parts, "stored_summary": stored}
    text = "\n".join([format_summary(summary), *format_molecules(summary["molecules"]),
                      *format_status(summary["evaluation"]),
                      *predicted_errors.format_status(summary["predicted_errors"]),
                      *original.format_status(summary["forgetting"]), *format_basins(summary["labelled_basins"]),
                      *format_reactions(summary["reactions"]), *format_md_cost(summary.get("md_cost"))])
    print(json.dumps(summary, indent=2) if args.json else text)
    return 0


def _check(args: argparse.Namespace) -> int:
    """``--check``: one line per committed part; 0 if all are ok, 1 otherwise."""
    from alloop.store import CampaignStore, find_store
    from alloop.store.check import format_checks

    with CampaignStore.open(find_store(args.run_dir), "r") as store:
        checks = store.verify()
        path, record = str(store.path), store.record
    ok = all(c.ok for c in checks)
    if args.json:
        print(json.dumps({"path": path, "seq": record["seq"], "ok": ok, "parts": [c.as_dict() for c in checks]},
                         indent=2))
    else:
        print(format_checks(path, record, checks))
    return 0 if ok else 1
