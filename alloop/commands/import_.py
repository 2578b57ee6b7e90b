"""``alloop import FILE --fidelity NAME RUN_DIR``: labelled structures into a campaign store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alloop.fidelity import Fidelity
    from alloop.labeling.result import LabelResult
    from alloop.store import CampaignStore
    from alloop.store.exchange import ImportPlan

ORDER = 71


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import",
        help="add labelled structures (energy and forces) from a file to a campaign store, skipping duplicates",
        description="Add the structures of an ASE-readable file (each with energy and forces) to the "
        "campaign store of RUN_DIR (RUN_DIR/store.zarr, created if missing) as frames of origin 'import' "
        "with ok labels at the given fidelity, committing every --batch frames. A structure equal to a stored "
        "frame or to an earlier one of the file (same atomic numbers in the same order, cell and pbc, every atom "
        "within 1e-8 A) is not added again: its label goes to the stored frame if that has none at this fidelity "
        "hash, else it is skipped; the counts are printed. The software versions a label records in its info "
        "(pyscf_version, libxc_version, xc_definition, tblite_version, as alloop label and alloop export write "
        "them) must match those of the store's labels of the fidelity, or the import is refused before anything is "
        "written "
        "(--allow-version-mix accepts the mix and records every version); labels without them count as unknown.",
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
    parser.add_argument(
        "--allow-version-mix",
        action="store_true",
        help="accept labels made by other PySCF/libxc versions than the store's labels of this fidelity",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alloop.errors import AlloopError
    from alloop.io import read_structures
    from alloop.store import STORE_DIRNAME, CampaignStore, find_store, resolve_fidelity, store_path
    from alloop.store.exchange import import_labelled, label_results, plan_import

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
        store.allow_version_mix = args.allow_version_mix
        fidelity = resolve_fidelity(args.fidelity, store.config, store.fidelities())
        plan = plan_import(store, fidelity.hash(), structures)
        _notes(store, fidelity, [results[k] for k in plan.new + [k for k, _ in plan.attach]], source)

        def progress(done: int, total: int, seq: int) -> None:
            print(f"imported {done}/{total} frames (commit #{seq})", file=sys.stderr, flush=True)

        import_labelled(store, fidelity, structures, results=results, plan=plan, batch=args.batch, progress=progress)
        print(_summary(plan, f"{fidelity.name} ({fidelity.hash()})", store))
    return 0


def _notes(store: CampaignStore, fidelity: Fidelity, results: list[LabelResult], source: Path) -> None:
    """Say on stderr when labels' software versions are unknown (in the file, or in the store's older labels)."""
    from alloop.labeling.provenance import describe

    unknown = sum(not r.provenance for r in results)
    if unknown:
        print(f"note: {unknown} labels of {source} record no software versions (pyscf_version, ...); "
              "accepted as unknown", file=sys.stderr)
    recorded = next((dict(r.provenance) for r in results if r.provenance), None)
    if recorded and fidelity.hash() in store.fidelities() and not store.label_provenance(fidelity.hash()):
        print(f"note: the labels of {fidelity.name} already in {store.path} predate version records (unknown); "
              f"recording {describe(recorded)} from now on", file=sys.stderr)


def _summary(plan: ImportPlan, fidelity: str, store: CampaignStore) -> str:
    """One line: what was imported and what was skipped as duplicates."""
    text = f"imported {len(plan.new)} frames labelled at {fidelity} into {store.path}"
    if plan.attach:
        text += f", and {len(plan.attach)} labels for frames already in the store"
    if plan.skipped_frames:
        text += (f"; skipped as duplicates: {plan.skipped_frames} frames ({plan.in_store} already in the store, "
                 f"{plan.in_file} repeated in the file), {plan.labels_skipped} labels")
    return text + f"; the store holds {store.n_frames} frames"
