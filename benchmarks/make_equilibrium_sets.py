"""Equilibrium test and training-pool sets: long GFN2-xTB Langevin MD from several starts, relabelled by PySCF.

A test set must represent the ensemble users care about, not one short trajectory. For each set
(``test``: held out for scoring; ``pool``: candidates for random-frame training), ``--trajectories``
independent Langevin runs (0.5 fs, friction 0.01/fs, centre of mass fixed) start from the molecule's
torsional conformers (:func:`alloop.system.conformers.conformer_starts`, in turn) with Maxwell-Boltzmann velocities
drawn from their own seeds, are equilibrated for ``--equil-ps`` and run ``--ps`` more on the GFN2-xTB surface
(tblite). Frames are taken evenly over each run's production part (``--frames`` per set in all, far apart
in time: hundreds of fs for the defaults), then labelled at every ``--fidelity`` by alloop's PySCF labeller.

It prints, for every run and for the set, the conformer populations of the molecule's rotors (from the
dihedral every 10 fs of the whole production run, and from the chosen frames), so that independent runs can
be checked against each other, and writes per fidelity a lossless extxyz
``<molecule>_<T>K_eq<set>_<fidelity>.extxyz`` (same frames, same order), the frames' GFN2-xTB labels by
alloop's labeller (``..._gfn2-xtb.extxyz``) and ``<molecule>_<T>K_eq_summary.json`` (populations, MD and label
cost, per set; a run with other ``--sets`` adds its sets to the file and keeps the others). The xTB labels
are not the MD's own forces: under ``FixCom`` ASE returns constrained forces (a net force of up to 7 eV/A on
these frames, 0.6-0.8 eV/A off on the heavy atoms), which the companion files held until 2026-11-25;
``--relabel-xtb FILE...`` relabels such files in place (energies unchanged to 1e-8 eV).

Everything done is cached in ``<out>/cache-eq/`` (one file per run and per label), so a stopped run resumes.

    python benchmarks/make_equilibrium_sets.py                                   # ethanol 500 K, test + pool
    python benchmarks/make_equilibrium_sets.py --temperature 1000 --sets test --frames 100 --trajectories 5
    python benchmarks/make_equilibrium_sets.py --sets fresh --fidelity b3lyp-svp   # learning_curves.py's fresh test set
    python benchmarks/make_equilibrium_sets.py --sets pool2 --fidelity b3lyp-svp   # and its second pool
    python benchmarks/make_equilibrium_sets.py --ps 2 --equil-ps 0.2 --frames 6 --trajectories 2 --out /tmp/eq
    python benchmarks/make_equilibrium_sets.py --sets verdict indep --fidelity b3lyp-svp --frames 100   # issue 62
    python benchmarks/make_equilibrium_sets.py --molecule malonaldehyde --sets test pool verdict indep --fidelity b3lyp-svp

The molecules of the molecules benchmark (``lib/molecules.py``: malonaldehyde, aspirin, glycine, acetate, the ethoxy
radical, 2-chloroethanol) run their MD and get their labels (xTB and PySCF) at the table's charge and spin (2S),
recorded as ``charge`` and ``spin`` in their summary; ethanol and methanol are neutral closed-shell, as before.
``benchmarks/molecules.py --make-sets`` runs this script for them (``verdict`` at 500 and 900 K, ``pool`` at 500 K)::

    python benchmarks/make_equilibrium_sets.py --molecule acetate --sets verdict --frames 60 --fidelity b3lyp-svp

``indep`` runs its MD on GFN1-xTB (``--sampler``): an ensemble the GFN2-xTB pool and the campaigns' own
GFN2-xTB MD do not sample, relabelled at the expensive level (the frames' GFN2-xTB labels are written too).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tblite's OpenMP threads: one per process (several processes run)
import numpy as np  # noqa: E402
from lib.common import atomic_pickle, load_pickle  # noqa: E402
from lib.molecules import MOLECULES as TABLE  # noqa: E402

#: an ``ase.build.molecule`` name, or a structure file under benchmarks/data (its only start: no rotamers are made
#: for a file, whose molecule may have no real rotors, e.g. malonaldehyde's hydrogen-bonded ring); the molecules
#: benchmark's (``lib/molecules.py``) with their charge and spin
MOLECULES = {"ethanol": "CH3CH2OH", "methanol": "CH3OH", **{name: m.file for name, m in TABLE.items()}}
SET_SEEDS = {"test": 7_100_000, "pool": 7_200_000,
             # 2026-11-27, for benchmarks/learning_curves.py: a test set no default was tuned on, a second pool
             "fresh": 7_300_000, "pool2": 7_400_000,
             # 2026-11-28, issue 62: the verdict set (GFN2-xTB MD, seeds no choice was tuned on) and the
             # independent-sampler set (MD on another surface, --sampler gfn1-xtb, relabelled at the expensive level)
             "verdict": 7_500_000, "indep": 7_600_000}
#: the MD surface per sampler name (tblite's method names)
SAMPLERS = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
DT_FS, FRICTION_PER_FS, TRACE_EVERY_FS = 0.5, 0.01, 10.0


def charge_spin(molecule_name: str) -> tuple[int, int]:
    """The molecule's total charge and 2S: the molecules table's (``lib/molecules.py``), else neutral closed-shell."""
    entry = TABLE.get(molecule_name)
    return (entry.charge, entry.spin) if entry is not None else (0, 0)


def run_seed(set_name: str, temperature_K: float, k: int) -> int:
    return SET_SEEDS[set_name] + 1000 * int(round(temperature_K)) + k


def reference_structure(molecule_name: str):
    """The molecule's reference structure: ``ase.build.molecule`` or the file under benchmarks/data."""
    from ase.build import molecule
    from ase.io import read

    spec = MOLECULES[molecule_name]
    return read(Path(__file__).parent / "data" / spec) if spec.endswith(".xyz") else molecule(spec)


