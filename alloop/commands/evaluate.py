"""``alloop evaluate MODEL_OR_RUN_DIR DATA.extxyz [--version N] [--temperature K] [--json]``: a model's errors.

MODEL_OR_RUN_DIR is a checkpoint file or a campaign run directory / store (its newest model, or checkpoint
``--version N``); DATA.extxyz holds frames with reference energies and forces. ``--temperature K`` declares the
temperature the frames were drawn at: the model's error bound is then weighted for it (its calibration frames'
Boltzmann likelihood ratio; a model trained by a campaign of one MD temperature). What is computed and printed
(errors, per basin, per molecule, the model's own predicted error) is :mod:`alloop.evaluation.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import sys

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
    p.add_argument("--temperature", type=float, metavar="K",
                   help="the temperature the frames were drawn at: also give the model's error bound weighted for it")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alloop.evaluation.evaluate import as_json, evaluate_file, text_lines

    result = evaluate_file(args.model, args.data, args.version, args.batch_size, args.threads, args.temperature)
    if args.json:
        print(json.dumps(as_json(result), indent=2))
        return 0
    if result["note"]:
        print(f"note: {result['note']}", file=sys.stderr)
    print("\n".join(text_lines(result)))
    return 0
