"""MD of a periodic box with trained models: stability and radial distributions against the reference's.

For each model (a run directory, its newest model at the expensive fidelity, a checkpoint file, or
``sevennet-0`` for the pretrained model without fine-tuning) and each ``--temperatures`` value,
``--replicas`` Langevin replicas (0.5 fs, friction 0.01/fs) start from independent boxes and run ``--ps``
picoseconds in one batched model call per step (:func:`alloop.md.run_segment` in the fixed cell, stability
guards on: a covalent bond beyond ``--max-bond-factor`` x its length, two atoms closer than 0.6 A, a running
temperature above 3 T). The boxes: water (:func:`alloop.testing.cells.water_box` with seeds 1000 + r, none of
them a reference start), or replica r from box r (cycling) of ``--starts FILE`` (e.g. the reline melt); each is
melted by ``--equilibrate-ps`` of GFN1-xTB Langevin MD first, so that the model's MD starts from a liquid.
Printed per model and temperature: the ps each replica ran before its first guard failure, and for each
``--pairs`` element pair (default O-O) the g(r) of the frames after ``--skip-ps`` (every 10 fs, all periodic
images, so r may exceed half the box; pairs within one molecule left out when the boxes' atoms carry tags,
molecule numbers, as the reline boxes do) against the reference trajectory's (``--reference``, the GFN1-xTB MD
of ``make_water_box_sets.py``): the first peak's position and height, the first minimum, and the RMS of
g_model - g_ref over [``--rms-from``, r_max] A. The difference between the reference's own independent runs is the
noise floor of that RMS.

The reference is GFN1-xTB MD, not MD at the level the model learns (PBE/GTH-DZVP; a PBE AIMD of the box
costs ~100 CPU s per step here): an RDF difference mixes the model's error with the gap between the two
levels, and the zero-shot row shows where SevenNet-0 alone goes.

    python benchmarks/water_box_md.py campaigns/water-box.run sevennet-0 --ps 5
    python benchmarks/water_box_md.py sevennet-0 --ps 0.2 --replicas 2 --temperatures 300   # a quick look
    python benchmarks/water_box_md.py sevennet-0 --starts benchmarks/data/reline_1fu_melt.extxyz \
        --reference benchmarks/data/reline_1fu_350K_eqtraj_gfn1-xtb.extxyz.gz --temperatures 350 --equilibrate-ps 0 \
        --replicas 2 --ps 1.5 --skip-ps 0.25 --pairs Cl-H O-H --rms-from 1.4               # reline (issue 46)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.io import read
from lib.common import DATA, markdown_table
from lib.rdf import pair_rdf, parse_pair, reference_runs, rms

RECORD_FS = 10.0
#: the columns of the table: one row per model, temperature and pair (and the reference's per pair)
HEADER = ["model", "T (K)", "ps in g(r)", "ps to first guard failure, per replica", "pair", "first peak r / g",
          "first min r", "RMS g - g_ref", "wall s"]


def peaks(r: np.ndarray, g: np.ndarray, window: tuple[float, float]) -> tuple[float, float, float]:
    """First peak position and height (the highest point inside ``window``, A), and the first minimum after it."""
    smooth = np.convolve(g, np.ones(3) / 3, mode="same")
    first = int(np.argmax(np.where((r > window[0]) & (r < window[1]), smooth, -np.inf)))
    after = np.where((r > r[first]) & (r < r[first] + 1.6), smooth, np.inf)
    return float(r[first]), float(smooth[first]), float(r[int(np.argmin(after))])


def peak_window(pair: tuple[int, int]) -> tuple[float, float]:
    """Where the first peak is looked for: water's O-O at 2.2-3.3 A, hydrogen-bond pairs X...H at 1.4-3.0 A."""
    return (2.2, 3.3) if pair == (8, 8) else (1.4, 3.0)


def load_model(source: str, threads: int, elements: list[int] | None = None):
    import torch

    from alloop.potentials.registry import build_model, model_preset

    torch.set_num_threads(threads)
    if source == "sevennet-0":
        preset = dict(model_preset("sevennet-0"))
        return (build_model(preset.pop("architecture"), elements or [1, 8], **preset).eval(),
                "SevenNet-0 (no fine-tuning)")
    from alloop.deploy.loading import load_trained

    trained = load_trained(Path(source))
    return trained.model.eval(), trained.description


def start_boxes(n_waters: int, args: argparse.Namespace) -> list[Atoms]:
    """The replicas' boxes before melting: ``--starts``' boxes (cycling) or fresh water boxes."""
    if args.starts is not None:
        boxes = read(args.starts, ":")
        return [boxes[r % len(boxes)].copy() for r in range(args.replicas)]
    from alloop.testing.cells import water_box

    return [water_box(n_waters, seed=1000 + r) for r in range(args.replicas)]