def md_starts(molecule_name: str) -> list:
    """The runs' starts, used in turn: the torsional conformers of a built molecule, the file's structure itself."""
    from alloop.system.conformers import conformer_starts

    ref = reference_structure(molecule_name)
    return [ref] if MOLECULES[molecule_name].endswith(".xyz") else conformer_starts(ref)


def run_trajectory(molecule_name: str, set_name: str, temperature_K: float, k: int, equil_ps: float, ps: float,
                   n_frames: int, cache: str, sampler: str = "gfn2-xtb") -> str:
    """One xTB Langevin run on the ``sampler`` surface at the molecule's charge and spin; caches its frames
    (positions, the sampler's energy and forces) and its dihedral trace."""
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
    from tblite.ase import TBLite

    from alloop.system.conformers import dihedrals, find_rotors

    path = Path(cache) / f"{set_name}_run{k:02d}.pkl"
    if path.exists():
        return str(path)
    starts = md_starts(molecule_name)
    atoms = starts[k % len(starts)].copy()
    rotors = find_rotors(reference_structure(molecule_name))
    atoms.set_constraint(FixCom())
    charge, spin = charge_spin(molecule_name)
    atoms.calc = TBLite(method=SAMPLERS[sampler], charge=charge, multiplicity=spin + 1, verbosity=0)
    rng = np.random.default_rng(run_seed(set_name, temperature_K, k))
    thermalize_momenta(atoms, temperature_K, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    dyn = Langevin(atoms, timestep=DT_FS * units.fs, temperature_K=temperature_K,
                   friction=FRICTION_PER_FS / units.fs, fixcm=False, rng=rng)
    n_equil = int(round(equil_ps * 1000 / DT_FS))
    n_prod = int(round(ps * 1000 / DT_FS))
    spacing = n_prod // n_frames
    trace_every = int(round(TRACE_EVERY_FS / DT_FS))
    frames, trace, temps = [], [], []
    t0, cpu0 = time.perf_counter(), time.process_time()
    for step, _ in enumerate(dyn.irun(n_equil + n_prod)):
        prod = step - n_equil
        if prod <= 0:
            continue
        if prod % trace_every == 0:
            trace.append(dihedrals(atoms.positions, rotors))
            temps.append(atoms.get_temperature())
        if prod % spacing == 0 and len(frames) < n_frames:
            frames.append({"positions": atoms.positions.copy(), "numbers": atoms.numbers.copy(),
                           "energy": float(atoms.get_potential_energy()), "forces": atoms.get_forces().copy(),
                           "time_fs": prod * DT_FS, "temperature_K": float(atoms.get_temperature())})
        if step and step % 10000 == 0:
            print(f"[{set_name} run {k}] step {step}/{n_equil + n_prod} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    atomic_pickle(path, {"frames": frames, "trace": np.array(trace), "mean_T": float(np.mean(temps)),
                          "md_cpu_seconds": time.process_time() - cpu0, "start": k % len(starts)})
    return str(path)


