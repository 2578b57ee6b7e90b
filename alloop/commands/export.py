"""``alloop export``: labelled frames as lossless extxyz, or a trained model as a standalone file.

``alloop export RUN_DIR --fidelity NAME -o FILE.extxyz``: the frames labelled at one fidelity (``--evaluation-set``:
the campaign's automatic evaluation set alone, which is otherwise left out).
``alloop export RUN_DIR --model [--version N] [--format alloop] -o FILE``: a model of the campaign
(default: the newest of role ``model``) at the campaign's expensive fidelity, as a checkpoint that
``alloop.calculator(FILE)`` and ``alloop evaluate FILE DATA`` load; ``--format sevenn`` writes a
SevenNet model as sevenn's own checkpoint (``SevenNetCalculator(model=FILE)``, ``sevenn get_model FILE``);
``--format mace`` a MACE model as a MACE model file (``MACECalculator(model_paths=FILE)``).
"""

from __future__ import annotations

import argparse
import sys

from alloop.deploy.export import format_names
from alloop.errors import AlloopError

ORDER = 70


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write the frames labelled at one fidelity as extxyz, or a trained model as a checkpoint",
        description="With --fidelity: write the frames labelled at one fidelity as extended XYZ: energy and "
        "forces as calculator results (floats written exactly), frame metadata and label status in the info "
        "line; only ok labels unless --all-status (failed labels are written without energy and forces). "
        "With --model: write a model of the campaign (the newest of role 'model' unless --version) with the "
        "energy references of the campaign's expensive fidelity, recording the run, version, cycle and fidelity.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="campaign run directory or store directory (with --model also a checkpoint file)")
    parser.add_argument(
        "--fidelity",
        metavar="NAME",
        help="labels mode: campaign role (cheap, expensive), stored fidelity name or hash, or fidelity preset",
    )
    parser.add_argument("--model", action="store_true", help="model mode: write a trained model instead of labels")
    parser.add_argument("--version", type=int, metavar="N",
                        help="model mode: checkpoint version (alloop status lists them; default the newest model)")
    parser.add_argument("--format", dest="fmt", metavar="FORMAT",
                        help=f"model mode: file format ({', '.join(format_names())}; default alloop)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="output file (.extxyz for labels, .safetensors for an alloop model, .pth for sevenn, "
                        ".model for mace)")
    parser.add_argument("--all-status", action="store_true", help="labels mode: also write frames whose label failed")
    parser.add_argument("--evaluation-set", action="store_true",
                        help="labels mode: write the frames of the campaign's automatic evaluation set (evaluation.auto)"
                        " alone; without it they are left out, as they are out of training")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model and args.fidelity is not None:
        raise AlloopError("--model and --fidelity are exclusive: --model writes a model, --fidelity writes labels")
    if args.model:
        if args.all_status or args.evaluation_set:
            raise AlloopError(f"{'--all-status' if args.all_status else '--evaluation-set'} applies to labels "
                              "(--fidelity), not to --model")
        return _export_model(args)
    if args.fidelity is None:
        raise AlloopError("say what to export: --fidelity NAME (labelled frames) or --model (a trained model)")
    for option, value in (("--version", args.version), ("--format", args.fmt)):
        if value is not None:
            raise AlloopError(f"{option} applies to --model, not to labels (--fidelity)")
    return _export_labels(args)


def _export_model(args: argparse.Namespace) -> int:
    from alloop.deploy.export import export_model
    from alloop.deploy.loading import load_trained, use_fidelity

    if args.version is not None and args.version < 0:
        raise AlloopError(f"--version must be >= 0 (got {args.version})")
    trained = load_trained(args.run_dir, args.version, None)
    try:
        use_fidelity(trained, "expensive")
    except AlloopError:  # e.g. ASTEROID's stage-2 model (cheap labels): it keeps the energies it was saved with
        saved = (trained.fidelity or {}).get("name", "the fidelity it was saved with")
        print(f"note: {trained.description} has no expensive-fidelity references; its energies stay at {saved}",
              file=sys.stderr)
    path = export_model(trained, args.output, args.fmt or "alloop")
    fid = trained.fidelity or {"name": "unknown", "hash": "-"}
    print(f"wrote {trained.description} at fidelity {fid['name']} ({fid['hash']}) to {path} "
          f"(format {args.fmt or 'alloop'}, {path.stat().st_size} bytes)", file=sys.stderr)
    return 0


def _export_labels(args: argparse.Namespace) -> int:
    from alloop.errors import StoreError
    from alloop.io import write_extxyz
    from alloop.store import CampaignStore, find_store, resolve_fidelity
    from alloop.store.exchange import labelled_frames

    with CampaignStore.open(find_store(args.run_dir), "r") as store:
        stored = store.fidelities()
        fidelity = resolve_fidelity(args.fidelity, store.config, stored)
        if fidelity.hash() not in stored:
            known = ", ".join(f"{v['name']} ({h})" for h, v in stored.items()) or "none"
            what = f"{fidelity.name} ({fidelity.hash()})"
            raise StoreError(f"no labels at fidelity {what} in {store.path} (stored: {known})")
        frames = labelled_frames(store, fidelity, all_status=args.all_status, evaluation_set=args.evaluation_set)
        left = 0 if args.evaluation_set else len(labelled_frames(store, fidelity, all_status=args.all_status,
                                                                 evaluation_set=True))
    count = write_extxyz(args.output, frames)
    what = "frames of the automatic evaluation set" if args.evaluation_set else "frames"
    note = f" ({left} frames of the automatic evaluation set left out: --evaluation-set writes them)" if left else ""
    print(f"wrote {count} {what} labelled at {fidelity.name} ({fidelity.hash()}) to {args.output}{note}",
          file=sys.stderr)
    return 0