def run_md(model, n_waters: int, temperature: float, args: argparse.Namespace) -> tuple[list[list[Atoms]], list]:
    """Batched replicas from independent boxes; each replica's recorded frames and its stop (None: ran through)."""
    from alloop.md import MDSettings, StabilityGuards, init_replicas, run_segment

    boxes = start_boxes(n_waters, args)
    if args.equilibrate_ps > 0:
        from lib.box_md import liquid

        boxes = [liquid(box, temperature, args.equilibrate_ps, seed=1000 + r) for r, box in enumerate(boxes)]
    states = [init_replicas(box, 1, temperature, args.seed * 1000 + r)[0] for r, box in enumerate(boxes)]
    settings = MDSettings(temperature_K=temperature, timestep_fs=0.5, friction_per_fs=0.01)
    n_steps = int(round(args.ps * 1000 / settings.timestep_fs))
    every = int(round(RECORD_FS / settings.timestep_fs))
    guards = StabilityGuards.from_atoms(boxes[0], max_bond_stretch=args.max_bond_stretch, min_distance_A=0.6,
                                        temperature_K=temperature)
    t0, last = time.perf_counter(), [0.0]

    def progress(p) -> None:
        now = time.perf_counter()
        if now - last[0] > 60:
            last[0] = now
            print(f"  {temperature:g} K: step {p.step}/{n_steps} ({now - t0:.0f} s)", file=sys.stderr, flush=True)

    result = run_segment(model, boxes[0], states, n_steps, settings, every, guards, progress=progress)
    frames = []
    for traj in result.trajectories:
        replica = []
        for atoms in traj.to_atoms(boxes[0].numbers):
            atoms.cell, atoms.pbc = boxes[0].cell, True
            replica.append(atoms)
        frames.append(replica)
    return frames, result.stop_reasons


def parse_args(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="run directories, checkpoint files, or sevennet-0")
    p.add_argument("--reference", type=Path, default=DATA / "water8_300K_eqtraj_gfn1-xtb.extxyz")
    p.add_argument("--starts", type=Path, help="extxyz of starting boxes (replica r from box r, cycling); "
                   "default: water boxes of as many waters as the reference")
    p.add_argument("--pairs", type=parse_pair, nargs="+", default=[(8, 8)], metavar="A-B",
                   help="element pairs whose g(r) is compared (default O-O)")
    p.add_argument("--rms-from", type=float, default=2.0, help="A: where the RMS of g - g_ref starts")
    p.add_argument("--save-frames", type=Path, help="folder: every model's recorded frames per temperature (extxyz)")
    p.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 400.0])
    p.add_argument("--ps", type=float, default=5.0, help="picoseconds per replica")
    p.add_argument("--skip-ps", type=float, default=0.5, help="equilibration left out of the g(r)")
    p.add_argument("--replicas", type=int, default=4)
    p.add_argument("--equilibrate-ps", type=float, default=0.5,
                   help="GFN1-xTB MD of each starting box before the model's MD (0: start from the lattice)")
    p.add_argument("--max-bond-factor", type=float, default=1.5)
    p.add_argument("--r-max", type=float, default=5.0)
    p.add_argument("--bin", type=float, default=0.1, help="A")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    args = p.parse_args(argv)
    return p, args


def reference_rows(args: argparse.Namespace, runs: list[list[Atoms]], names: list[str],
                   tags: np.ndarray | None) -> tuple[np.ndarray, dict[str, np.ndarray], list[list[str]]]:
    """The bins, the reference's g(r) per pair, and its table rows (with the run-vs-run RMS: the noise floor)."""
    r, g_ref = None, {}
    for name, pair in zip(names, args.pairs, strict=True):
        r, g_ref[name] = pair_rdf([a for run in runs for a in run], pair, args.r_max, args.bin, tags)
    rows = []
    for name, pair in zip(names, args.pairs, strict=True):
        ref_peak = peaks(r, g_ref[name], peak_window(pair))
        floor = ""
        if len(runs) > 1:
            g_runs = [pair_rdf(run, pair, args.r_max, args.bin, tags)[1] for run in runs]
            spread = [rms(g_runs[a], g_runs[b], r, args.rms_from) for a in range(len(runs)) for b in range(a)]
            floor = f"{min(spread):.3f}-{max(spread):.3f} (run vs run)"
        rows.append([f"reference: {args.reference.name}", "", f"{sum(len(x) for x in runs) * RECORD_FS / 1000:.1f}",
                     "", name, f"{ref_peak[0]:.2f} / {ref_peak[1]:.2f}", f"{ref_peak[2]:.2f}", floor, ""])
    return r, g_ref, rows