def label_frame(path: str, fidelity: str, charge: int = 0, spin: int = 0) -> tuple[str, dict[str, Any]]:
    """Label one cached frame at ``fidelity`` (alloop's labeller of its family, one thread) at total ``charge`` and
    2S ``spin``."""
    from ase import Atoms

    from alloop.fidelity import load_fidelity
    from alloop.labeling.factory import labeler_for
    from alloop.labeling.threads import set_compute_threads

    set_compute_threads(1)
    frame = load_pickle(Path(path))
    result = labeler_for(load_fidelity(fidelity, charge=charge, spin=spin), threads=1).label(
        Atoms(numbers=frame["numbers"], positions=frame["positions"]))
    return path, {"energy": float(result.energy_eV), "forces": np.asarray(result.forces_eV_per_A),
                  "status": result.status.value, "reason": result.reason, "cpu_seconds": float(result.cpu_seconds),
                  "fidelity_hash": result.fidelity_hash}


def relabel_xtb(paths: list[Path]) -> int:
    """Rewrite each extxyz with alloop's GFN2-xTB labels of its frames (info kept, ``cpu_seconds`` measured); prints
    how far the old forces and energies were."""
    from ase import Atoms
    from ase.io import read

    from alloop.fidelity import load_fidelity
    from alloop.io import attach_label, write_extxyz
    from alloop.labeling.factory import labeler_for
    from alloop.labeling.threads import set_compute_threads

    set_compute_threads(1)
    labeler = labeler_for(load_fidelity("gfn2-xtb"), threads=1)
    for path in paths:
        old = read(path, ":")
        new, force_diff, energy_diff = [], [], []
        for atoms in old:
            result = labeler.label(Atoms(numbers=atoms.numbers, positions=atoms.positions))
            if result.status.value != "ok":
                print(f"{path}: a frame failed to label ({result.reason}); file left as it was", file=sys.stderr)
                return 1
            force_diff.append(np.abs(result.forces_eV_per_A - atoms.get_forces()).max())
            energy_diff.append(abs(result.energy_eV - atoms.get_potential_energy()))
            info = {k: v for k, v in atoms.info.items() if k not in ("energy", "free_energy")}
            info.update(fidelity="gfn2-xtb", cpu_seconds=float(result.cpu_seconds), fidelity_hash=result.fidelity_hash)
            new.append(attach_label(Atoms(numbers=atoms.numbers, positions=atoms.positions), result.energy_eV,
                                    result.forces_eV_per_A, info))
        write_extxyz(path, new)
        print(f"{path.name}: {len(new)} frames relabelled; old labels off by up to {max(force_diff):.3f} eV/A "
              f"(forces) and {max(energy_diff):.2e} eV (energies)")
    return 0


def populations_table(rows: list[tuple[str, dict[str, dict[str, float]]]], names: dict[str, str]) -> str:
    lines = []
    for what, pops in rows:
        parts = [f"{names[label]}: " + " ".join(f"{b} {100 * v:5.1f}%" for b, v in p.items())
                 for label, p in pops.items()]
        lines.append(f"  {what:<28} " + " | ".join(parts))
    return "\n".join(lines)


def write_set(path: Path, frames: list[dict], labels: list[dict], fidelity: str, set_name: str) -> None:
    """The frames with one fidelity's labels, as lossless extxyz (alloop.io.write_extxyz)."""
    from ase import Atoms

    from alloop.io import attach_label, write_extxyz

    write_extxyz(path, [attach_label(Atoms(numbers=f["numbers"], positions=f["positions"]), lab["energy"],
                                     lab["forces"], {"frame_index": i, "trajectory": f"{set_name}{f['run']:02d}",
                                                     "time_fs": f["time_fs"], "temperature_K": f["temperature_K"],
                                                     "fidelity": fidelity, "cpu_seconds": lab.get("cpu_seconds", 0.0),
                                                     **({"fidelity_hash": lab["fidelity_hash"]}
                                                        if "fidelity_hash" in lab else {})})
                        for i, (f, lab) in enumerate(zip(frames, labels, strict=True))])


