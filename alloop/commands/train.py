"""``alloop train --expensive A.extxyz [--cheap B] [--unlabelled C] [--method M] -o MODEL``: ASTEROID training.

``--method`` is a method of the registry :mod:`alloop.training.methods` (default: a campaign's default,
:data:`~alloop.training.methods.DEFAULT_METHOD`, ``standard``); a method whose label files are not given is refused
with the registry's message, the one a campaign stops with when its store lacks those labels.

``--method two-head`` trains a two-head model (a shared representation, a cheap
and an expensive energy head; :mod:`alloop.training.two_head`):
``--two-head-mode frozen`` (default) trains the representation and the cheap
head on the cheap labels, then only the expensive head on the expensive labels
(stage-3 budget and lr); ``joint`` trains everything together in one run.

``--model`` is any preset of ``configs/models/`` (``small``, ``egnn-paper``, ``pair``,
``sevennet-0``, ``sevennet-small``, ``mace``, ...). A preset with pretrained weights
(``sevennet-0``; ``mace`` with ``--init FILE.model``, a MACE model file the user
brings) is the start of every stage, fine-tuned with the defaults of
``alloop.config.training.PRETRAINED_DEFAULTS`` unless the options say otherwise. The options become a
campaign's ``training`` section (:func:`alloop.training.recipe.section_from_options`: its defaults and checks)
mapped to the stages' settings as in a campaign (:func:`recipe_settings`), and the model trains through a campaign's
training path too (:func:`alloop.training.fit.fit`);
``--freeze-blocks K`` freezes its embeddings and first K interaction blocks
(SevenNet models only). ``--replay-fraction F`` (pretrained weights only)
draws that share of every batch from outside molecules labelled by the
starting model (forces only; docs/training.md). ``--baseline gfn2-xtb`` (or
``gfn1-xtb``) trains a Delta model: the network learns reference minus GFN-xTB on
every label set (:mod:`alloop.potentials.baseline`) and the checkpoint adds the
baseline back whenever it predicts. Per-epoch progress goes to
stderr (``--quiet`` silences it); the final summary to stdout. The checkpoint holds the model, its
metrics on the expensive validation split, per-fidelity energy references and
the training settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alloop.config.training import (
    DEFAULT_STEPS,
    FINETUNE_LR_FACTOR,
    PRETRAINED_DEFAULTS,
    SCORE_MATCHING_TEMPERATURE_K,
    TrainingConfig,
)
from alloop.training.methods import DEFAULT_METHOD, METHODS, TWO_HEAD, check_labels, method_spec, uses

if TYPE_CHECKING:
    from alloop.potentials.base import Potential
    from alloop.potentials.baseline import Baseline
    from alloop.training.fit import LabelSets
    from alloop.training.stages import AsteroidResult, AsteroidSettings

ORDER = 40


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
    _data_options(p)
    _model_options(p)
    _recipe_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="checkpoint file to write")
    p.set_defaults(func=run)


def _data_options(p: argparse.ArgumentParser) -> None:
    """The label files, the method that uses them and Delta learning."""
    p.add_argument("--expensive", required=True, metavar="A.extxyz",
                   help="frames with expensive (accurate) energy and forces")
    p.add_argument("--weights", metavar="KEY", default=None,
                   help="per-frame loss weights of the --expensive frames from their info key KEY (e.g. importance "
                   "weights: target density over selection density); every frame needs a finite weight >= 0; the "
                   "loss and the validation metrics are weighted means; default: equal weights")
    p.add_argument("--cheap", metavar="B.extxyz", help="frames with cheap (inaccurate) energy and forces")
    p.add_argument("--unlabelled", metavar="C.extxyz", help="unlabelled (Boltzmann) frames for score matching")
    p.add_argument("--temperature-K", type=float, default=SCORE_MATCHING_TEMPERATURE_K,
                   help=f"temperature of the unlabelled frames (default {SCORE_MATCHING_TEMPERATURE_K:g})")
    p.add_argument("--method", default=DEFAULT_METHOD,
                   help=f"{', '.join(METHODS)} (default {DEFAULT_METHOD}, as in a campaign)")
    p.add_argument("--two-head-mode", default=None, choices=["frozen", "joint"],
                   help="two-head: frozen (cheap labels train the representation and the cheap head, then expensive "
                   "labels only the expensive head; default) or joint (both heads and the representation together)")
    p.add_argument("--baseline", default=None, metavar="NAME",
                   help="Delta learning: the model learns reference minus this GFN-xTB fidelity (gfn1-xtb, gfn2-xtb), "
                   "which it adds back when it predicts (default: none; a --init Delta model keeps its own)")
    p.add_argument("--charge", type=int, default=None,
                   help="the frames' total charge, for the --baseline's GFN-xTB (default 0; a campaign's system.charge)")
    p.add_argument("--spin", type=int, default=None,
                   help="the frames' 2S (unpaired electrons), for the --baseline (default 0; a campaign's system.spin)")


def _model_options(p: argparse.ArgumentParser) -> None:
    """The model: a preset, frozen blocks, or a checkpoint to start from."""
    from alloop.presets import preset_names

    p.add_argument("--model", default="small", help=f"model preset: {', '.join(preset_names('models'))} (default small)")
    p.add_argument("--freeze-blocks", type=int, default=None, metavar="K",
                   help="SevenNet models: freeze the embeddings and the first K interaction blocks (default 0)")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="start stage 2 (or standard training / score matching) from this model: an alloop checkpoint, "
                   "or with --model mace a MACE model file (.model)")


def _recipe_options(p: argparse.ArgumentParser) -> None:
    """The options of the ``training`` section (:data:`alloop.training.recipe.OPTION_KEYS`), and ``--refit``."""
    scratch, pre = TrainingConfig(), PRETRAINED_DEFAULTS
    p.add_argument("--steps", type=int, default=None,
                   help="optimiser steps of standard training and ASTEROID stages 1-2 "
                   f"(default {DEFAULT_STEPS}; {pre['steps']} from pretrained weights)")
    p.add_argument("--finetune-steps", type=int, default=None, help="optimiser steps of stage 3 (default steps / 3)")
    p.add_argument("--epochs", type=int, default=None, help="a budget in epochs per stage instead of steps")
    p.add_argument("--patience", type=int, default=None,
                   help="early-stopping guard in epochs without improvement (default: half the run)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"frames per optimiser step (default {scratch.batch_size}; {pre['batch_size']} from pretrained "
                   "weights)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate of stages 1-2 (default {scratch.learning_rate_pretrain:g})")
    p.add_argument("--finetune-lr", type=float, default=None,
                   help=f"peak learning rate of stage 3 (default {FINETUNE_LR_FACTOR:g} x lr)")
    p.add_argument("--energy-weight", type=float, default=None,
                   help=f"rho of Eq. 1 (default {scratch.energy_weight:g}; {pre['energy_weight']:g} from pretrained "
                   "weights)")
    p.add_argument("--loss", default=None, choices=["mse", "mae", "huber"], help=f"default {scratch.loss}")
    p.add_argument("--ema", type=float, default=None,
                   help=f"EMA decay of the weights, 0 for none (default {scratch.ema_decay:g})")
    p.add_argument("--rollback", type=float, default=None, metavar="FACTOR",
                   help="a validation force MAE above FACTOR x the best so far puts the best weights back, resets the "
                   "optimiser and halves the learning rate (at most 3 times per stage); 0: never "
                   f"(default {scratch.rollback_factor:g})")
    p.add_argument("--replay-fraction", type=float, default=None, metavar="F",
                   help="share of every batch drawn from outside molecules labelled by the starting model (forces "
                   "only); needs pretrained weights (a preset such as sevennet-0, or --init); default 0: off")
    p.add_argument("--gamma-grid", type=_floats, default=None,
                   help="gamma factors x median bias; one value fixes gamma (default 1), several are searched")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="validation fraction of each set, on average: a frame is a validation frame by a hash of "
                   f"its geometry and the seed (default {scratch.validation_fraction:g})")
    p.add_argument("--refit", action="store_true",
                   help="train on every frame, no holdout (a campaign's training.final_refit): the guards and the "
                   "printed 'validation' errors are then on the training frames, not an estimate of the error")


def run(args: argparse.Namespace) -> int:
    from alloop.config.system import FILE_ARCHITECTURES
    from alloop.training.fit import fit
    from alloop.training.run import summary_lines
    from alloop.training.stages import model_factory

    architecture, preset = _model_preset(args)
    pretrained = preset.get("base") is not None or architecture in FILE_ARCHITECTURES
    section, settings = recipe_settings(args, pretrained)
    _check_replay(args, section.replay_fraction, pretrained)
    started = time.perf_counter()
    labels = _read_labels(args)
    initial = _initial_model(args, _elements(labels))
    baseline = _baseline(args, initial)
    if baseline is not None:
        _check_baseline(args, section.replay_fraction)
        print(f"Delta learning: the model learns reference minus {baseline.name}", file=sys.stderr)
    if architecture in FILE_ARCHITECTURES:  # the file's model is the start of every stage
        assert initial is not None  # _model_preset required --init
        factory = _copies_of(initial, architecture)
    else:
        factory = model_factory(architecture, _elements(labels), seed=args.seed, **preset)
    if section.replay_fraction:  # pseudo-labelled by the starting model, before anything trains
        labels = _with_replay(labels, initial if initial is not None else factory(), args.seed)
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    result = fit(args.method, labels, model_factory=factory, settings=settings, baseline=baseline,
                 initial_model=initial, log=log, two_head_mode=args.two_head_mode or "frozen")
    out = _save(args, result, settings, labels, baseline)
    n_frames = {role: len(data) for role, data in (("expensive", labels.expensive), ("cheap", labels.cheap),
                                                    ("unlabelled", labels.unlabelled)) if data is not None}
    for line in summary_lines(result, n_frames, holdout=not args.refit):
        print(line)
    print(f"wrote {out} ({time.perf_counter() - started:.1f} s)")
    return 0


def recipe_settings(args: argparse.Namespace, pretrained: bool) -> tuple[TrainingConfig, AsteroidSettings]:
    """The ``training`` section of the options (the defaults of :class:`TrainingConfig`, or of
    :data:`PRETRAINED_DEFAULTS` for a ``pretrained`` model) and the stages' settings it maps to: the mapping of a
    campaign (:func:`alloop.training.recipe.asteroid_settings`), seeded with ``--seed`` (the validation splits
    too), with ``--refit``'s no-holdout switch."""
    from alloop.training.recipe import asteroid_settings, section_from_options

    section = section_from_options(vars(args), pretrained=pretrained)  # the recipe's defaults and checks
    settings = asteroid_settings(section, args.seed, args.threads, args.temperature_K, split_seed=args.seed)
    return section, dataclasses.replace(settings, refit=True) if args.refit else settings


