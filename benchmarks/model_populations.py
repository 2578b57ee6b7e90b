"""Conformer populations of long MD with a trained model, against the reference ensemble's.

A model that is right where MD goes must also send MD where the reference goes: a wrong barrier
traps replicas in their starting basin (issue 26). For each model (a run directory, its newest model,
or a checkpoint file), ``--replicas`` Langevin replicas (0.5 fs, friction 0.01/fs, at ``--temperature``)
start on the molecule's rotamers in turn (:func:`alloop.system.conformers.conformer_starts`) and run ``--ps``
picoseconds in one batched model call per step (:func:`alloop.md.run_segment`, stability guards on:
a replica stopped by a guard is reported and its frames up to the stop are kept). The dihedrals of
every recorded frame (every 10 fs) give each replica's and the pooled basin populations, printed next
to two references, and the median time of a replica's first exit from its starting basin.

The references: (1) the sampler's ensemble, the GFN2-xTB MD the test sets come from
(``<molecule>_<T>K_eq_summary.json`` of ``make_equilibrium_sets.py``, every 10 fs of every run); (2) the
ensemble of the surface the model learns (B3LYP/def2-SVP), which no affordable MD samples here: the
test- and pool-set frames carry both a B3LYP and a GFN2-xTB energy, and since they are Boltzmann samples
of the GFN2-xTB surface at T, weights w = exp(-(E_B3LYP - E_xTB) / kT) turn them into samples of the
B3LYP surface (free-energy perturbation; configurations only, the momenta cancel). Its uncertainty is a
bootstrap over the independent runs the frames come from (a 90 % interval), and the effective sample
size (sum w)^2 / sum w^2 says how far the two surfaces' ensembles overlap. A model trained on B3LYP
labels should match (2), not (1).

With ``--reweight b3lyp-svp``, a third reference comes from the model's own MD: a frame every ``--sample-fs``
(after ``--equil-ps``) is labelled at that level (cached beside the model, one JSON line per frame) and
weighted by exp(-(E_B3LYP - E_model) / kT). Where the model is close to B3LYP the weights are nearly even
(effective sample size near the frame count), so this is the sharpest estimate of the B3LYP populations
here, and the model's MD minus it (a bootstrap interval over frames) is the model's own error in the
populations.

    python benchmarks/model_populations.py campaigns/quickstart.run --ps 8.5 --replicas 6 --equil-ps 1 \
        --reweight b3lyp-svp                                   # 51 ps of MD, ~200 B3LYP labels
    python benchmarks/model_populations.py campaigns/quickstart.run --ps 5 --replicas 10
    python benchmarks/model_populations.py /tmp/run0 /tmp/run1 --ps 10 --replicas 6
    python benchmarks/model_populations.py                     # the references alone (no MD)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from lib.populations import equilibrium_pairs, reference_populations, reweighted_populations

RECORD_FS = 10.0


def run_model(source: Path, atoms_name: str, args: argparse.Namespace) -> dict:
    """Batched MD of ``args.replicas`` replicas with the model of ``source``; per-replica basin traces."""
    import torch
    from ase.build import molecule

    from alloop.deploy.loading import load_trained
    from alloop.md import MDSettings, StabilityGuards, init_replicas, run_segment
    from alloop.system.conformers import basin_index, conformer_starts, dihedrals, find_rotors

    torch.set_num_threads(args.threads)
    trained = load_trained(source)
    model = trained.model.eval()
    base = molecule(atoms_name)
    starts = conformer_starts(base, 3)
    rotors = [r for r in find_rotors(base) if not r.symmetric][:1]
    states = []
    for r in range(args.replicas):
        (state,) = init_replicas(starts[r % len(starts)], 1, args.temperature, args.seed * 1000 + r)
        states.append(state)
    settings = MDSettings(temperature_K=args.temperature, timestep_fs=0.5, friction_per_fs=0.01)
    n_steps = int(round(args.ps * 1000 / settings.timestep_fs))
    n_equil = int(round(args.equil_ps * 1000 / settings.timestep_fs))
    every = int(round(RECORD_FS / settings.timestep_fs))
    guards = StabilityGuards.from_atoms(base, max_bond_stretch=1.8, min_distance_A=0.5,
                                        min_temperature_K=0.0, max_temperature_K=4 * args.temperature)
    t0 = time.perf_counter()
    last = [-1.0]

    def progress(p) -> None:
        now = time.perf_counter()
        if now - last[0] > 30:
            last[0] = now
            print(f"  {source.name}: step {p.step}/{n_steps + n_equil} ({now - t0:.0f} s)", file=sys.stderr, flush=True)

    result = run_segment(model, base, states, n_steps + n_equil, settings, every, guards, progress=progress)
    traces, stops, samples = [], [], []
    sample_every = int(round(args.sample_fs / settings.timestep_fs))
    for r, traj in enumerate(result.trajectories):
        kept = traj.steps > n_equil
        phi = dihedrals(traj.positions[kept], rotors)[:, 0] if kept.any() else np.zeros(0)
        traces.append(basin_index(phi))
        stops.append(None if result.stop_reasons[r] is None else result.stop_reasons[r].code)
        for k in np.flatnonzero(kept & (traj.steps % sample_every == 0) & ~traj.unstable):
            samples.append({"replica": r, "step": int(traj.steps[k]), "positions": traj.positions[k],
                            "model_energy_eV": float(traj.energies[k]), "basin": int(basin_index(
                                dihedrals(traj.positions[k], rotors))[0])})
    return {"traces": traces, "stops": stops, "seconds": time.perf_counter() - t0,
            "description": trained.description, "samples": samples, "numbers": base.numbers}


def reweight_model_md(out: dict, source: Path, fidelity: str, temperature_K: float, n_boot: int = 2000,
                      seed: int = 0) -> dict:
    """The ``fidelity`` surface's basin shares from the model's MD samples, reweighted by
    exp(-(E_fidelity - E_model) / kT); labels cached in ``<source>.<fidelity>-labels.jsonl``."""
    from ase import Atoms

    from alloop.fidelity import load_fidelity
    from alloop.labeling.factory import labeler_for
    from alloop.units import KB_EV_PER_K

    cache = Path(str(source).rstrip("/") + f".{fidelity}-labels.jsonl")
    known = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            entry = json.loads(line)
            known[(entry["replica"], entry["step"], entry["seed"], entry.get("run", ""))] = entry["energy_eV"]
    labeler = labeler_for(load_fidelity(fidelity))
    run = f"{out['description']} | {temperature_K:g} K"  # a frame is known by its model, temperature, seed, replica, step
    t0 = time.perf_counter()
    for k, sample in enumerate(out["samples"]):
        key = (sample["replica"], sample["step"], out["seed"], run)
        if key in known:
            continue
        result = labeler.label(Atoms(numbers=out["numbers"], positions=sample["positions"]))
        known[key] = float(result.energy_eV) if result.ok else float("nan")
        with open(cache, "a") as fh:
            fh.write(json.dumps({"replica": key[0], "step": key[1], "seed": key[2], "run": run,
                                 "energy_eV": known[key]}) + "\n")
        print(f"  {fidelity} label {k + 1}/{len(out['samples'])} ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    energy = np.array([known[(x["replica"], x["step"], out["seed"], run)] for x in out["samples"]])
    ok = np.isfinite(energy)
    delta = energy[ok] - np.array([x["model_energy_eV"] for x in out["samples"]])[ok]
    basin = np.array([x["basin"] for x in out["samples"]])[ok]
    w = np.exp(-(delta - delta.min()) / (KB_EV_PER_K * temperature_K))

    def shares(index: np.ndarray, weights: np.ndarray) -> np.ndarray:
        ww, b = weights[index], basin[index]
        return np.array([ww[b == k].sum() for k in range(3)]) / ww.sum()

    every = np.arange(w.size)
    point, plain = shares(every, w), shares(every, np.ones_like(w))
    rng = np.random.default_rng(seed)
    shifts = []
    for _ in range(n_boot):
        k = rng.integers(0, w.size, w.size)
        shifts.append(shares(k, w) - shares(k, np.ones_like(w)))
    low, high = np.percentile(np.array(shifts), [5, 95], axis=0)
    return {"shares": point, "unweighted": plain, "shift_low": low, "shift_high": high, "frames": int(w.size),
            "failed": int((~ok).sum()), "ess": float(w.sum() ** 2 / (w ** 2).sum()),
            "delta_std_eV": float(delta.std())}


def first_exit_fs(trace: np.ndarray) -> float | None:
    """Time of the first recorded frame outside the starting basin (None: never left)."""
    if trace.size == 0:
        return None
    out = np.flatnonzero(trace != trace[0])
    return None if out.size == 0 else float(out[0] * RECORD_FS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", type=Path, nargs="*", help="run directories or checkpoint files (none: the references)")
    p.add_argument("--molecule", default="ethanol", choices=["ethanol"])
    p.add_argument("--temperature", type=float, default=500.0)
    p.add_argument("--ps", type=float, default=50.0, help="picoseconds per replica")
    p.add_argument("--replicas", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    p.add_argument("--equil-ps", type=float, default=0.0, help="picoseconds per replica left out at the start")
    p.add_argument("--reweight", metavar="FIDELITY", default=None,
                   help="label the model's MD frames at this fidelity (e.g. b3lyp-svp) and reweight to it")
    p.add_argument("--sample-fs", type=float, default=250.0, help="--reweight: a frame every ... fs of each replica")
    args = p.parse_args(argv)
    names = {"ethanol": "CH3CH2OH"}
    ref = reference_populations(args.molecule, args.temperature)
    print(f"{args.molecule} {args.temperature:g} K: {args.replicas} replicas x {args.ps:g} ps from the rotamers, "
          f"basins of the first non-symmetric rotor every {RECORD_FS:g} fs")
    print("| model | replica-ps | trans / gauche+ / gauche- (%) | per replica trans % | median first exit (fs) "
          "| replicas stopped | wall s |")
    print("|---|---:|---|---|---:|---:|---:|")
    if ref is not None:
        print(f"| reference (1): GFN2-xTB MD of the test set | | {ref['trans'] * 100:.1f} / {ref['gauche+'] * 100:.1f}"
              f" / {ref['gauche-'] * 100:.1f} | | | | |")
    rew = reweighted_populations(equilibrium_pairs(args.molecule, args.temperature), args.temperature)
    if rew is not None:
        cells = " / ".join(f"{100 * s:.1f} [{100 * lo:.0f}-{100 * hi:.0f}]"
                           for s, lo, hi in zip(rew["shares"], rew["low"], rew["high"], strict=True))
        print(f"| reference (2): B3LYP/def2-SVP, {rew['frames']} GFN2-xTB frames of {rew['runs']} runs reweighted "
              f"(effective sample size {rew['ess']:.0f}; the same frames unweighted: "
              f"{' / '.join(f'{100 * s:.1f}' for s in rew['sampler_shares'])}) | | {cells} | | | | |", flush=True)
    for source in args.models:
        out = run_model(source, names[args.molecule], args)
        pooled = np.concatenate(out["traces"])
        shares = [np.mean(pooled == k) * 100 for k in range(3)]
        per = " / ".join(f"{np.mean(t == 0) * 100:.0f}" for t in out["traces"])
        exits = [first_exit_fs(t) for t in out["traces"]]
        left = [e for e in exits if e is not None]
        median = f"{np.median(left):.0f} ({len(left)}/{len(exits)} left)" if left else f"never (0/{len(exits)})"
        ps = pooled.size * RECORD_FS / 1000
        stopped = sum(s is not None for s in out["stops"])
        print(f"| {out['description']} | {ps:.1f} | {shares[0]:.1f} / {shares[1]:.1f} / {shares[2]:.1f} | {per} | "
              f"{median} | {stopped} | {out['seconds']:.0f} |", flush=True)
        if args.reweight:
            out["seed"] = args.seed
            rw = reweight_model_md(out, source, args.reweight, args.temperature)
            cells = " / ".join(f"{100 * s:.1f}" for s in rw["shares"])
            shift = " / ".join(f"{100 * (a - b):+.1f} [{-100 * hi:+.1f}, {-100 * lo:+.1f}]" for a, b, lo, hi in
                               zip(rw["unweighted"], rw["shares"], rw["shift_low"], rw["shift_high"], strict=True))
            print(f"| reference (3): {args.reweight}, this model's {rw['frames']} MD frames (every "
                  f"{args.sample_fs:g} fs) reweighted (effective sample size {rw['ess']:.0f}, std of "
                  f"E_{args.reweight} - E_model {1000 * rw['delta_std_eV']:.0f} meV; the model's MD minus it, 90 % "
                  f"interval: {shift} points) | | {cells} | | | | |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