def save_frames(args: argparse.Namespace, source: str, temperature: float, frames: list[list[Atoms]]) -> None:
    """Every recorded frame of a model's replicas at one temperature, to ``--save-frames``."""
    from alloop.io import write_extxyz

    path = args.save_frames / f"{source.replace('/', '_')}_{temperature:g}K.extxyz"
    args.save_frames.mkdir(parents=True, exist_ok=True)
    write_extxyz(path, [a for f in frames for a in f])
    print(f"  frames -> {path}", file=sys.stderr, flush=True)


def model_rows(args: argparse.Namespace, source: str, reference: tuple, n_waters: int, tags: np.ndarray | None,
               curves: dict[str, list[float]]) -> list[list[str]]:
    """One model's MD at every temperature: a row per pair (stability, peaks, RMS against the reference) printed
    as it comes; its g(r) curves go into ``curves``. ``reference``: (atomic numbers, bins, g_ref per pair)."""
    numbers, r, g_ref = reference
    names = ["-".join(chemical_symbols[z] for z in pair) for pair in args.pairs]
    skip = int(round(args.skip_ps * 1000 / RECORD_FS))
    model, description = load_model(source, args.threads, sorted({int(z) for z in numbers}))
    rows = []
    for temperature in args.temperatures:
        t0 = time.perf_counter()
        frames, stops = run_md(model, n_waters, temperature, args)
        ran = [len(f) * RECORD_FS / 1000 for f in frames]
        stable = " / ".join(f"{ps:.1f}" + ("" if stop is None else f" ({stop.code})") for ps, stop in
                            zip(ran, stops, strict=True))
        kept = [a for f in frames for a in f[skip:]]
        wall = time.perf_counter() - t0
        if args.save_frames is not None:
            save_frames(args, source, temperature, frames)
        for name, pair in zip(names, args.pairs, strict=True):
            if kept:
                _, g = pair_rdf(kept, pair, args.r_max, args.bin, tags)
                peak = peaks(r, g, peak_window(pair))
                curves[f"{description} {temperature:g} K {name}"] = g.tolist()
                cells = [f"{peak[0]:.2f} / {peak[1]:.2f}", f"{peak[2]:.2f}",
                         f"{rms(g, g_ref[name], r, args.rms_from):.3f}"]
            else:
                cells = ["-", "-", "- (no frame after the equilibration)"]
            rows.append([description, f"{temperature:g}", f"{len(kept) * RECORD_FS / 1000:.1f}", stable, name,
                         *cells, f"{wall:.0f}"])
            print(markdown_table(HEADER, rows[-1:]), file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    from alloop.allocator import reuse_freed_memory

    reuse_freed_memory()  # in-process training and MD, as the alloop command (docs/benchmarks.md: Memory reuse)
    p, args = parse_args(argv)
    runs = reference_runs(args.reference)
    n_waters = int(np.sum(runs[0][0].numbers == 8))
    tags = runs[0][0].get_tags()
    if not tags.any() and args.starts is not None:  # a reference written without tags: the starts' (same atom order)
        tags = read(args.starts, index=0).get_tags()
    tags = tags if tags.any() else None
    if args.starts is not None and any(list(b.numbers) != list(runs[0][0].numbers) for b in read(args.starts, ":")):
        p.error(f"--starts {args.starts}: its atoms differ from the reference's (elements or order)")
    names = ["-".join(chemical_symbols[z] for z in pair) for pair in args.pairs]
    r, g_ref, rows = reference_rows(args, runs, names, tags)
    curves = {"r_A": r.tolist(), **{f"reference {name}": g.tolist() for name, g in g_ref.items()}}
    for source in args.models:
        rows += model_rows(args, source, (runs[0][0].numbers, r, g_ref), n_waters, tags, curves)
    what = f"{n_waters} waters" if args.starts is None else f"{len(runs[0][0])} atoms ({args.starts.name})"
    print(f"{what}, {args.replicas} replicas x {args.ps:g} ps per model and temperature, g(r) every {RECORD_FS:g} fs "
          f"after {args.skip_ps:g} ps, bins {args.bin:g} A up to {args.r_max:g} A"
          + ("; pairs within one molecule left out" if tags is not None else ""))
    print(markdown_table(HEADER, rows))
    out = Path(os.environ.get("ALLOOP_RDF_OUT", "/tmp/box_rdf.json"))
    out.write_text(json.dumps(curves))
    print(f"g(r) curves -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