def _model_preset(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The architecture and hyperparameters of ``--model`` (with ``--freeze-blocks``), after the checks of the
    options that need no file: the method, its label files, the baseline's name."""
    from alloop.errors import AlloopError
    from alloop.potentials.baseline import baseline_fidelity
    from alloop.presets import load_preset

    method_spec(args.method)  # an unknown name lists the registry's
    if args.two_head_mode is not None and args.method != TWO_HEAD:
        raise AlloopError(f"--two-head-mode is for --method two-head, not '{args.method}'")
    if args.baseline is not None:
        baseline_fidelity(args.baseline)  # a GFN-xTB preset, before any data is read
    from alloop.config.system import FILE_ARCHITECTURES
    from alloop.potentials.registry import check_extra

    preset = load_preset("models", args.model)  # unknown names list the known presets
    architecture = preset.pop("architecture")
    check_extra(architecture)  # a missing package named with its pip command, before any data is read
    if architecture in FILE_ARCHITECTURES and not args.init:
        raise AlloopError(f"--model {args.model} needs --init FILE: a {architecture.upper()} model file you bring "
                          "(e.g. MACE-OFF or MACE-MP), or an alloop checkpoint of one")
    if args.freeze_blocks is not None:
        if architecture != "sevennet":
            raise AlloopError(f"--freeze-blocks is for SevenNet models; preset '{args.model}' is a '{architecture}' model")
        if args.init:
            raise AlloopError("--freeze-blocks applies to the preset's model; a --init checkpoint keeps its own")
        preset["freeze_blocks"] = args.freeze_blocks
    given = {"expensive": args.expensive, "cheap": args.cheap, "unlabelled": args.unlabelled}
    check_labels(args.method, [kind for kind, path in given.items() if path])
    return architecture, preset


def _check_replay(args: argparse.Namespace, replay_fraction: float, pretrained: bool) -> None:
    from alloop.errors import AlloopError

    if replay_fraction and not pretrained and not args.init:
        raise AlloopError(f"--replay-fraction needs pretrained weights: preset '{args.model}' has none (use e.g. "
                          "--model sevennet-0, or --init)")


def _check_baseline(args: argparse.Namespace, replay_fraction: float) -> None:
    """What a Delta model is not trained with: score matching, replay."""
    from alloop.errors import AlloopError

    if not method_spec(args.method).delta:
        raise AlloopError("score matching fits the whole model's forces to unlabelled frames; it does not take "
                          "--baseline")
    if replay_fraction:
        raise AlloopError("--replay-fraction is not offered with a baseline (the starting model's pseudo-labels "
                          "have no baseline to subtract)")


def _read_labels(args: argparse.Namespace) -> LabelSets:
    """The files the method uses (a note on stderr for a file it does not use)."""
    from alloop.training.fit import LabelSets
    from alloop.training.run import load_dataset

    uses_cheap, uses_unlabelled = uses(args.method, "cheap"), uses(args.method, "unlabelled")
    if args.cheap and not uses_cheap:
        print(f"note: --cheap is not used by method '{args.method}'", file=sys.stderr)
    if args.unlabelled and not uses_unlabelled:
        print(f"note: --unlabelled is not used by method '{args.method}'", file=sys.stderr)
    return LabelSets(
        expensive=load_dataset(args.expensive, "expensive", weight_key=args.weights),
        cheap=load_dataset(args.cheap, "cheap") if args.cheap and uses_cheap else None,
        unlabelled=load_dataset(args.unlabelled, "unlabelled", labelled=False) if uses_unlabelled else None,
    )


def _elements(labels: LabelSets) -> list[int]:
    return sorted({z for data in (labels.expensive, labels.cheap, labels.unlabelled) if data is not None
                   for z in data.elements})


def _initial_model(args: argparse.Namespace, elements: list[int]) -> Potential | None:
    """The ``--init`` checkpoint's model (None without it); AlloopError if it does not know an element."""
    from alloop.errors import AlloopError
    from alloop.potentials.checkpoint import load_checkpoint

    if not args.init:
        return None
    initial, _ = load_checkpoint(args.init)
    missing = set(elements) - set(initial.elements)
    if missing:
        raise AlloopError(f"{args.init}: the model does not know elements {sorted(missing)} of the training data")
    return initial


def _copies_of(initial: Potential, architecture: str) -> Callable[..., Potential]:
    """A model factory whose every model is a copy of ``initial``'s learned part (a Delta model's inner model)."""
    import copy

    from alloop.errors import AlloopError
    from alloop.potentials.baseline import learned_part

    start = learned_part(initial)
    if start.registry_name != architecture:
        raise AlloopError(f"--init holds a '{start.registry_name}' model, not a '{architecture}' one (--model)")

    def factory(restart: int = 0) -> Potential:
        return copy.deepcopy(start)

    return factory


def _with_replay(labels: LabelSets, original: Potential, seed: int) -> LabelSets:
    """``labels`` with a replay pool: outside molecules labelled by ``original`` (the starting model)."""
    from alloop.training.run import replay_pool

    sets = [d for d in (labels.expensive, labels.cheap, labels.unlabelled) if d is not None]
    return dataclasses.replace(labels, replay=replay_pool(original, sets, seed))


def _save(args: argparse.Namespace, result: AsteroidResult, settings: AsteroidSettings, labels: LabelSets,
          baseline: Baseline | None) -> Path:
    """Write the trained model's checkpoint (metadata: the run's sources, settings, metrics, stages, baseline)."""
    from alloop.potentials.baseline import learned_part
    from alloop.potentials.checkpoint import save_checkpoint
    from alloop.potentials.two_head import TwoHeadPotential
    from alloop.training.run import checkpoint_metadata, fidelity_name

    sources = {"expensive": str(args.expensive), "cheap": args.cheap, "unlabelled": args.unlabelled,
               "model_preset": args.model, "freeze_blocks": args.freeze_blocks, "init": args.init,
               "replay_frames": 0 if labels.replay is None else len(labels.replay), "weights_key": args.weights}
    metadata = checkpoint_metadata(result, settings, sources, fidelity=labels.expensive.fidelity)
    if args.method == TWO_HEAD:
        model = learned_part(result.model)
        assert isinstance(model, TwoHeadPotential)  # fit trains a two-head model
        for head, path in (("cheap", args.cheap), ("expensive", args.expensive)):
            model.record_fidelity(head, model.fidelities[head]["tag"], fidelity_name(path))
        metadata["two_head_mode"] = args.two_head_mode or "frozen"
    if baseline is not None:
        metadata["baseline"] = baseline.name
        metadata["baseline_seconds"] = round(baseline.seconds, 3)
    return save_checkpoint(result.model, args.output, metadata)


def _baseline(args: argparse.Namespace, initial: Potential | None) -> Baseline | None:
    """The Baseline of ``--baseline`` at ``--charge`` and ``--spin`` or of a Delta ``--init`` model (None without
    either); AlloopError if they differ."""
    from alloop.errors import AlloopError
    from alloop.fidelity import load_fidelity
    from alloop.potentials.baseline import Baseline, DeltaPotential, baseline_fidelity

    own = initial.baseline if isinstance(initial, DeltaPotential) else None
    if args.baseline is None:
        if args.charge is not None or args.spin is not None:
            raise AlloopError("--charge and --spin are the --baseline's (a labelled frame keeps its own): give "
                              "--baseline NAME")
        return None if own is None else Baseline(own.fidelity)
    fidelity = baseline_fidelity(load_fidelity(args.baseline, charge=args.charge, spin=args.spin))
    if own is not None and own.fidelity.hash() != fidelity.hash():
        raise AlloopError(f"--baseline {args.baseline} differs from the --init model's baseline {own.name}")
    return Baseline(fidelity)
