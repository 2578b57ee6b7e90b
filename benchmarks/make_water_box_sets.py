"""Reference data for a water-box campaign: independent cheap-level MD of liquid water, frames relabelled.

``--trajectories`` Langevin runs (ASE, ``--timestep`` fs, friction 0.01/fs) of ``--waters`` molecules in a
cube at 1 g/cm^3 (:func:`alloop.testing.cells.water_box`, a different seed per run: independent starts) at
``--temperature`` on the ``--md-fidelity`` surface (default GFN1-xTB through tblite, periodic: ~0.15 s per
step for 8 waters); after ``--equilibrate`` ps each run records a frame every 10 fs (the trajectory, for
structure such as the O-O radial distribution) and ``--frames`` frames evenly spaced over its production
part, which are labelled at ``--label-fidelity`` (default PBE/GTH-DZVP, ~100 CPU s per 8-water frame) on a
local Dask cluster of ``--workers`` processes. Writes to ``--out``:

- ``water<N>_<T>K_eqtest_<label fidelity>.extxyz``: the labelled test frames (energy, forces, cell, pbc);
- ``water<N>_<T>K_eqtraj_<md fidelity>.extxyz``: every recorded MD frame (no labels);
- ``water<N>_<T>K_eq_summary.json``: settings, per-run temperature and O-O distances, costs, label statuses.

The runs go in parallel over ``--workers`` processes; each finished run's trajectory is written at once (in
run order), so a killed script loses at most the runs in progress and the labels. Prints a table per run.

``--starts FILE`` runs run k from the k-th box of an extxyz file instead (e.g. the reline boxes of
``build_reline.py --starts``; the files are then named after FILE, ``reline_1fu_350K_eq...``). Boxes whose atoms
carry tags (molecule numbers) are checked at every recorded frame: the largest covalent-bond stretch against
the start and the number of bonds formed between molecules (e.g. a proton transfer), both in the run's summary.

Labels are written run by run (the test file grows after each run's frames are labelled), the summary after each
run's MD: a killed script keeps every finished run's trajectory and labels, and the same command again reuses them
(it runs the missing runs and labels the frames not yet labelled; other MD settings with the same files are
refused).

    python benchmarks/make_water_box_sets.py                       # 8 waters, 300 K, 2 x (0.5 + 2) ps, 2 x 10 frames
    python benchmarks/make_water_box_sets.py --quick               # 1 water, 2 x 0.1 ps, 2 x 2 frames, SZV
    python benchmarks/make_water_box_sets.py --starts benchmarks/data/reline_1fu_starts.extxyz --temperature 350 \
        --trajectories 3 --ps 2.5 --frames 8 --workers 1           # the reline reference (issue 46)
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read
from lib.box_md import cheap_langevin
from lib.common import DATA, markdown_table

from alloop.fidelity import load_fidelity
from alloop.io import attach_label, write_atomic, write_extxyz
from alloop.system.structures import pair_distances
from alloop.testing.cells import water_box

RECORD_FS = 10.0


def start_box(seed: int, args: argparse.Namespace) -> Atoms:
    """Run ``seed``'s starting box: the ``seed``-th box of ``--starts``, or a fresh water box."""
    if args.starts is None:
        return water_box(args.waters, seed=seed)
    return read(args.starts, index=seed)


