"""``alloop evaluate MODEL_OR_RUN_DIR DATA.extxyz [--json]``: energy and force errors of a model.

MODEL_OR_RUN_DIR is a checkpoint file (``alloop train -o``) or a campaign run
directory / store, whose newest checkpoint is used. Errors are against the
file's energies (eV) and forces (eV/Angstrom): MAE and RMSE (the root mean
square over all force components), plus the per-atom energy MAE. Absolute
energies are only comparable when the data has the fidelity the model's
energy references belong to; a mismatch of recorded fidelity hashes is noted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ORDER = 41


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="energy and force MAE/RMSE of a model (checkpoint or campaign) on labelled frames",
        description="Evaluate a model checkpoint, or the newest model of a campaign run directory, "
        "against the energies and forces of a labelled extxyz file.",
    )
    p.add_argument("model", metavar="MODEL_OR_RUN_DIR", help="checkpoint file, or campaign run directory / store")
    p.add_argument("data", metavar="DATA.extxyz", help="frames with reference energy and forces")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.set_defaults(func=run)


def load_model(source: str | Path) -> tuple[Any, dict[str, Any], str]:
    """(model, metadata, description) from a checkpoint file or a campaign's newest checkpoint."""
    from alloop.errors import AlloopError
    from alloop.potentials.checkpoint import load_checkpoint, model_from_bytes

    path = Path(source)
    if path.is_dir():
        from alloop.store import CampaignStore, find_store

        with CampaignStore.open(find_store(path), "r") as store:
            blob, store_meta = store.checkpoint(-1)
            version = len(store.checkpoints()) - 1
        model, metadata = model_from_bytes(blob)
        return model, {**store_meta, **metadata}, f"{path} (checkpoint v{version})"
    if not path.exists():
        raise AlloopError(f"no such checkpoint or run directory: {path}")
    model, metadata = load_checkpoint(path)
    return model, metadata, str(path)


def run(args: argparse.Namespace) -> int:
    import torch

    from alloop.errors import AlloopError
    from alloop.training.metrics import evaluate_model
    from alloop.training.run import load_dataset

    if args.batch_size < 1:
        raise AlloopError("--batch-size must be at least 1")
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, args.threads))
    try:
        model, metadata, description = load_model(args.model)
        data = load_dataset(args.data, "data")
        unknown = set(data.elements) - set(model.elements)
        if unknown:
            raise AlloopError(f"{args.data} has elements {sorted(unknown)} that the model does not know {list(model.elements)}")
        metrics = evaluate_model(model, data, args.batch_size)
    finally:
        torch.set_num_threads(previous)
    model_fidelity = metadata.get("fidelity")
    note = None
    if data.fidelity != "data" and model_fidelity and data.fidelity != model_fidelity:
        note = (f"the data's fidelity ({data.fidelity}) is not the one the model's energy references belong to "
                f"({model_fidelity}): absolute energy errors include the difference of the two levels of theory")
    if args.json:
        print(json.dumps({"model": description, "data": str(args.data), "method": metadata.get("method"),
                          **metrics, "note": note}, indent=2))
        return 0
    if note:
        print(f"note: {note}", file=sys.stderr)
    print(f"model {description}" + (f" (trained with {metadata['method']})" if metadata.get("method") else ""))
    print(f"data  {args.data}: {metrics['n_frames']} frames, {metrics['n_atoms']} atoms")
    print("| quantity | MAE | RMSE | unit |")
    print("|---|---|---|---|")
    print(f"| energy | {metrics['energy_mae_eV']:.5f} | {metrics['energy_rmse_eV']:.5f} | eV |")
    print(f"| energy per atom | {metrics['energy_mae_per_atom_eV']:.5f} | | eV/atom |")
    print(f"| force components | {metrics['force_mae_eV_per_A']:.5f} | {metrics['force_rmse_eV_per_A']:.5f} | eV/Angstrom |")
    return 0
