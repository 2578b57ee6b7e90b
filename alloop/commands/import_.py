"""``alloop import FILE --fidelity NAME RUN_DIR``: labelled structures into a campaign store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ORDER = 71


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import",
        help="add labelled structures (energy and forces) from a file to a campaign store",
        description="Add the structures of an ASE-readable file (each with energy and forces) to the "
        "campaign store of RUN_DIR (RUN_DIR/store.zarr, created if missing) as frames of origin 'import' "
        "with ok labels at the given fidelity, committing every --batch frames.",
    )
    parser.add_argument("file", metavar="FILE", help="labelled structures, e.g. .extxyz")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="campaign run directory or store directory")
    parser.add_argument(
        "--fidelity",
        required=True,
        metavar="NAME",
        help="campaign role (cheap, expensive; needs the store's campaign config), stored fidelity, or preset",
    )
    parser.add_argument("--batch", type=int, default=1000, help="frames per commit (default 1000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alloop.errors import AlloopError
    from alloop.io import read_structures
    from alloop.store import STORE_DIRNAME, CampaignStore, find_store, resolve_fidelity, store_path
    from alloop.store.exchange import import_labelled, label_results

    if args.batch < 1:
        raise AlloopError("--batch must be at least 1")
    source, run_dir = Path(args.file), Path(args.run_dir)
    if not source.is_file():
        raise AlloopError(f"no such file: {source}")
    structures = read_structures(source)
    results = label_results(structures)  # validates every frame before anything is written
    if (run_dir / "zarr.json").is_file() or (run_dir / STORE_DIRNAME / "zarr.json").is_file():
        store = CampaignStore.open(find_store(run_dir), "a")
    else:
        resolve_fidelity(args.fidelity, None, {})  # fail before creating an empty store
        store = CampaignStore.create(store_path(run_dir))
    with store:
        fidelity = resolve_fidelity(args.fidelity, store.config, store.fidelities())

        def progress(done: int, total: int, seq: int) -> None:
            print(f"imported {done}/{total} frames (commit #{seq})", file=sys.stderr, flush=True)

        count = import_labelled(store, fidelity, structures, results=results, batch=args.batch, progress=progress)
        print(f"imported {count} frames labelled at {fidelity.name} ({fidelity.hash()}) into {store.path}; "
              f"the store holds {store.n_frames} frames")
    return 0