def run_md(seed: int, args: argparse.Namespace) -> tuple[list[Atoms], dict]:
    """One independent run: its recorded frames (after equilibration) and a summary."""
    from lib.bonds import bond_check, bonds

    atoms = start_box(seed, args)
    tags = atoms.get_tags()
    checked = bool(tags.any())
    if checked:
        start_bonds = bonds(atoms)
        start_lengths = np.array([atoms.get_distance(i, j, mic=True) for i, j in start_bonds])
    stretch, new_bonds = 1.0, []
    dyn = cheap_langevin(atoms, args.md_fidelity, args.temperature, args.timestep, seed)
    calc = atoms.calc
    every = max(1, int(round(RECORD_FS / args.timestep)))
    n_equil = int(round(args.equilibrate * 1000 / args.timestep))
    n_total = n_equil + int(round(args.ps * 1000 / args.timestep))
    frames, temperatures = [], []
    start, cpu0 = time.perf_counter(), time.process_time()
    for step in range(0, n_total, every):
        dyn.run(every)
        if step + every > n_equil:
            frame = atoms.copy()
            frame.calc = None
            frame.wrap()
            frames.append(frame)
            temperatures.append(atoms.get_temperature())
            if checked:
                worst, new = bond_check(frame, start_bonds, start_lengths)
                stretch, new_bonds = max(stretch, worst), [*new_bonds, new]
        if (step // every) % 100 == 0:
            print(f"  run {seed}: {(step + every) * args.timestep / 1000:.2f} / {n_total * args.timestep / 1000:.2f} ps",
                  flush=True)
    summary = {"seed": seed, "frames": len(frames), "md_cpu_seconds": time.process_time() - cpu0,
               "md_wall_seconds": time.perf_counter() - start, "steps": n_total, "labels": calc.n_calls,
               "temperature_mean_K": float(np.mean(temperatures)), "temperature_std_K": float(np.std(temperatures))}
    if checked:
        summary |= {"largest_bond_stretch": stretch, "frames_with_new_intermolecular_bonds": int(np.count_nonzero(
            new_bonds)), "most_new_intermolecular_bonds": int(max(new_bonds))}
    if args.starts is None:
        oxygen = np.array([f.positions[f.numbers == 8] for f in frames])
        d = pair_distances(oxygen, frames[0].cell.array)
        closest = np.where(np.eye(d.shape[-1], dtype=bool), np.inf, d).min(axis=(1, 2))
        summary |= {"min_OO_A": float(closest.min()), "mean_closest_OO_A": float(closest.mean())}
    return frames, summary


def pick(frames: list[Atoms], n: int) -> list[Atoms]:
    """``n`` frames evenly spaced over a run (the last ones of each interval: decorrelated)."""
    index = np.linspace(0, len(frames) - 1, n + 1)[1:].round().astype(int)
    return [frames[k] for k in index]


def label(frames: list[Atoms], args: argparse.Namespace) -> tuple[list[Atoms], dict]:
    from alloop.campaign.execution.cluster import open_client
    from alloop.campaign.execution.labeling_pool import label_all

    fidelity = load_fidelity(args.label_fidelity)
    with open_client(n_workers=args.workers, threads_per_worker=1) as client:
        results = label_all(client, [(f"f{k}", a) for k, a in enumerate(frames)], fidelity,
                            on_result=lambda key, r: print(f"  {key}: {r.status.value} {r.cpu_seconds:.0f} CPU s",
                                                           flush=True))
    out, statuses = [], {}
    for k, atoms in enumerate(frames):
        r = results[f"f{k}"]
        statuses[r.status.value] = statuses.get(r.status.value, 0) + 1
        if r.ok:
            out.append(attach_label(atoms, r.energy_eV, r.forces_eV_per_A,
                                    {"fidelity": fidelity.name, "fidelity_hash": fidelity.hash(),
                                     "cpu_seconds": r.cpu_seconds}))
    cpu = float(sum(r.cpu_seconds for r in results.values()))
    return out, {"statuses": statuses, "label_cpu_seconds": cpu}


#: the settings a finished run's trajectory depends on; and those its labels depend on
MD_KEYS = ("waters", "temperature", "timestep", "equilibrate", "ps", "md_fidelity", "starts")
LABEL_KEYS = ("frames", "label_fidelity")


def resume(summary_path: Path, traj_path: Path, settings: dict) -> tuple[list[dict], list[Atoms], dict]:
    """The finished runs, their recorded frames and the label counts of an earlier call with the same settings
    (nothing when there was none); an earlier call with other settings is refused (its files would be mixed)."""
    fresh: dict = {"statuses": {}, "label_cpu_seconds": 0.0}
    if not summary_path.is_file():
        return [], [], fresh
    old = json.loads(summary_path.read_text())
    theirs, ours = ({k: s.get(k) for k in MD_KEYS} for s in (old["settings"], settings))
    if theirs != ours:
        raise SystemExit(f"{summary_path} was made with {theirs}, not {ours}: remove it or use another --out")
    frames = read(traj_path, ":") if traj_path.is_file() else []
    if sum(r["frames"] for r in old["runs"]) != len(frames):
        raise SystemExit(f"{traj_path} holds {len(frames)} frames, not the {sum(r['frames'] for r in old['runs'])} "
                         f"of the runs in {summary_path}: remove both")
    same_labels = all(old["settings"].get(k) == settings[k] for k in LABEL_KEYS)
    return old["runs"], frames, old.get("labels", fresh) if same_labels else fresh


def _oo(run: dict) -> str:
    if "min_OO_A" not in run:
        return (f"largest bond stretch x{run['largest_bond_stretch']:.2f}, frames with a bond between molecules "
                f"{run['frames_with_new_intermolecular_bonds']}") if "largest_bond_stretch" in run else "-"
    if not np.isfinite(run["min_OO_A"]):
        return "- (one water)"
    return f"{run['min_OO_A']:.2f} / {run['mean_closest_OO_A']:.2f}"


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, str]:
    """The command line (``--quick``'s settings filled in) and the files' name tag."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--waters", type=int, default=8)
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--timestep", type=float, default=0.5, help="fs")
    p.add_argument("--equilibrate", type=float, default=0.5, help="ps per run before recording")
    p.add_argument("--ps", type=float, default=2.0, help="recorded ps per run")
    p.add_argument("--trajectories", type=int, default=2)
    p.add_argument("--frames", type=int, default=10, help="labelled frames per run")
    p.add_argument("--md-fidelity", default="gfn1-xtb")
    p.add_argument("--label-fidelity", default="pbe-gth-dzvp")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=DATA)
    p.add_argument("--starts", type=Path, help="extxyz of starting boxes (run k from box k) instead of water boxes")
    p.add_argument("--quick", action="store_true", help="1 water, 2 x 0.1 ps, 2 frames per run at pbe-gth-szv")
    args = p.parse_args(argv)
    if args.quick:
        args.waters, args.equilibrate, args.ps, args.frames, args.label_fidelity = 1, 0.02, 0.1, 2, "pbe-gth-szv"
    if args.starts is None:
        return args, f"water{args.waters}_{args.temperature:g}K"
    n_boxes = len(read(args.starts, ":"))
    if n_boxes < args.trajectories:
        p.error(f"--starts {args.starts} holds {n_boxes} boxes, fewer than --trajectories {args.trajectories}")
    return args, f"{args.starts.stem.removesuffix('_starts')}_{args.temperature:g}K"


def label_runs(args: argparse.Namespace, runs: list[dict], trajectory: list[Atoms], test_path: Path,
               summary_path: Path, summary: dict) -> list[Atoms]:
    """Label ``--frames`` frames of each run (those not labelled yet), saving the set and the summary after each
    run; returns the labelled frames."""
    labels = summary["labels"]
    labelled = read(test_path, ":") if test_path.is_file() and labels["statuses"] else []
    first = 0
    for run in runs:
        picked = pick(trajectory[first:first + run["frames"]], args.frames)
        first += run["frames"]
        missing = [f for f in picked if not any(np.allclose(f.positions, x.positions, atol=1e-6) for x in labelled)]
        if not missing:
            continue
        done, got = label(missing, args)
        labelled += done
        for status, count in got["statuses"].items():
            labels["statuses"][status] = labels["statuses"].get(status, 0) + count
        labels["label_cpu_seconds"] += got["label_cpu_seconds"]
        write_extxyz(test_path, labelled)
        write_atomic(summary_path, json.dumps(summary, indent=1).encode())
        print(f"run {run['seed']}: labelled {len(done)} of {len(missing)} frames -> {test_path}", flush=True)
    return labelled


def main(argv: list[str] | None = None) -> int:
    args, tag = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    traj_path = args.out / f"{tag}_eqtraj_{args.md_fidelity}.extxyz"
    test_path = args.out / f"{tag}_eqtest_{args.label_fidelity}.extxyz"
    summary_path = args.out / f"{tag}_eq_summary.json"
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    runs, trajectory, labels = resume(summary_path, traj_path, settings)
    summary = {"settings": settings, "runs": runs, "labels": labels, "files": [traj_path.name, test_path.name]}
    todo = [seed for seed in range(args.trajectories) if seed not in {r["seed"] for r in runs}]
    if len(todo) < args.trajectories:
        print(f"{summary_path}: {args.trajectories - len(todo)} finished runs reused", flush=True)
    with ProcessPoolExecutor(max_workers=max(1, min(args.workers, len(todo) or 1))) as pool:
        for frames, run in pool.map(run_md, todo, [args] * len(todo)):
            trajectory += frames
            runs.append(run)
            write_extxyz(traj_path, trajectory)
            write_atomic(summary_path, json.dumps(summary, indent=1).encode())  # the run boundaries
            print(f"run {run['seed']}: {len(frames)} frames, {run['md_cpu_seconds']:.0f} MD CPU s -> {traj_path}",
                  flush=True)
    print(markdown_table(["run", "frames", "T mean (K)", "T std (K)", "closest O-O, min / mean (A) or bond check",
                          "MD CPU s"],
                         [[r["seed"], r["frames"], f"{r['temperature_mean_K']:.0f}", f"{r['temperature_std_K']:.0f}",
                           _oo(r), f"{r['md_cpu_seconds']:.0f}"] for r in runs]))
    labelled = label_runs(args, runs, trajectory, test_path, summary_path, summary)
    print(f"\n{len(labelled)} of {args.frames * len(runs)} frames labelled at {args.label_fidelity} "
          f"({labels['statuses']}, {labels['label_cpu_seconds']:.0f} CPU s) -> {test_path}")
    assert len(read(test_path, ":")) == len(labelled)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
