"""Conformer populations of long MD with a trained model against the reference ensembles (ethanol, 500 K).

Issue 26 asks that 50 ps of 500 K MD with the quickstart's final model give H-O-C-C populations within 5
percentage points of the reference ensemble's. Two references are printed:

- **GFN2-xTB**: the populations of the long xTB Langevin runs the equilibrium sets come from (6 x 20 ps, the
  dihedral every 10 fs; ``<molecule>_<T>K_eq_summary.json`` of ``benchmarks/make_equilibrium_sets.py``).
- **B3LYP/def2-SVP, reweighted**: the same runs' test and pool frames (B3LYP and xTB labels of every frame)
  reweighted from the xTB to the B3LYP ensemble with w ~ exp(-(E_B3LYP - E_xTB) / kT) (free-energy
  perturbation; exact in the limit of many frames). The effective sample size and a bootstrap 68 % interval
  (over frames) say how far to trust it: with a few hundred frames it is +- several points.

The model's MD: ``--replicas`` replicas (batched, one model call per step) started on the molecule's rotamers
in turn with seeded Maxwell-Boltzmann velocities, Langevin (0.5 fs, friction 0.01/fs), ``--equil-ps`` per
replica discarded, then ``--ps`` in all (split over the replicas), the dihedral every 10 fs. A replica the
stability guards stop restarts from its start with fresh velocities and its stop is counted (its trace up to
the stop is kept). Progress is printed every simulated picosecond; the trace is written to ``--out``.

With ``--reweight b3lyp-svp`` a frame of the model's MD every ``--sample-fs`` is labelled at that level and the
model's ensemble is reweighted to it, w ~ exp(-(E_B3LYP - E_model) / kT): where the model is close to B3LYP the
weights are nearly even, so this is the sharpest estimate of the B3LYP populations here, and the model's MD
minus it (with a bootstrap interval) is the model's own error in the populations.

    python benchmarks/conformer_populations.py --model quickstart.run --reweight b3lyp-svp   # 50 ps, 6 replicas
    python benchmarks/conformer_populations.py --model m.safetensors --ps 5 --replicas 3 --seed 1
    python benchmarks/conformer_populations.py --reference-only                        # the references alone
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from _common import DATA

MOLECULES = {"ethanol": "CH3CH2OH", "methanol": "CH3OH"}
DT_FS, FRICTION_PER_FS, TRACE_FS = 0.5, 0.01, 10.0


def shares(phi_deg: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """trans / gauche+ / gauche- shares of dihedral values (deg), optionally weighted."""
    from alloop.conformers import basin_index

    codes = basin_index(np.asarray(phi_deg))
    w = np.full(codes.size, 1.0 / codes.size) if weights is None else weights / weights.sum()
    return {name: float(w[codes == k].sum()) for k, name in enumerate(("trans", "gauche+", "gauche-"))}


def reweighted_reference(molecule_name: str, temperature_K: float, rotor: int, n_boot: int = 2000) -> dict:
    """The target-level populations from the equilibrium sets' frames by xTB -> B3LYP reweighting."""
    from ase.build import molecule
    from ase.io import read

    from alloop.conformers import dihedrals, find_rotors
    from alloop.units import KB_EV_PER_K

    rotors = find_rotors(molecule(MOLECULES[molecule_name]))
    prefix = f"{molecule_name}_{int(temperature_K)}K_eq"
    delta, phi = [], []
    for set_name in ("test", "pool"):
        target = DATA / f"{prefix}{set_name}_b3lyp-svp.extxyz"
        base = DATA / f"{prefix}{set_name}_gfn2-xtb.extxyz"
        if not (target.is_file() and base.is_file()):
            continue
        t, b = read(target, ":"), read(base, ":")
        if len(t) != len(b) or any(not np.allclose(x.positions, y.positions) for x, y in zip(t, b)):
            raise SystemExit(f"{target.name} and {base.name} do not hold the same frames")
        delta += [x.get_potential_energy() - y.get_potential_energy() for x, y in zip(t, b)]
        phi += [dihedrals(x.positions, rotors)[rotor] for x in t]
    if not delta:
        raise SystemExit(f"no {prefix}*_b3lyp-svp / _gfn2-xtb frames in {DATA}")
    delta, phi = np.array(delta), np.array(phi)
    log_w = -(delta - delta.mean()) / (KB_EV_PER_K * temperature_K)
    w = np.exp(log_w - log_w.max())
    point = shares(phi, w)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(n_boot):
        k = rng.integers(0, delta.size, delta.size)
        boots.append(shares(phi[k], w[k]))
    interval = {name: [float(np.quantile([b[name] for b in boots], q)) for q in (0.16, 0.84)] for name in point}
    return {"shares": point, "interval_68": interval, "frames": int(delta.size),
            "effective_frames": float(w.sum() ** 2 / np.sum(w**2)), "unweighted": shares(phi)}


