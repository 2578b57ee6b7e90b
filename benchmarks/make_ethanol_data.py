"""Two-fidelity ethanol dataset at a temperature (default 500 K): HF/STO-3G Langevin MD, frames labelled at HF/STO-3G
and B3LYP/def2-SVP.

Two independent trajectories (``pool``: training candidates, ``test``: held out)
are run with ab initio Langevin MD on the cheap surface (``--temperature``, 0.5 fs, friction
0.01/fs, centre of mass fixed, Maxwell-Boltzmann velocities at 2 x T
from the G2 geometry of ``ase.build.molecule("CH3CH2OH")``, so that the kinetic
temperature settles near T as energy flows into the potential). The
first ``--equil-fs`` are discarded, then a frame is recorded every
``--every`` steps. The cheap label of a frame is the MD step's own HF/STO-3G
energy and forces (the positions after a Langevin step are the ones whose
forces were computed, which the script checks); every frame is then labelled
at B3LYP/def2-SVP. All labels come from ``alloop.labeling.pyscf_labeler.PySCFLabeler``
and carry its measured ``cpu_seconds``.

Work is spread over ``--workers`` processes with one compute thread each: the
two MD runs first, B3LYP labels as soon as frames exist. Everything done is
kept in a per-frame cache (``<out>/cache/``), so an interrupted run resumes
where it stopped (MD continues bit for bit from its last checkpoint, taken every ``--every`` steps).
At the end, four lossless extxyz files are written, ``ethanol_<T>K_short_{pool,test}_{hf-sto3g,b3lyp-svp}.extxyz``
(same frames, same order; two with ``--pool 0``), and the cache is removed (``--keep-cache`` keeps it).
The random seeds depend on the trajectory and the temperature (500 K keeps the seeds
the committed 500 K files were made with).

    python benchmarks/make_ethanol_data.py                      # 500 K: pool 150, test 50 into benchmarks/data
    python benchmarks/make_ethanol_data.py --temperature 300 --pool 50 --test 50
    python benchmarks/make_ethanol_data.py --temperature 1000 --pool 0 --test 50
    python benchmarks/make_ethanol_data.py --pool 4 --test 2 --equil-fs 5 --out /tmp/eth
    python benchmarks/make_ethanol_data.py --molecule methanol --pool 0 --test 50   # another H/C/O molecule
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
from lib.common import atomic_pickle, load_pickle

CHEAP, EXPENSIVE = "hf-sto3g", "b3lyp-svp"
TRAJ_SEEDS = {"pool": 20240501, "test": 20240502}


#: --molecule choices: name in the file names -> ase.build.molecule formula (all made of H, C, O: an ethanol model
#: can predict them, out of distribution)
MOLECULES = {"ethanol": "CH3CH2OH", "methanol": "CH3OH", "acetaldehyde": "CH3CHO", "dimethylether": "CH3OCH3"}


def prefix(temperature_K: float, name: str = "ethanol") -> str:
    """File-name prefix of a dataset, e.g. ``ethanol_500K_short``: short trajectories from one geometry (the
    equilibrium sets of make_equilibrium_sets.py are ``..._eq``)."""
    return f"{name}_{temperature_K:g}K_short"


def trajectory_seed(traj: str, temperature_K: float) -> int:
    """Seed of a trajectory at a temperature; 500 K gives the seeds of the original 500 K dataset."""
    return TRAJ_SEEDS[traj] + 100 * int(round(temperature_K - 500.0))


# --------------------------------------------------------------------------- cache helpers
def _frame_path(cache: Path, traj: str, k: int) -> Path:
    return cache / traj / f"frame_{k:04d}.pkl"


def _label_path(cache: Path, traj: str, k: int) -> Path:
    return cache / traj / f"{EXPENSIVE}_{k:04d}.pkl"


def _result_record(result: Any) -> dict[str, Any]:
    """A LabelResult as plain data (picklable without alloop classes)."""
    return {
        "energy_eV": float(result.energy_eV),
        "forces_eV_per_A": np.asarray(result.forces_eV_per_A, dtype=np.float64).copy(),
        "status": result.status.value,
        "reason": result.reason,
        "cpu_seconds": float(result.cpu_seconds),
        "wall_seconds": float(result.wall_seconds),
        "scf_cycles": int(result.scf_cycles),
        "fidelity_name": result.fidelity_name,
        "fidelity_hash": result.fidelity_hash,
    }


# --------------------------------------------------------------------------- MD on the cheap surface
def _md_start(atoms: Any, state_path: Path, traj: str, temperature_K: float) -> tuple[Any, int, int, float, Any]:
    """(rng, step, frames done, MD CPU s, last forces) of a trajectory: restored exactly from its checkpoint, or a
    fresh start with momenta at 2T, no net translation or rotation."""
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    if state_path.exists():
        state = load_pickle(state_path)
        atoms.set_positions(state["positions"], apply_constraint=False)  # exact restart: no FixCom rounding
        atoms.set_momenta(state["momenta"], apply_constraint=False)
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng_state"]
        return rng, state["step"], state["n_frames"], state["md_cpu_seconds"], state["forces"]
    rng = np.random.default_rng(trajectory_seed(traj, temperature_K))
    # start at 2T from the minimum: equipartition brings the kinetic temperature to ~T within a few fs
    thermalize_momenta(atoms, 2 * temperature_K, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    return rng, 0, 0, 0.0, None


def _frame_record(atoms: Any, traj: str, n_done: int, step: int, dt_fs: float) -> dict[str, Any]:
    """The current MD frame with its cheap label (the calculator's last one, checked to be at these positions)."""
    label = atoms.calc.last_result
    if not np.array_equal(atoms.calc.atoms.positions, atoms.positions):
        raise RuntimeError("MD bookkeeping: the last cheap label is not at the current positions")
    return {
        "traj": traj,
        "index": n_done,
        "md_step": step,
        "time_fs": step * dt_fs,
        "numbers": atoms.numbers.copy(),
        "positions": atoms.positions.copy(),
        "temperature_K": float(atoms.get_temperature()),
        "cheap": _result_record(label),
    }


def _md_state(atoms: Any, rng: Any, step: int, n_done: int, md_cpu: float, forces: Any) -> dict[str, Any]:
    """What an exact restart of the trajectory needs (see :func:`_md_start`)."""
    return {"positions": atoms.positions.copy(), "momenta": atoms.get_momenta().copy(),
            "rng_state": rng.bit_generator.state, "step": step, "n_frames": n_done, "md_cpu_seconds": md_cpu,
            "forces": np.array(forces)}


def run_md(traj: str, n_frames: int, equil_fs: float, every: int, cache: str, temperature_K: float,
           formula: str = "CH3CH2OH") -> dict[str, Any]:
    """Run (or resume) one trajectory until ``n_frames`` frames are cached; returns its totals."""
    from ase import units
    from ase.build import molecule
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin

    from alloop.fidelity import load_fidelity
    from alloop.labeling.calculator import LabelerCalculator
    from alloop.labeling.pyscf_labeler import PySCFLabeler
    from alloop.labeling.threads import set_compute_threads

    set_compute_threads(1)
    folder = Path(cache) / traj
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "md_state.pkl"
    atoms = molecule(formula)
    atoms.set_constraint(FixCom())  # ASE's recommended replacement for Langevin(fixcm=True)
    atoms.calc = LabelerCalculator(PySCFLabeler(load_fidelity(CHEAP), threads=1))
    dt_fs, friction_per_fs = 0.5, 0.01
    n_equil = int(round(equil_fs / dt_fs))
    rng, step, n_done, md_cpu, forces = _md_start(atoms, state_path, traj, temperature_K)
    dyn = Langevin(atoms, timestep=dt_fs * units.fs, temperature_K=temperature_K, friction=friction_per_fs / units.fs,
                   fixcm=False, rng=rng)
    t0 = time.perf_counter()
    while n_done < n_frames:
        forces = dyn.step(forces)
        step += 1
        md_cpu += atoms.calc.last_result.cpu_seconds
        record = step > n_equil and (step - n_equil) % every == 0
        if record:
            atomic_pickle(_frame_path(Path(cache), traj, n_done), _frame_record(atoms, traj, n_done, step, dt_fs))
            n_done += 1
        if record or step % every == 0:  # checkpoint (also during equilibration)
            atomic_pickle(state_path, _md_state(atoms, rng, step, n_done, md_cpu, forces))
        if record or step % 50 == 0:
            rate = (time.perf_counter() - t0) / max(atoms.calc.n_calls, 1)
            what = f"frame {n_done}/{n_frames}" if step > n_equil else f"equilibration {step}/{n_equil}"
            print(
                f"[md {traj}] {what} step {step} T={atoms.get_temperature():.0f} K "
                f"E={atoms.calc.last_result.energy_eV:.4f} eV ({rate:.2f} s wall/step)",
                flush=True,
            )
    return {"traj": traj, "steps": step, "md_cpu_seconds": md_cpu}


# --------------------------------------------------------------------------- expensive labels
def label_frame(traj: str, k: int, cache: str) -> dict[str, Any]:
    """Label one cached frame at the expensive fidelity and cache the result."""
    from ase import Atoms

    from alloop.fidelity import load_fidelity
    from alloop.labeling.pyscf_labeler import PySCFLabeler

    frame = load_pickle(_frame_path(Path(cache), traj, k))
    atoms = Atoms(numbers=frame["numbers"], positions=frame["positions"])
    result = PySCFLabeler(load_fidelity(EXPENSIVE), threads=1).label(atoms)
    record = _result_record(result)
    atomic_pickle(_label_path(Path(cache), traj, k), record)
    return {"traj": traj, "index": k, **{key: record[key] for key in ("status", "cpu_seconds", "wall_seconds")}}


# --------------------------------------------------------------------------- driver
def _schedule(targets: dict[str, int], args: argparse.Namespace, cache: Path) -> None:
    """Run the MD runs that are not finished, and expensive labels as frames appear, on ``args.workers`` processes."""

    def frames_ready(traj: str) -> int:
        return sum(1 for k in range(targets[traj]) if _frame_path(cache, traj, k).exists())

    def unlabelled() -> list[tuple[str, int]]:
        order = [t for t in ("test", "pool") if t in targets]  # the test set first: it is needed whatever the budget
        return [
            (t, k)
            for t in order
            for k in range(targets[t])
            if _frame_path(cache, t, k).exists() and not _label_path(cache, t, k).exists()
        ]

    t0 = time.perf_counter()
    wall_path = cache / "wall_seconds.json"
    wall_before = json.loads(wall_path.read_text()) if wall_path.exists() else 0.0
    with ProcessPoolExecutor(args.workers) as pool:
        running: dict[Future, tuple[str, Any]] = {}
        for traj, n in targets.items():
            if frames_ready(traj) < n:
                running[pool.submit(run_md, traj, n, args.equil_fs, args.every, str(cache), args.temperature,
                                    MOLECULES[args.molecule])] = ("md", traj)
        in_flight: set[tuple[str, int]] = set()
        while True:
            for item in unlabelled():
                if len(running) >= args.workers:
                    break
                if item not in in_flight:
                    running[pool.submit(label_frame, item[0], item[1], str(cache))] = ("label", item)
                    in_flight.add(item)
            if not running:
                break
            done, _ = wait(list(running), timeout=30, return_when=FIRST_COMPLETED)
            wall_path.write_text(json.dumps(wall_before + time.perf_counter() - t0))
            for fut in done:
                kind, what = running.pop(fut)
                out = fut.result()  # re-raises a worker's exception
                elapsed = time.perf_counter() - t0
                if kind == "md":
                    print(f"[md {what}] finished: {out['steps']} steps, {out['md_cpu_seconds']:.0f} CPU s", flush=True)
                else:
                    in_flight.discard(what)
                    n_lab = sum(
                        1 for t in targets for k in range(targets[t]) if _label_path(cache, t, k).exists()
                    )
                    print(
                        f"[{EXPENSIVE}] {what[0]} frame {what[1]}: {out['status']} {out['cpu_seconds']:.1f} CPU s "
                        f"{out['wall_seconds']:.1f} s wall; {n_lab}/{sum(targets.values())} labelled, "
                        f"{elapsed / 60:.1f} min elapsed",
                        flush=True,
                    )


def _write_outputs(targets: dict[str, int], cache: Path, out: Path, name: str) -> dict[str, Any]:
    """Write the four extxyz files from the cache; returns cost totals."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from alloop.io import write_extxyz

    totals: dict[str, Any] = {}
    for traj, n in targets.items():
        state = load_pickle(cache / traj / "md_state.pkl")
        totals[f"{traj}_md_steps"] = int(state["step"])
        totals[f"{traj}_md_cpu_seconds"] = float(state["md_cpu_seconds"])
        per_fid: dict[str, list[Atoms]] = {CHEAP: [], EXPENSIVE: []}
        for k in range(n):
            frame = load_pickle(_frame_path(cache, traj, k))
            labels = {CHEAP: frame["cheap"], EXPENSIVE: load_pickle(_label_path(cache, traj, k))}
            failed = {fid: rec for fid, rec in labels.items() if rec["status"] != "ok"}
            if failed:  # keep the files frame-aligned: a frame goes in both or in neither
                for fid, rec in failed.items():
                    print(f"warning: {traj} frame {k} {fid}: {rec['status']} {rec['reason']} (left out of both files)")
                continue
            for fid, rec in labels.items():
                atoms = Atoms(numbers=frame["numbers"], positions=frame["positions"])
                atoms.info.update(
                    frame_index=k,
                    trajectory=traj,
                    md_step=int(frame["md_step"]),
                    time_fs=float(frame["time_fs"]),
                    temperature_K=float(frame["temperature_K"]),
                    fidelity=rec["fidelity_name"],
                    fidelity_hash=rec["fidelity_hash"],
                    cpu_seconds=rec["cpu_seconds"],
                    wall_seconds=rec["wall_seconds"],
                    scf_cycles=rec["scf_cycles"],
                )
                atoms.calc = SinglePointCalculator(atoms, energy=rec["energy_eV"], forces=rec["forces_eV_per_A"])
                per_fid[fid].append(atoms)
        for fid, frames in per_fid.items():
            path = out / f"{name}_{traj}_{fid}.extxyz"
            write_extxyz(path, frames)
            cpu = sum(a.info["cpu_seconds"] for a in frames)
            totals[f"{traj}_{fid}_frames"] = len(frames)
            totals[f"{traj}_{fid}_label_cpu_seconds"] = cpu
            print(f"wrote {path} ({len(frames)} frames, {path.stat().st_size / 1e6:.2f} MB, labels {cpu:.0f} CPU s)")
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecule", choices=sorted(MOLECULES), default="ethanol",
                        help="the molecule (files <molecule>_<T>K_...; seeds as ethanol's)")
    parser.add_argument("--temperature", type=float, default=500.0, help="Langevin temperature (K)")
    parser.add_argument("--pool", type=int, default=150, help="frames in the pool trajectory (0: no pool)")
    parser.add_argument("--test", type=int, default=50, help="frames in the test trajectory")
    parser.add_argument("--equil-fs", type=float, default=100.0, help="discarded equilibration (fs)")
    parser.add_argument("--every", type=int, default=10, help="record a frame every this many 0.5 fs steps")
    parser.add_argument("--workers", type=int, default=2, help="processes (one compute thread each)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    parser.add_argument("--keep-cache", action="store_true", help="keep <out>/cache after writing the files")
    args = parser.parse_args(argv)
    if args.pool < 0 or args.test < 1 or args.every < 1 or args.workers < 1 or args.equil_fs < 0:
        parser.error("--test, --every, --workers must be positive, --pool and --equil-fs non-negative")
    if not 10.0 <= args.temperature <= 3000.0:
        parser.error("--temperature must be between 10 and 3000 K")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # inherited by the worker processes
    args.out.mkdir(parents=True, exist_ok=True)
    name = prefix(args.temperature, args.molecule)
    cache = args.out / f"cache_{name}"
    targets = {traj: n for traj, n in (("pool", args.pool), ("test", args.test)) if n > 0}
    settings = {k: getattr(args, k) for k in ("temperature", "pool", "test", "equil_fs", "every")}
    if args.molecule != "ethanol":  # ethanol caches keep their old settings file
        settings["molecule"] = args.molecule
    settings_path = cache / "settings.json"
    if settings_path.exists():
        old = json.loads(settings_path.read_text())
        if old != settings:
            print(f"error: {cache} holds a run with other settings {old}; remove it or use them", file=sys.stderr)
            return 1
    else:
        cache.mkdir(parents=True, exist_ok=True)
        settings_path.write_text(json.dumps(settings))
    _schedule(targets, args, cache)
    totals = _write_outputs(targets, cache, args.out, name)
    wall_path = cache / "wall_seconds.json"
    totals["wall_seconds_all_invocations"] = json.loads(wall_path.read_text()) if wall_path.exists() else 0.0
    md_cpu = sum(totals[f"{t}_md_cpu_seconds"] for t in targets)
    exp_cpu = sum(totals[f"{t}_{EXPENSIVE}_label_cpu_seconds"] for t in targets)
    cheap_cpu = sum(totals[f"{t}_{CHEAP}_label_cpu_seconds"] for t in targets)
    steps = sum(totals[f"{t}_md_steps"] for t in targets)
    print(
        f"\nCPU seconds: MD ({CHEAP}, all {steps} steps) {md_cpu:.0f}, "
        f"of which recorded-frame {CHEAP} labels {cheap_cpu:.0f}; {EXPENSIVE} labels {exp_cpu:.0f}. "
        f"Wall time (all invocations) {totals['wall_seconds_all_invocations'] / 60:.1f} min (shared machine)."
    )
    (args.out / f"{name}_summary.json").write_text(json.dumps({"settings": settings, **totals}, indent=1))
    if not args.keep_cache:
        shutil.rmtree(cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
