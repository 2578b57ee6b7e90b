"""``alloop refine MODEL FRAMES.extxyz [--method ttt|rr]``: test-time refinement (METHODS.md section 3).

``--method ttt`` (default), ``alloop refine MODEL FRAMES.extxyz --prior cheap [-o MODEL_OUT]``: test-time
training of a two-head model.

The representation of a two-head model (``alloop train --method two-head``) takes
``--steps`` small SGD steps on the prior (cheap) head's loss over FRAMES, the
heads frozen; the expensive head is then active in the written model
(:mod:`alloop.training.refine`). Cheap labels come from FRAMES (``--energy-key``
/ ``--forces-key``, default the extxyz ``energy`` and ``forces`` that ``alloop
label`` writes) or, with ``--label``, from PySCF or tblite at the fidelity the model's
cheap head was trained on. With ``--expensive-energy-key`` /
``--expensive-forces-key`` (labels of the same frames) the expensive head's
errors before and after are printed too. Progress goes to stderr (``--quiet``
silences it), the summary to stdout.

``--method rr --training TRAIN.extxyz [--grid LOW:HIGH:STEP] [-o OUT.extxyz]``:
spectral radius refinement (:mod:`alloop.commands._refine_radius`), for models
that accept another graph radius (EGNN, two-head EGNN). Options that only
test-time training uses are refused with ``rr``, and ``--training`` / ``--grid``
with ``ttt``.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alloop.potentials.two_head import TwoHeadPotential

ORDER = 45
METHODS = ("ttt", "rr")


def register(subparsers: argparse._SubParsersAction) -> None:
    from alloop.training.refine import MAX_STEPS, RefineSettings

    d = RefineSettings()
    p = subparsers.add_parser(
        "refine",
        help="test-time refinement on new frames: training of a two-head model's representation on cheap labels "
        "(ttt), or a graph radius per frame from its spectrum (rr)",
        description="--method ttt (default): take a few small gradient steps on the cheap (prior) head's loss over "
        "FRAMES, updating only the representation of a two-head model, and write the model with its expensive head "
        "active. --method rr: spectral radius refinement; per frame, the graph radius (on --grid) whose normalised-"
        "Laplacian spectrum is nearest the mean spectrum of --training's frames at the model's training cutoff, "
        "then predict with it; prints the chosen radii and, if FRAMES has reference forces, the MAE before and after; "
        "the model is not changed. rr needs an architecture that accepts another graph radius (EGNN, also as the "
        "body of a two-head model); SevenNet and the pair potential do not.",
    )
    p.add_argument("model", metavar="MODEL", help="a model checkpoint (ttt: two-head, alloop train --method two-head)")
    p.add_argument("frames", metavar="FRAMES.extxyz", help="the structures to refine on")
    p.add_argument("--method", choices=METHODS, default="ttt",
                   help="ttt: test-time training (default); rr: spectral radius refinement")
    p.add_argument("--training", metavar="TRAIN.extxyz",
                   help="rr: frames of the model's training set (their mean spectrum is the reference)")
    p.add_argument("--grid", metavar="LOW:HIGH:STEP", default=None,
                   help="rr: the candidate radii in A (default 3:9:0.25; the training cutoff is always one)")
    p.add_argument("--prior", default="cheap", help="ttt: the head whose loss is minimised (default cheap)")
    p.add_argument("--target", default="expensive",
                   help="the head active in the refined model, rr: the head that predicts (default expensive)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="ttt: the refined checkpoint (default: MODEL-refined next to MODEL); rr: an extxyz of FRAMES "
                   "with the predictions as energy/forces and the chosen radius as graph_radius (default: none)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"ttt: SGD steps, 1..{MAX_STEPS} (default {d.steps})")
    p.add_argument("--lr", type=float, default=d.lr,
                   help=f"ttt: SGD learning rate, momentum {d.momentum:g} (default {d.lr:g})")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help=f"frames per step, rr: per prediction batch (default {d.batch_size})")
    p.add_argument("--energy-weight", type=float, default=d.energy_weight,
                   help=f"ttt: rho of Eq. 1 (default {d.energy_weight:g})")
    p.add_argument("--energy-key", default=None, help="ttt: where FRAMES hold the cheap energies (default energy)")
    p.add_argument("--forces-key", default=None, help="ttt: where FRAMES hold the cheap forces (default forces)")
    p.add_argument("--label", action="store_true",
                   help="ttt: compute the cheap labels with PySCF or tblite at the model's recorded cheap fidelity "
                   "(in this process)")
    p.add_argument("--charge", type=int, default=None,
                   help="ttt --label: the frames' total charge (default: the one the head's recorded fidelity was "
                   "trained at)")
    p.add_argument("--spin", type=int, default=None,
                   help="ttt --label: the frames' 2S, unpaired electrons (default: as --charge)")
    p.add_argument("--expensive-energy-key", default=None,
                   help="expensive energies in FRAMES, for before/after errors (rr: default energy, if FRAMES has it)")
    p.add_argument("--expensive-forces-key", default=None,
                   help="expensive forces in FRAMES, for before/after errors (rr: default forces, if FRAMES has it)")
    p.add_argument("--seed", type=int, default=0, help="ttt: seed of the batch order (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch (and labeller) threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def _ttt_defaults() -> dict[str, Any]:
    """The options only test-time training uses, with their defaults."""
    from alloop.training.refine import RefineSettings

    d = RefineSettings()
    return {"prior": "cheap", "steps": d.steps, "lr": d.lr, "energy_weight": d.energy_weight, "energy_key": None,
            "forces_key": None, "label": False, "seed": 0, "charge": None, "spin": None}


def _check_args(args: argparse.Namespace) -> None:
    from alloop.errors import AlloopError

    if args.method == "rr":
        given = [k for k, v in _ttt_defaults().items() if getattr(args, k) != v]
        if given:
            raise AlloopError(f"--{given[0].replace('_', '-')} is an option of --method ttt, not of rr")
    elif args.training or args.grid:
        raise AlloopError(f"--{'training' if args.training else 'grid'} is an option of --method rr, not of ttt")
    if not args.label and (args.charge is not None or args.spin is not None):
        raise AlloopError("--charge and --spin are for --label (labelled frames keep the charge they were labelled at)")
    if args.label and (args.energy_key or args.forces_key):
        raise AlloopError("--label computes the cheap labels: give it or --energy-key/--forces-key, not both")
    if (args.expensive_energy_key is None) != (args.expensive_forces_key is None):
        raise AlloopError("give both --expensive-energy-key and --expensive-forces-key, or neither")
    if args.threads < 1:
        raise AlloopError("--threads must be at least 1")


def _two_head(model: Any, path: str, prior: str, target: str) -> TwoHeadPotential:
    """``model`` if it is a two-head model with heads ``prior`` and ``target`` (AlloopError otherwise)."""
    from alloop.errors import AlloopError
    from alloop.potentials.two_head import TwoHeadPotential

    if not isinstance(model, TwoHeadPotential):
        raise AlloopError(f"{path} is a single-head '{model.registry_name}' model: test-time training needs a two-head "
                          f"model with a '{prior}' head (alloop train --method two-head)")
    for head in (prior, target):
        if head not in model.head_names:
            raise AlloopError(f"{path} has no '{head}' head (it has {', '.join(model.head_names)})")
    return model


def _prior_labels(args: argparse.Namespace, model: Any, structures: list, log: Any) -> tuple[list, Any, str]:
    """(frames, labels, where the labels came from); frames whose label failed are left out."""
    from alloop.errors import AlloopError
    from alloop.io import labels_under

    if args.label:
        return _label(model.fidelities.get(args.prior, {}), structures, args, log)
    energy_key, forces_key = args.energy_key or "energy", args.forces_key or "forces"
    labels = labels_under(structures, energy_key, forces_key, args.frames)
    if labels is None:
        raise AlloopError(f"{args.frames} has no '{args.prior}' labels under '{energy_key}'/'{forces_key}': give "
                          "--energy-key/--forces-key, or --label to compute them with PySCF or tblite")
    tag = model.fidelities.get(args.prior, {}).get("tag")
    hashes = {a.info.get("fidelity_hash") for a in structures} - {None}
    if args.energy_key is None and tag and hashes and hashes != {tag}:
        raise AlloopError(f"{args.frames} is labelled at fidelity {', '.join(sorted(hashes))}, but the model's "
                          f"'{args.prior}' head was trained at {tag}")
    return structures, labels, f"'{energy_key}'/'{forces_key}' of {args.frames}"


def _label(record: dict, structures: list, args: argparse.Namespace, log: Any) -> tuple[list, Any, str]:
    from alloop.commands.label import Progress
    from alloop.errors import AlloopError
    from alloop.labeling.factory import labeler_for

    name, tag = record.get("name"), record.get("tag")
    if not name:
        raise AlloopError(f"{args.model} does not record the fidelity preset of its '{args.prior}' head: label "
                          "FRAMES with alloop label and give --energy-key/--forces-key")
    fidelity = _recorded_fidelity(name, tag, args)
    labeler = labeler_for(fidelity, threads=args.threads)
    software = "tblite" if fidelity.family == "xtb" else "PySCF"
    progress = Progress(len(structures), stream=None if log else io.StringIO())
    results = []
    try:
        for atoms in structures:
            results.append(labeler.label(atoms))
            progress.update(results[-1])
    finally:
        progress.close()
    kept = [(a, r) for a, r in zip(structures, results, strict=True) if r.ok]
    if not kept:
        raise AlloopError(f"{software} ({name}) failed on every frame of {args.frames}")
    cpu = sum(r.cpu_seconds for r in results)
    labels = ([r.energy_eV for _, r in kept], [r.forces_eV_per_A for _, r in kept])
    failed = len(results) - len(kept)
    state = f" at charge {fidelity.charge}, 2S {fidelity.spin}" if fidelity.charge or fidelity.spin else ""
    return [a for a, _ in kept], labels, (f"{software} {name}{state}: {len(kept)} frames labelled in {cpu:.1f} CPU s"
                                          + (f", {failed} failed and left out" if failed else ""))


#: the charges and 2S searched for the ones that reproduce a head's recorded fidelity hash
_CHARGES, _SPINS = range(-3, 4), range(0, 5)


def _recorded_fidelity(name: str, tag: str | None, args: argparse.Namespace) -> Any:
    """Preset ``name`` at the charge and spin the head was trained at: ``--charge``/``--spin`` when given (checked
    against the recorded hash ``tag``), else the ones among small charges and spins whose hash is ``tag``."""
    from alloop.errors import AlloopError
    from alloop.fidelity import load_fidelity

    given = load_fidelity(name, charge=args.charge, spin=args.spin)
    if not tag or not re.fullmatch(r"[0-9a-f]{16}", tag) or given.hash() == tag:  # no hash recorded (a role name)
        return given
    if args.charge is None and args.spin is None:
        for charge in _CHARGES:
            for spin in _SPINS:
                found = load_fidelity(name, charge=charge, spin=spin)
                if found.hash() == tag:
                    return found
    raise AlloopError(f"the '{args.prior}' head was trained at fidelity {tag}, but preset '{name}' at charge "
                      f"{given.charge} and 2S {given.spin} is {given.hash()} (the preset changed, or the frames' "
                      "--charge/--spin differ): label FRAMES yourself and give --energy-key/--forces-key")


def _dataset(structures: list, labels: Any, fidelity: str) -> Any:
    from alloop.training.data import FrameDataset

    energies, forces = labels
    return FrameDataset.from_arrays([a.numbers for a in structures], [a.positions for a in structures],
                                    energy=energies, forces=forces, fidelity=fidelity)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from alloop.errors import AlloopError
    from alloop.evaluation.metrics import evaluate_model
    from alloop.io import labels_under, read_structures
    from alloop.potentials.checkpoint import load_checkpoint, save_checkpoint
    from alloop.training.refine import RefineSettings, refine_representation

    _check_args(args)
    if args.method == "rr":
        from alloop.commands._refine_radius import run_rr

        return run_rr(args)
    settings = RefineSettings(steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                              energy_weight=args.energy_weight, seed=args.seed, threads=args.threads)
    started = time.perf_counter()
    loaded, metadata = load_checkpoint(args.model)
    model = _two_head(loaded, args.model, args.prior, args.target)
    structures = read_structures(args.frames)
    unknown = {int(z) for a in structures for z in a.numbers} - set(model.elements)
    if unknown:
        raise AlloopError(f"{args.frames} has elements {sorted(unknown)} that the model does not know "
                          f"{list(model.elements)}")
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    expensive = None
    if args.expensive_energy_key:
        labels = labels_under(structures, args.expensive_energy_key, args.expensive_forces_key, args.frames)
        if labels is None:
            raise AlloopError(f"{args.frames} has no labels under "
                              f"'{args.expensive_energy_key}'/'{args.expensive_forces_key}'")
        expensive = _dataset(structures, labels, args.target)
    frames, labels, source = _prior_labels(args, model, structures, log)
    prior = _dataset(frames, labels, args.prior)
    model.use_head(args.target)
    before = evaluate_model(model, expensive) if expensive is not None else None
    result = refine_representation(model, prior, settings, args.prior, args.target, log=log)
    after = evaluate_model(model, expensive) if expensive is not None else None
    output = Path(args.output) if args.output else Path(args.model).with_name(
        f"{Path(args.model).stem}-refined{Path(args.model).suffix}")
    record = {**{k: v for k, v in asdict(result).items() if k != "history"}, "frames": str(args.frames),
              "labels": source, "settings": asdict(settings), "source_model": str(args.model)}
    if before is not None:
        record["expensive_before"], record["expensive_after"] = before, after
    save_checkpoint(model, output, {**metadata, "refinements": [*metadata.get("refinements", []), record]})
    print(f"refined {args.model} on {result.n_frames} frames (labels: {source})")
    print(f"'{args.prior}' head: loss {result.prior_loss_before:.5g} -> {result.prior_loss_after:.5g}, force MAE "
          f"{result.prior_force_mae_before:.4f} -> {result.prior_force_mae_after:.4f} eV/A "
          f"({result.steps} steps, {result.seconds:.1f} s)"
          + (": it did not go down, the representation is unchanged" if result.reverted else ""))
    if before is not None and after is not None and expensive is not None:
        print(f"'{args.target}' head: force MAE {before['force_mae_eV_per_A']:.4f} -> {after['force_mae_eV_per_A']:.4f} "
              f"eV/A, energy MAE {before['energy_mae_eV']:.4f} -> {after['energy_mae_eV']:.4f} eV "
              f"({len(expensive)} frames)")
    print(f"wrote {output} ('{args.target}' head active; {time.perf_counter() - started:.1f} s)")
    return 0