def xtb_reference(molecule_name: str, temperature_K: float, rotor_key: str) -> dict | None:
    """The xTB runs' populations (10 fs trace of every test and pool run) from the summary JSON."""
    summary = DATA / f"{molecule_name}_{int(temperature_K)}K_eq_summary.json"
    if not summary.is_file():
        return None
    sets = json.loads(summary.read_text())["sets"]
    runs = {name: pops[rotor_key] for s in sets.values() for name, pops in s["populations"].items()
            if name.startswith(("test run", "pool run")) and rotor_key in pops}
    per_run = {k: np.array([r[k] for r in runs.values()]) for k in ("trans", "gauche+", "gauche-")}
    return {"shares": {k: float(v.mean()) for k, v in per_run.items()},
            "run_spread": {k: float(v.std(ddof=1)) for k, v in per_run.items()}, "runs": len(runs)}


def model_md(model_path: str, molecule_name: str, temperature_K: float, ps: float, equil_ps: float,
             replicas: int, seed: int, rotor: int, sample_fs: float) -> dict:
    """The dihedral trace of batched Langevin MD with the model (restarts after guard stops), and a frame every
    ``sample_fs`` (positions, the model's energy) for reweighting."""
    import torch
    from ase.build import molecule

    from alloop.conformers import conformer_starts, dihedrals, find_rotors
    from alloop.deploy.loading import load_trained
    from alloop.md import MDSettings, StabilityGuards, init_replicas, run_segment

    torch.set_num_threads(1)
    model = load_trained(model_path, fidelity=None).model.eval()
    base = molecule(MOLECULES[molecule_name])
    rotors = find_rotors(base)
    starts = conformer_starts(base)
    settings = MDSettings(temperature_K=temperature_K, timestep_fs=DT_FS, friction_per_fs=FRICTION_PER_FS)
    every = int(round(TRACE_FS / DT_FS))
    chunk = int(round(1000 / DT_FS))
    guards = StabilityGuards.from_atoms(base, max_bond_factor=1.5, min_distance_A=0.7,
                                        max_temperature_K=3 * temperature_K)
    # one batch: replica r starts on starts[r % len(starts)] (same atoms, so one model call per step)
    def start_state(r: int, stream: int):
        state = init_replicas(starts[r % len(starts)], 1, temperature_K, seed=seed * 100_000 + 1000 * r + stream)[0]
        return state

    states = [start_state(r, 0) for r in range(replicas)]
    per_replica_steps = int(round((ps / replicas + equil_ps) * 1000 / DT_FS))
    n_equil = int(round(equil_ps * 1000 / DT_FS))
    traces: dict[int, list[float]] = {r: [] for r in range(replicas)}
    sample_every = int(round(sample_fs / DT_FS))
    samples: list[dict] = []  # frames for reweighting to the target level: positions, model energy, dihedral
    stops: list[dict] = []
    done, t0 = 0, time.perf_counter()
    while done < per_replica_steps:
        n = min(chunk, per_replica_steps - done)
        result = run_segment(model, base, states, n, settings, record_every=every, guards=guards)
        for r, (traj, final, reason) in enumerate(zip(result.trajectories, result.final_states, result.stop_reasons)):
            keep = traj.steps > n_equil
            if keep.any():
                traces[r] += dihedrals(traj.positions[keep], rotors)[:, rotor].tolist()
            for k in np.flatnonzero(keep & (traj.steps % sample_every == 0) & ~traj.unstable):
                samples.append({"replica": r, "step": int(traj.steps[k]), "positions": traj.positions[k].tolist(),
                                "model_energy_eV": float(traj.energies[k]),
                                "phi": float(dihedrals(traj.positions[k], rotors)[rotor])})
            if reason is None:
                states[r] = final
            else:  # restart from the start with fresh velocities; the replica's clock goes on
                stops.append({"replica": r, "step": int(final.step), "reason": str(reason)})
                states[r] = start_state(r, len(stops))
                states[r].step = final.step
        done += n
        total = sum(len(t) for t in traces.values())
        now = shares(np.concatenate([np.array(t) for t in traces.values() if t])) if total else {}
        print(f"  {done * DT_FS / 1000:.1f} ps per replica ({replicas} replicas, {time.perf_counter() - t0:.0f} s): "
              f"{total} trace points, trans {now.get('trans', float('nan')):.3f}, {len(stops)} guard stops",
              flush=True)
    per_replica = {r: shares(np.array(t)) for r, t in traces.items() if t}
    phi = np.concatenate([np.array(t) for t in traces.values() if t])
    return {"shares": shares(phi), "per_replica": per_replica, "points": int(phi.size), "stops": stops,
            "wall_s": time.perf_counter() - t0, "trace": {r: t for r, t in traces.items()}, "samples": samples}


