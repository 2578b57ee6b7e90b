"""MD throughput: batched replicas (alloop.md.run_segment) vs one ASE Langevin run per replica.

Ethanol, Langevin 500 K, 0.5 fs, friction 0.01/fs, with the stability guards
checked every step (thresholds set out of reach, so that no replica of the
untrained model stops and both sides do the same work) and a frame recorded
every 10 steps. For 1, 8 and 32 replicas it prints
replica-steps per second of both, the speed-up, and the share of wall time
spent outside the model call (integrator, guards, recording, ASE overhead).

    python benchmarks/md_bench.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase import units
from ase.build import molecule
from ase.md.langevin import Langevin

from alloop.md import MDSettings, StabilityGuards, init_replicas, run_segment


def build(model_name: str, dtype: str):
    elements = [1, 6, 8]
    try:
        from alloop.potentials.registry import build_model

        if model_name == "egnn":
            return build_model("egnn", elements, hidden_features=64, n_layers=3, cutoff_A=5.0, dtype=dtype), "egnn"
    except ImportError:
        pass
    from alloop.potentials.pair import PairPotential

    model = PairPotential(elements, seed=0)
    return (model.double() if dtype == "float64" else model), "pair"


def ase_run(model, atoms, states, n_steps: int, settings: MDSettings) -> tuple[float, float]:
    """One ASE Langevin run per replica through PotentialCalculator; (wall seconds, model seconds)."""
    from alloop.potentials.calculator import PotentialCalculator

    class Timed(PotentialCalculator):
        seconds = 0.0

        def calculate(self, *args, **kwargs):
            t0 = time.perf_counter()
            super().calculate(*args, **kwargs)
            Timed.seconds += time.perf_counter() - t0

    Timed.seconds = 0.0
    t0 = time.perf_counter()
    for k, state in enumerate(states):
        mol = atoms.copy()
        mol.positions, mol.calc = state.positions.copy(), Timed(model)
        mol.set_velocities(state.velocities)
        dyn = Langevin(
            mol,
            timestep=settings.timestep_fs * units.fs,
            temperature_K=settings.temperature_K,
            friction=settings.friction_per_fs / units.fs,
            fixcm=False,
            rng=np.random.default_rng(k),
        )
        dyn.run(n_steps)
    return time.perf_counter() - t0, Timed.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps (smoke run)")
    parser.add_argument("--steps", type=int, default=None, help="MD steps per replica (default 200, quick 20)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--model", choices=["egnn", "pair"], default="egnn")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats, best kept (default 3, quick 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n_steps = args.steps or (20 if args.quick else 200)
    args.repeats = args.repeats or (1 if args.quick else 3)
    atoms = molecule("CH3CH2OH")
    model, name = build(args.model, args.dtype)
    settings = MDSettings(temperature_K=500.0, timestep_fs=0.5, friction_per_fs=0.01)
    # the guards run (their cost counts) but with limits an untrained model cannot hit, so every
    # replica runs every step and the rates compare equal work
    guards = StabilityGuards.from_atoms(atoms, max_bond_factor=1e9, min_distance_A=0.0, max_temperature_K=1e30)
    run_segment(model, atoms, init_replicas(atoms, 2, 500.0, seed=0), 3, settings, 1)  # warm-up

    print(
        f"ethanol, model {name} ({args.dtype}), {n_steps} steps per replica, torch threads {args.threads}, "
        f"best of {args.repeats}\n"
    )
    print("| replicas | batched replica-steps/s | ASE replica-steps/s | speed-up | batched: time outside model | ASE: time outside model |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n_rep in args.replicas:
        states = init_replicas(atoms, n_rep, settings.temperature_K, seed=1)
        best_b = best_a = None  # best of the repeats (the machine is shared: less load = closer to the truth)
        for _ in range(args.repeats):
            res = run_segment(model, atoms, states, n_steps, settings, record_every=10, guards=guards)
            if res.n_model_calls != n_steps + 1:
                raise RuntimeError(f"replicas stopped early ({res.stop_reasons}): rates would not compare")
            if best_b is None or res.total_seconds < best_b[0]:
                best_b = (res.total_seconds, res.model_seconds)
            wall, in_model = ase_run(model, atoms, states, n_steps, settings)
            if best_a is None or wall < best_a[0]:
                best_a = (wall, in_model)
        batched, ase_rate = n_rep * n_steps / best_b[0], n_rep * n_steps / best_a[0]
        print(
            f"| {n_rep} | {batched:.0f} | {ase_rate:.0f} | {batched / ase_rate:.1f}x | "
            f"{100 * (1 - best_b[1] / best_b[0]):.0f}% | {100 * (1 - best_a[1] / best_a[0]):.0f}% |"
        )

if __name__ == "__main__":
    main()
