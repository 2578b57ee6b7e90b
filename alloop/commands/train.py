"""``alloop train --expensive A.extxyz [--cheap B] [--unlabelled C] --method M -o MODEL``: ASTEROID training.

Per-epoch progress goes to stderr (``--quiet`` silences it); the final summary to
stdout. The checkpoint holds the model, its metrics on the expensive validation
split, per-fidelity energy references and the training settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ORDER = 40
MODEL_PRESETS = ("small", "egnn-paper", "pair")


def _floats(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a force field: standard, ASTEROID (cheap + expensive labels) or score matching",
        description="Train a force field on expensive labels, optionally helped by cheap labels (ASTEROID: "
        "bias-aware pretraining, then fine-tuning) or unlabelled frames (sliced score matching).",
    )
    p.add_argument("--expensive", required=True, metavar="A.extxyz", help="frames with expensive (accurate) energy and forces")
    p.add_argument("--cheap", metavar="B.extxyz", help="frames with cheap (inaccurate) energy and forces")
    p.add_argument("--unlabelled", metavar="C.extxyz", help="unlabelled (Boltzmann) frames for score matching")
    p.add_argument("--method", default="asteroid", help="standard, asteroid, asteroid-no-weights or score-matching (default asteroid)")
    p.add_argument("--model", default="small", help=f"model preset: {', '.join(MODEL_PRESETS)} (default small)")
    p.add_argument("--init", metavar="CHECKPOINT", help="start stage 2 (or standard training / score matching) from this model")
    p.add_argument("--steps", type=int, default=None,
                   help="optimiser steps of standard training and ASTEROID stages 1-2 (default 3000)")
    p.add_argument("--finetune-steps", type=int, default=None, help="optimiser steps of stage 3 (default steps / 3)")
    p.add_argument("--epochs", type=int, default=None, help="a budget in epochs per stage instead of steps")
    p.add_argument("--patience", type=int, default=None,
                   help="early-stopping guard in epochs without improvement (default: half the run)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of stages 1-2 (default 1e-3)")
    p.add_argument("--finetune-lr", type=float, default=None, help="peak learning rate of stage 3 (default 0.3 x lr)")
    p.add_argument("--energy-weight", type=float, default=0.1, help="rho of Eq. 1 (default 0.1)")
    p.add_argument("--loss", default="mse", choices=["mse", "mae", "huber"], help="default mse")
    p.add_argument("--ema", type=float, default=0.99, help="EMA decay of the weights, 0 for none (default 0.99)")
    p.add_argument("--gamma-grid", type=_floats, default=[1.0],
                   help="gamma factors x median bias; one value fixes gamma (default 1), several are searched")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation fraction of each set (default 0.1)")
    p.add_argument("--temperature-K", type=float, default=300.0, help="temperature of the unlabelled frames (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="checkpoint file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alloop.errors import AlloopError
    from alloop.potentials.checkpoint import load_checkpoint, save_checkpoint
    from alloop.potentials.registry import build_model
    from alloop.presets import load_preset
    from alloop.training.asteroid import METHODS, train_asteroid
    from alloop.training.run import checkpoint_metadata, cli_settings, load_dataset, summary_lines

    if args.method not in METHODS:
        raise AlloopError(f"unknown method '{args.method}' (use one of {', '.join(METHODS)})")
    if args.model not in MODEL_PRESETS:
        raise AlloopError(f"unknown model preset '{args.model}' (use one of {', '.join(MODEL_PRESETS)})")
    if args.method in ("asteroid", "asteroid-no-weights") and not args.cheap:
        raise AlloopError(f"method '{args.method}' needs --cheap B.extxyz (cheap labelled frames)")
    if args.method == "score-matching" and not args.unlabelled:
        raise AlloopError("method 'score-matching' needs --unlabelled C.extxyz")
    for name in ("steps", "finetune_steps", "epochs", "patience"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise AlloopError(f"--{name.replace('_', '-')} must be at least 1")
    if args.epochs is not None and (args.steps is not None or args.finetune_steps is not None):
        raise AlloopError("give the budget as --steps/--finetune-steps or as --epochs, not both")
    if not 0 <= args.ema < 1:
        raise AlloopError(f"--ema must be in [0, 1), got {args.ema}")
    started = time.perf_counter()
    if args.cheap and not args.method.startswith("asteroid"):
        print(f"note: --cheap is not used by method '{args.method}'", file=sys.stderr)
    if args.unlabelled and args.method != "score-matching":
        print(f"note: --unlabelled is not used by method '{args.method}'", file=sys.stderr)
    expensive = load_dataset(args.expensive, "expensive")
    cheap = load_dataset(args.cheap, "cheap") if args.cheap and args.method.startswith("asteroid") else None
    unlabelled = load_dataset(args.unlabelled, "unlabelled", labelled=False) if args.method == "score-matching" else None
    elements = sorted(set(expensive.elements) | set(cheap.elements if cheap else ()) | set(unlabelled.elements if unlabelled else ()))
    initial = None
    if args.init:
        initial, _ = load_checkpoint(args.init)
        missing = set(elements) - set(initial.elements)
        if missing:
            raise AlloopError(f"{args.init}: the model does not know elements {sorted(missing)} of the training data")
    preset = load_preset("models", args.model)
    architecture = preset.pop("architecture")

    def factory():
        return build_model(architecture, elements, seed=args.seed, **preset)

    settings = cli_settings(
        steps=args.steps, finetune_steps=args.finetune_steps, epochs=args.epochs, seed=args.seed,
        threads=args.threads, batch_size=args.batch_size, lr=args.lr, finetune_lr=args.finetune_lr,
        patience=args.patience, energy_weight=args.energy_weight, loss=args.loss, ema_decay=args.ema or None,
        temperature_K=args.temperature_K, gamma_grid=args.gamma_grid, val_fraction=args.val_fraction,
    )
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    result = train_asteroid(args.method, expensive, cheap, unlabelled, model_factory=factory, settings=settings,
                            initial_model=initial, log=log)
    sources = {"expensive": str(args.expensive), "cheap": args.cheap, "unlabelled": args.unlabelled,
               "model_preset": args.model, "init": args.init}
    out = save_checkpoint(result.model, args.output,
                          checkpoint_metadata(result, settings, sources, fidelity=expensive.fidelity))
    n_frames = {"expensive": len(expensive)}
    if cheap is not None:
        n_frames["cheap"] = len(cheap)
    if unlabelled is not None:
        n_frames["unlabelled"] = len(unlabelled)
    for line in summary_lines(result, n_frames):
        print(line)
    print(f"wrote {Path(out)} ({time.perf_counter() - started:.1f} s)")
    return 0