def reweight_model_md(md: dict, molecule_name: str, fidelity: str, temperature_K: float, cache: Path,
                      n_boot: int = 2000) -> dict:
    """The target-level populations from the model's own MD frames: each frame labelled at ``fidelity`` (cached in
    ``cache``, one line per frame) and weighted by exp(-(E_target - E_model) / kT). Where the model is close to the
    target the weights are nearly even (effective sample size near the frame count), so this estimate is far
    sharper than reweighting xTB frames, and its difference from the unweighted shares is the model's own error in
    the populations."""
    from ase import Atoms
    from ase.build import molecule

    from alloop.fidelity import load_fidelity
    from alloop.labeling.factory import labeler_for
    from alloop.units import KB_EV_PER_K

    numbers = molecule(MOLECULES[molecule_name]).numbers
    done = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            entry = json.loads(line)
            done[(entry["replica"], entry["step"])] = entry["energy_eV"]
    labeler = labeler_for(load_fidelity(fidelity))
    t0 = time.perf_counter()
    for k, sample in enumerate(md["samples"]):
        key = (sample["replica"], sample["step"])
        if key in done:
            continue
        result = labeler.label(Atoms(numbers=numbers, positions=sample["positions"]))
        energy = float(result.energy_eV) if result.ok else float("nan")
        done[key] = energy
        with open(cache, "a") as out:
            out.write(json.dumps({"replica": key[0], "step": key[1], "energy_eV": energy}) + "\n")
        if (k + 1) % 10 == 0:
            print(f"  {fidelity} labels: {k + 1} of {len(md['samples'])} ({time.perf_counter() - t0:.0f} s)", flush=True)
    target = np.array([done[(x["replica"], x["step"])] for x in md["samples"]])
    model = np.array([x["model_energy_eV"] for x in md["samples"]])
    phi = np.array([x["phi"] for x in md["samples"]])
    ok = np.isfinite(target)
    delta = target[ok] - model[ok]
    log_w = -(delta - delta.mean()) / (KB_EV_PER_K * temperature_K)
    w = np.exp(log_w - log_w.max())
    point, plain = shares(phi[ok], w), shares(phi[ok])
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(n_boot):
        k = rng.integers(0, w.size, w.size)
        reweighted, unweighted = shares(phi[ok][k], w[k]), shares(phi[ok][k])
        boots.append({name: (reweighted[name], reweighted[name] - unweighted[name]) for name in point})
    interval = {name: [float(np.quantile([b[name][0] for b in boots], q)) for q in (0.16, 0.84)] for name in point}
    shift = {name: [float(np.quantile([b[name][1] for b in boots], q)) for q in (0.16, 0.84)] for name in point}
    return {"shares": point, "unweighted": plain, "interval_68": interval, "shift_interval_68": shift,
            "frames": int(ok.sum()), "failed": int((~ok).sum()), "effective_frames": float(w.sum() ** 2 / np.sum(w**2)),
            "energy_difference_std_eV": float(delta.std())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a run directory, store or model file")
    p.add_argument("--molecule", choices=sorted(MOLECULES), default="ethanol")
    p.add_argument("--temperature", type=float, default=500.0)
    p.add_argument("--ps", type=float, default=50.0, help="production MD in all, split over the replicas")
    p.add_argument("--equil-ps", type=float, default=1.0, help="discarded per replica")
    p.add_argument("--replicas", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rotor", type=int, default=None, help="which rotor (default: the first non-symmetric one)")
    p.add_argument("--out", type=Path, default=None, help="JSON of the result (default: beside the model)")
    p.add_argument("--reference-only", action="store_true")
    p.add_argument("--sample-fs", type=float, default=250.0, help="a frame of the model's MD kept every ... fs")
    p.add_argument("--reweight", default=None, metavar="FIDELITY",
                   help="label the kept frames at this fidelity (e.g. b3lyp-svp) and reweight the model's MD to it")
    args = p.parse_args(argv)
    if not args.reference_only and not args.model:
        p.error("--model is required (or --reference-only)")
    from ase.build import molecule

    from alloop.conformers import find_rotors

    rotors = find_rotors(molecule(MOLECULES[args.molecule]))
    rotor = args.rotor if args.rotor is not None else next(k for k, r in enumerate(rotors) if not r.symmetric)
    key = rotors[rotor].label
    print(f"{args.molecule} {args.temperature:g} K, rotor {key} (atoms of the dihedral)")
    rows = []
    xtb = xtb_reference(args.molecule, args.temperature, key)
    if xtb:
        rows.append((f"GFN2-xTB MD ({xtb['runs']} runs x 20 ps; run-to-run std)", xtb["shares"], xtb["run_spread"]))
    ref = reweighted_reference(args.molecule, args.temperature, rotor)
    half = {k: (hi - lo) / 2 for k, (lo, hi) in ref["interval_68"].items()}
    rows.append((f"B3LYP/def2-SVP, {ref['frames']} xTB frames reweighted (ESS {ref['effective_frames']:.0f}; "
                 "bootstrap 68 % half-width)", ref["shares"], half))
    result = {"rotor": key, "xtb": xtb, "b3lyp_reweighted": ref}
    if not args.reference_only:
        print(f"model MD: {args.model}, {args.replicas} replicas, {args.ps:g} ps + {args.equil_ps:g} ps "
              "equilibration each", flush=True)
        out = args.out or Path(str(args.model).rstrip("/") + f".populations-seed{args.seed}.json")
        md_cache = out.with_suffix(".md.json")
        if md_cache.is_file():
            md = json.loads(md_cache.read_text())
            print(f"  model MD read from {md_cache}")
        else:
            md = model_md(args.model, args.molecule, args.temperature, args.ps, args.equil_ps, args.replicas,
                          args.seed, rotor, args.sample_fs)
            md_cache.write_text(json.dumps(md))
        spread = {k: float(np.std([s[k] for s in md["per_replica"].values()], ddof=1)) for k in md["shares"]}
        rows.append((f"model MD, {args.ps:g} ps ({len(md['stops'])} guard stops; replica-to-replica std)",
                     md["shares"], spread))
        result["model_md"] = {k: v for k, v in md.items() if k not in ("trace", "samples")}
        result["model_md"].update(model=str(args.model), seed=args.seed)
        if args.reweight:
            print(f"reweighting {len(md['samples'])} frames of the model's MD to {args.reweight}", flush=True)
            rw = reweight_model_md(md, args.molecule, args.reweight, args.temperature,
                                   out.with_suffix(f".{args.reweight}.jsonl"))
            half = {k: (hi - lo) / 2 for k, (lo, hi) in rw["interval_68"].items()}
            rows.append((f"{args.reweight}, the model's {rw['frames']} MD frames reweighted (ESS "
                         f"{rw['effective_frames']:.0f}; bootstrap 68 % half-width)", rw["shares"], half))
            result["model_md_reweighted"] = rw
            print(f"model MD minus its reweighting to {args.reweight} (68 % interval), percentage points: " + ", ".join(
                f"{k} {100 * (md['shares'][k] - rw['shares'][k]):+.1f} [{-100 * hi:+.1f}, {-100 * lo:+.1f}]"
                for k, (lo, hi) in rw["shift_interval_68"].items()))
        out.write_text(json.dumps(result, indent=1))
        print(f"written: {out}")
    print("\n| ensemble | trans | gauche+ | gauche- |\n|---|---:|---:|---:|")
    for name, s, err in rows:
        print(f"| {name} | " + " | ".join(f"{100 * s[k]:.1f} ± {100 * err[k]:.1f}" for k in ("trans", "gauche+",
                                                                                          "gauche-")) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