def holds_frames(path: Path, frames: list[dict]) -> bool:
    """Whether the extxyz file ``path`` exists and holds exactly these frames' elements and positions."""
    if not path.is_file():
        return False
    from ase.io import read

    held = read(path, index=":")
    return len(held) == len(frames) and all(
        np.array_equal(a.numbers, f["numbers"]) and np.allclose(a.positions, f["positions"], rtol=0, atol=1e-12)
        for a, f in zip(held, frames, strict=True))


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write ``summary`` to ``path``, merged into what is there: the sets of an earlier run with other ``--sets``
    stay, each set keeps the settings it was made with (``sets.<name>.settings``; a set of a file from before
    2026-11-27 gets the file's top-level ``settings``), and the top-level ``settings`` stay those of the first run
    (``al_vs_random.py`` reads the pool's frame count there)."""
    for entry in summary["sets"].values():
        entry["settings"] = summary["settings"]
    if path.is_file():
        old = json.loads(path.read_text())
        for entry in old.get("sets", {}).values():
            entry.setdefault("settings", old.get("settings"))
        summary = {**old, **{k: v for k, v in summary.items() if k != "settings"},
                   "sets": {**old.get("sets", {}), **summary["sets"]}}
    path.write_text(json.dumps(summary, indent=1))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--molecule", default="ethanol", choices=sorted(MOLECULES))
    p.add_argument("--temperature", type=float, default=500.0)
    p.add_argument("--sets", nargs="+", default=["test", "pool"], choices=sorted(SET_SEEDS))
    p.add_argument("--trajectories", type=int, default=6)
    p.add_argument("--ps", type=float, default=20.0, help="production length of each run (ps)")
    p.add_argument("--equil-ps", type=float, default=2.0)
    p.add_argument("--frames", type=int, default=150, help="frames per set (spread evenly over its runs)")
    p.add_argument("--fidelity", nargs="+", default=["b3lyp-svp", "hf-sto3g"])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--sampler", default=None, choices=sorted(SAMPLERS),
                   help="the MD surface (default: gfn1-xtb for the indep set, gfn2-xtb for the others)")
    p.add_argument("--out", default=str(Path(__file__).parent / "data"))
    p.add_argument("--relabel-xtb", nargs="+", type=Path, default=None, metavar="FILE",
                   help="relabel these ..._gfn2-xtb.extxyz files with alloop's GFN2-xTB labeller (frames and info kept) "
                        "and exit")
    return p.parse_args(argv)


def collect_set(s: str, runs: dict, args: argparse.Namespace, cache: Path, rotors: list,
                summary: dict[str, Any]) -> tuple[list[str], list[dict]]:
    """Set ``s``'s frames from its finished runs (each cached as a pickle: its path and the frame); prints its
    conformer populations and records them and the MD's CPU in ``summary``."""
    from alloop.system.conformers import basin_populations, basin_shares

    frame_paths: list[str] = []
    frames: list[dict] = []
    rows = []
    for k in range(args.trajectories):
        run = load_pickle(Path(runs[(s, k)].result()))
        rows.append((f"{s} run {k} (start {run['start']}, {run['mean_T']:.0f} K)",
                     basin_shares(run["trace"], rotors)))
        for i, frame in enumerate(run["frames"]):
            frame = dict(frame, run=k)
            fpath = cache / f"{s}_run{k:02d}_frame{i:03d}.pkl"
            if not fpath.exists():
                atomic_pickle(fpath, frame)
            frame_paths.append(str(fpath))
            frames.append(frame)
    traces = np.concatenate([load_pickle(Path(runs[(s, k)].result()))["trace"] for k in range(args.trajectories)])
    rows.append((f"{s}: all runs (10 fs trace)", basin_shares(traces, rotors)))
    pos = np.array([f["positions"] for f in frames])
    rows.append((f"{s}: its {len(pos)} frames", basin_populations(pos, rotors)))
    prefix = f"{args.molecule}_{args.temperature:g}K"
    print(f"conformer populations, {prefix} {s}:\n" + populations_table(rows, summary["rotors"]), flush=True)
    summary["sets"][s] = {"populations": {what: pops for what, pops in rows},
                          "md_cpu_seconds": sum(load_pickle(Path(runs[(s, k)].result()))["md_cpu_seconds"]
                                                for k in range(args.trajectories))}
    return frame_paths, frames


def label_sets(pool: ProcessPoolExecutor, fidelities: list[str], frame_paths: dict[str, list[str]],
               t_start: float, charge: int = 0, spin: int = 0) -> None:
    """Label every frame at every fidelity not labelled yet (each label cached beside its frame's pickle), at the
    molecule's ``charge`` and ``spin``."""
    jobs = {}
    for fid in fidelities:
        for fpaths in frame_paths.values():
            for fpath in fpaths:
                lpath = Path(fpath).with_suffix(f".{fid}.pkl")
                if not lpath.exists():
                    jobs[pool.submit(label_frame, fpath, fid, charge, spin)] = lpath
    print(f"{len(jobs)} labels to compute", flush=True)
    for n, fut in enumerate(as_completed(jobs), 1):
        _, lab = fut.result()
        atomic_pickle(jobs[fut], lab)
        if n % 10 == 0 or n == len(jobs):
            print(f"labels {n}/{len(jobs)} ({time.perf_counter() - t_start:.0f} s)", flush=True)


def write_sets(args: argparse.Namespace, out: Path, frames: dict[str, list[dict]], frame_paths: dict[str, list[str]],
               summary: dict[str, Any]) -> int:
    """One extxyz per set and fidelity (GFN2-xTB too); 1 when a frame failed to label, else 0."""
    prefix = f"{args.molecule}_{args.temperature:g}K"
    charge, spin = charge_spin(args.molecule)
    for s in args.sets:
        xtb_path = out / f"{prefix}_eq{s}_gfn2-xtb.extxyz"
        if not holds_frames(xtb_path, frames[s]):  # a rerun keeps the file (only its label timings would change)
            xtb = [dict(label_frame(fp, "gfn2-xtb", charge, spin)[1]) for fp in frame_paths[s]]  # ~2 ms each
            write_set(xtb_path, frames[s], xtb, "gfn2-xtb", s)
        for fid in args.fidelity:
            labs = [load_pickle(Path(fp).with_suffix(f".{fid}.pkl")) for fp in frame_paths[s]]
            bad = [i for i, lab in enumerate(labs) if lab["status"] != "ok"]
            if bad:
                print(f"{s} {fid}: frames {bad} failed to label; left out of every file of the set", file=sys.stderr)
                return 1
            write_set(out / f"{prefix}_eq{s}_{fid}.extxyz", frames[s], labs, fid, s)
            summary["sets"][s][f"{fid}_label_cpu_seconds"] = sum(lab["cpu_seconds"] for lab in labs)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.relabel_xtb:
        return relabel_xtb(args.relabel_xtb)

    from alloop.system.conformers import find_rotors

    out = Path(args.out)
    prefix = f"{args.molecule}_{args.temperature:g}K"
    cache = out / "cache-eq" / prefix
    cache.mkdir(parents=True, exist_ok=True)
    samplers = {s: args.sampler or ("gfn1-xtb" if s == "indep" else "gfn2-xtb") for s in args.sets}
    args.samplers = samplers
    ref = reference_structure(args.molecule)
    rotors = find_rotors(ref)
    names = {r.label: r.name(ref) for r in rotors}
    per_run = [args.frames // args.trajectories + (k < args.frames % args.trajectories)
               for k in range(args.trajectories)]
    summary: dict[str, Any] = {"settings": vars(args), "rotors": names, "sets": {}}
    charge, spin = charge_spin(args.molecule)
    if args.molecule in TABLE:  # the molecules table's: MD and labels at its charge and spin (ethanol's files unchanged)
        summary.update(charge=charge, spin=spin)
    t_start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        runs = {(s, k): pool.submit(run_trajectory, args.molecule, s, args.temperature, k, args.equil_ps, args.ps,
                                    per_run[k], str(cache), samplers[s])
                for s in args.sets for k in range(args.trajectories)}
        frame_paths: dict[str, list[str]] = {}
        frames: dict[str, list[dict]] = {}
        for s in args.sets:
            frame_paths[s], frames[s] = collect_set(s, runs, args, cache, rotors, summary)
        label_sets(pool, args.fidelity, frame_paths, t_start, charge, spin)
    if write_sets(args, out, frames, frame_paths, summary):
        return 1
    write_summary(out / f"{prefix}_eq_summary.json", summary)
    print(f"done in {time.perf_counter() - t_start:.0f} s; files {prefix}_eq*_*.extxyz in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
