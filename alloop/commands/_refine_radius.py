"""``alloop refine MODEL FRAMES.extxyz --method rr --training TRAIN.extxyz``: spectral radius refinement (RR).

Per frame of FRAMES the graph radius whose normalised-Laplacian spectrum is
nearest the mean spectrum of TRAIN's frames at the model's training cutoff
(:mod:`alloop.training.spectral_radius`), then the model's predictions with
that radius. The model is not changed and no checkpoint is written; ``-o``
writes FRAMES with the predictions. Only for architectures that accept another
graph radius (EGNN, two-head EGNN); others stop with a one-line error.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

import numpy as np

from alloop.errors import AlloopError

#: info of a label that a frame of predictions does not keep
LABEL_INFO = ("energy", "fidelity", "fidelity_hash", "cpu_seconds", "wall_seconds", "scf_cycles")


def parse_grid(text: str | None) -> tuple[float, float, float]:
    """``LOW:HIGH:STEP`` in Angstrom (None: the default grid)."""
    from alloop.training.spectral_radius import GRID_RANGE

    if text is None:
        return GRID_RANGE
    try:
        low, high, step = (float(x) for x in text.split(":"))
    except ValueError:
        raise AlloopError(f"--grid takes LOW:HIGH:STEP in Angstrom (e.g. 3:9:0.25), got {text!r}") from None
    return low, high, step


def _radii_summary(radii: np.ndarray, cutoff: float) -> str:
    values, counts = np.unique(radii, return_counts=True)
    parts = [f"{v:g}{' (cutoff)' if v == cutoff else ''}: {c}" for v, c in zip(values, counts, strict=True)]
    moved = int(np.sum(radii != cutoff))
    return f"chosen radius (A): frames  {', '.join(parts)}  ({moved} of {radii.size} frames off the cutoff)"


def _reference(args: argparse.Namespace, model: Any, structures: list, head: str | None) -> Any:
    """The frames' reference labels for the before/after errors, as a FrameDataset, or None (with a note why)."""
    from alloop.io import labels_under
    from alloop.training.data import FrameDataset

    explicit = args.expensive_energy_key is not None
    energy_key, forces_key = ("energy", "forces") if not explicit else (args.expensive_energy_key,
                                                                          args.expensive_forces_key)
    labels = labels_under(structures, energy_key, forces_key, args.frames)
    if labels is None:
        if explicit:
            raise AlloopError(f"{args.frames} has no labels under '{energy_key}'/'{forces_key}'")
        return None
    tag = model.fidelities.get(head, {}).get("tag", "") if head else ""
    hashes = {a.info.get("fidelity_hash") for a in structures} - {None}
    if not explicit and re.fullmatch(r"[0-9a-f]{16}", tag) and hashes and hashes != {tag}:
        print(f"note: {args.frames} is labelled at fidelity {', '.join(sorted(hashes))}, the '{head}' head was "
              f"trained at {tag}: no errors (name matching labels with --expensive-energy-key/--expensive-forces-key)",
              file=sys.stderr)
        return None
    energies, forces = labels
    return FrameDataset.from_arrays([a.numbers for a in structures], [a.positions for a in structures],
                                    energy=energies, forces=forces, fidelity="reference")


def _write(path: str, structures: list, result: Any, source: str) -> None:
    from ase.calculators.singlepoint import SinglePointCalculator

    from alloop.io import write_extxyz

    offsets = np.concatenate([[0], np.cumsum([len(a) for a in structures])])
    out = []
    for k, atoms in enumerate(structures):
        frame = atoms.copy()
        for key in LABEL_INFO:
            frame.info.pop(key, None)
        frame.info.update(graph_radius=float(result.radii[k]), predicted_by=source)
        frame.calc = SinglePointCalculator(frame, energy=float(result.energies[k]),
                                           forces=result.forces[offsets[k]:offsets[k + 1]])
        out.append(frame)
    write_extxyz(path, out)


def run_rr(args: argparse.Namespace) -> int:
    """The ``--method rr`` path of ``alloop refine``."""
    import torch

    from alloop.evaluation.metrics import error_metrics
    from alloop.io import read_structures
    from alloop.potentials.checkpoint import load_checkpoint
    from alloop.potentials.inference import predict
    from alloop.potentials.two_head import TwoHeadPotential
    from alloop.training.spectral_radius import check_applicable, radius_grid, refine_radius_predict

    if not args.training:
        raise AlloopError("--method rr needs --training TRAIN.extxyz (frames of the model's training set)")
    low, high, step = parse_grid(args.grid)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.model)
    check_applicable(model)
    head = None
    if isinstance(model, TwoHeadPotential):
        head = args.target
        if head not in model.head_names:
            raise AlloopError(f"{args.model} has no '{head}' head (it has {', '.join(model.head_names)})")
        model.use_head(head)
    structures = read_structures(args.frames)
    training = read_structures(args.training)
    unknown = {int(z) for a in structures for z in a.numbers} - set(model.elements)
    if unknown:
        raise AlloopError(f"{args.frames} has elements {sorted(unknown)} that the model does not know "
                          f"{list(model.elements)}")
    reference = _reference(args, model, structures, head)
    result = refine_radius_predict(model, structures, training, radius_grid(model.cutoff, low, high, step),
                                   batch_size=args.batch_size)
    which = f" ('{head}' head)" if head else ""
    print(f"spectral radius refinement of {args.model}{which} on {len(structures)} frames of {args.frames}; reference: "
          f"{len(training)} frames of {args.training} at the training cutoff {model.cutoff:g} A; grid {low:g} to "
          f"{high:g} A by {step:g} A ({result.choose_cpu_seconds:.2f} CPU s for the spectra)")
    print(_radii_summary(result.radii, model.cutoff))
    if reference is not None:
        before = error_metrics(reference, *predict(model, structures, batch_size=args.batch_size))
        after = error_metrics(reference, result.energies, result.forces)
        print(f"force MAE {before['force_mae_eV_per_A']:.4f} -> {after['force_mae_eV_per_A']:.4f} eV/A, energy MAE "
              f"{before['energy_mae_eV']:.4f} -> {after['energy_mae_eV']:.4f} eV (training cutoff -> chosen radii)")
    if args.output:
        _write(args.output, structures, result, str(args.model))
        print(f"wrote {args.output} (predictions as energy/forces, the radius as graph_radius)")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0
