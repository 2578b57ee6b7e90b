"""``alloop evaluate MODEL_OR_RUN_DIR DATA.extxyz [--version N] [--json]``: energy and force errors of a model.

MODEL_OR_RUN_DIR is a checkpoint file (``alloop train -o``, ``alloop export
--model``) or a campaign run directory / store, whose newest model (or
checkpoint ``--version N``) is used; loading is :mod:`alloop.deploy.loading`,
as for ``alloop.calculator``. Errors are against the file's energies (eV) and
forces (eV/Angstrom): MAE and RMSE (the root mean square over all force
components), plus the per-atom energy MAE; for frames of one molecule with
rotatable bonds, the same per conformer basin (trans / gauche+ / gauche- of
each rotor, :mod:`alloop.conformers`); for frames of several molecules, the
same per molecule (formula, :mod:`alloop.molecules`; ``--json``:
``per_molecule``). Absolute energies are predicted at
the data's fidelity when the frames record one (``fidelity_hash``, as written
by ``alloop label`` and ``alloop export``) and the model has references for
it, else at the campaign's expensive fidelity, else as the checkpoint was
saved; a remaining mismatch of fidelity hashes is noted. A model trained by
a campaign carries its error model (:mod:`alloop.uncertainty.error_model`);
then its predicted force error on the frames is printed next to the
measured one (``--json``: ``predicted_force_mae_eV_per_A``, ``error_spearman``
between predicted and true per-frame force MAE, ``bound_coverage``)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from alloop.errors import AlloopError

if TYPE_CHECKING:
    from alloop.deploy.loading import TrainedModel

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
    p.add_argument("--version", type=int, metavar="N",
                   help="checkpoint version of a campaign (default: the newest model)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.set_defaults(func=run)


def load_model(source: str | Path, version: int | None = None, data_fidelity: str | None = None) -> TrainedModel:
    """The model to evaluate, its energies at ``data_fidelity`` if it has references for it, else at the expensive one.

    Without references for either (a checkpoint saved without them) the energies it was saved with are kept.
    """
    from alloop.deploy.loading import load_trained, use_fidelity

    trained = load_trained(source, version, None)
    for fidelity in (data_fidelity, "expensive"):
        if fidelity is None:
            continue
        try:
            return use_fidelity(trained, fidelity)
        except AlloopError:
            continue
    return trained


def run(args: argparse.Namespace) -> int:
    import torch

    from alloop.training.error_fit import predicted_error_metrics
    from alloop.training.metrics import basin_metrics, evaluate_model, per_molecule_metrics
    from alloop.training.run import load_dataset

    if args.batch_size < 1:
        raise AlloopError("--batch-size must be at least 1")
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, args.threads))
    try:
        data = load_dataset(args.data, "data")
        trained = load_model(args.model, args.version, None if data.fidelity == "data" else data.fidelity)
        model = trained.model
        unknown = set(data.elements) - set(model.elements)
        if unknown:
            raise AlloopError(f"{args.data} has elements {sorted(unknown)} that the model does not know "
                              f"{list(model.elements)}")
        metrics = evaluate_model(model, data, args.batch_size)
        basins = basin_metrics(model, data, args.batch_size)
        molecules = per_molecule_metrics(model, data, args.batch_size)
        predicted = predicted_error_metrics(model, trained.metadata, data)
    finally:
        torch.set_num_threads(previous)
    metadata = trained.metadata
    active = trained.fidelity or {}
    note = None
    if data.fidelity != "data" and active.get("hash") and data.fidelity != active["hash"]:
        note = (f"the data's fidelity ({data.fidelity}) is not the one of the model's energy references "
                f"({active.get('name')}, {active['hash']}): absolute energy errors include the difference of the two "
                "levels of theory")
    description = trained.description
    if args.json:
        print(json.dumps({"model": description, "data": str(args.data), "method": metadata.get("method"),
                          "fidelity": active.get("name"), **metrics, **_finite_or_null(predicted or {}), "basins": basins,
                          "per_molecule": molecules, "note": note}, indent=2))
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
    if predicted:
        print(f"\nthe model's own predicted force error (its error model): mean "
              f"{predicted['predicted_force_mae_eV_per_A']:.5f} eV/Angstrom against the measured "
              f"{metrics['force_mae_eV_per_A']:.5f}; Spearman rho with the true per-frame error "
              f"{_rho(predicted['error_spearman'])}; {100 * predicted['bound_coverage']:.0f} % of frames below its "
              f"{100 * predicted['bound_coverage_stated']:.0f} % bound")
    _print_split("molecule", "per molecule (formula, alloop.molecules)", molecules)
    _print_split("basin", "per conformer basin (dihedrals of the rotatable bonds, alloop.conformers)", basins)
    return 0


def _print_split(what: str, title: str, parts: dict[str, dict]) -> None:
    """A Markdown table of the errors of each part (molecule, basin) of the data; nothing without parts."""
    if not parts:
        return
    print(f"\n{title}:")
    print(f"| {what} | frames | share | force MAE (eV/A) | energy MAE (meV/atom) |")
    print("|---|---:|---:|---:|---:|")
    for name, m in parts.items():
        print(f"| {name} | {m['n_frames']} | {m['share']:.0%} | {m['force_mae_eV_per_A']:.4f} | "
              f"{1000 * m['energy_mae_per_atom_eV']:.2f} |")


def _finite_or_null(values: dict) -> dict:
    """JSON has no NaN: an undefined number (a rank correlation of a constant prediction) becomes null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}


def _rho(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "undefined (the prediction is the same on every frame)"
