"""``alloop export RUN_DIR --fidelity NAME -o FILE.extxyz``: labelled frames as lossless extxyz."""

from __future__ import annotations

import argparse
import sys

ORDER = 70


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write the frames labelled at one fidelity as extxyz (energy, forces, metadata)",
        description="Write the frames labelled at one fidelity as extended XYZ: energy and forces as "
        "calculator results (floats written exactly), frame metadata and label status in the info line. "
        "Only ok labels unless --all-status (failed labels are written without energy and forces).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="campaign run directory or store directory")
    parser.add_argument(
        "--fidelity",
        required=True,
        metavar="NAME",
        help="campaign role (cheap, expensive), stored fidelity name or hash, or fidelity preset",
    )
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="output .extxyz file")
    parser.add_argument("--all-status", action="store_true", help="also write frames whose label failed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alloop.errors import StoreError
    from alloop.store import CampaignStore, find_store, resolve_fidelity
    from alloop.store.exchange import labelled_frames, write_extxyz_exact

    with CampaignStore.open(find_store(args.run_dir), "r") as store:
        stored = store.fidelities()
        fidelity = resolve_fidelity(args.fidelity, store.config, stored)
        if fidelity.hash() not in stored:
            known = ", ".join(f"{v['name']} ({h})" for h, v in stored.items()) or "none"
            what = f"{fidelity.name} ({fidelity.hash()})"
            raise StoreError(f"no labels at fidelity {what} in {store.path} (stored: {known})")
        frames = labelled_frames(store, fidelity, all_status=args.all_status)
    count = write_extxyz_exact(args.output, frames)
    print(f"wrote {count} frames labelled at {fidelity.name} ({fidelity.hash()}) to {args.output}", file=sys.stderr)
    return 0
