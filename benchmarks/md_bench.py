"""MD throughput: batched replicas (alloop.md.run_segment) vs one ASE Langevin run per replica.

Ethanol, Langevin 500 K, 0.5 fs, friction 0.01/fs, with the stability guards
checked every step (thresholds set out of reach, so that no replica stops and
both sides do the same work) and a frame recorded every 10 steps. For 1, 8 and
32 replicas it prints replica-steps per second of both, the speed-up, the share
of wall time spent outside the model call (integrator, guards, recording, ASE
overhead), and the model calls per MD step with the structures per call. The
calls are counted by a forward pre-hook on the model itself (independently of
run_segment's own counter): batched MD makes one call per step holding all N
replicas, ASE makes N calls of one structure. Each run's initial force
evaluation counts as one more step (calls / (steps + 1)).

Models (``--model``): ``egnn`` (an untrained 64 x 3 EGNN), ``pair`` (the pair
potential), and the model presets ``sevennet-0`` (the pretrained SevenNet-0
from the sevenn wheel), ``sevennet-small`` (a SevenNet from scratch,
untrained) and ``so3lr`` (the pretrained SO3LR from the so3krates-torch
wheel), built like ``benchmarks/models_ethanol.py`` does
(``load_preset("models", ...)`` + ``build_model``).

``--baseline gfn2-xtb`` wraps the model in a Delta model (:mod:`alloop.potentials.baseline`): every model
call adds GFN-xTB energies and forces computed by tblite, one structure after another; the table then also
prints the baseline's milliseconds per MD step (all replicas), its share of the wall time and tblite's SCC cycles
per structure. Within a segment each replica's tblite calculator and wavefunction carry over from step to step
(``Baseline.warm``); ``--cold-baseline`` starts every structure afresh, as alloop did before 2026-11-29.

Writes a result file (``--results``; default ``benchmarks/results/md-speed/ethanol-MODEL[-BASELINE][-cold].json``)
with each repeat's seconds, the model calls, the thread count and the run record (``lib/run_record.py``: the
command, date, commit, cores, the 1-min load average at the start and the end and the CPU seconds); the table
(printed, and in docs/benchmarks.md through ``python benchmarks/docs_tables.py``) is ``lib/md_speed_table.py``'s,
each side at its best repeat.

    python benchmarks/md_bench.py --quick
    python benchmarks/md_bench.py --baseline gfn2-xtb --replicas 1 6 32 --repeats 1
    python benchmarks/md_bench.py --baseline gfn2-xtb --replicas 1 6 32 --repeats 1 --cold-baseline
    python benchmarks/md_bench.py --model sevennet-0 --steps 20 --replicas 1 8 32 --repeats 1
    python benchmarks/md_bench.py --model sevennet-small --steps 20 --replicas 1 8 32 --repeats 1
    python benchmarks/md_bench.py --model so3lr --steps 50 --replicas 1 6 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import units
from ase.build import molecule
from ase.md.langevin import Langevin
from lib.common import ROOT
from lib.md_speed_table import md_speed_lines
from lib.run_record import finish_record, load_text, start_record

from alloop.io import write_atomic
from alloop.md import MDSettings, StabilityGuards, init_replicas, run_segment

#: --model choices built from a model preset of configs/models/
PRESETS = ("sevennet-0", "sevennet-small", "so3lr")
#: where the result files go (one per model, baseline and warm or cold)
RESULTS = ROOT / "benchmarks" / "results" / "md-speed"


def build(model_name: str, dtype: str):
    elements = [1, 6, 8]
    if model_name in PRESETS:
        from alloop.potentials.registry import build_model
        from alloop.presets import load_preset

        hparams = load_preset("models", model_name)
        architecture = hparams.pop("architecture")
        hparams["dtype"] = dtype
        return build_model(architecture, elements, seed=0, **hparams).eval(), model_name
    try:
        from alloop.potentials.registry import build_model

        if model_name == "egnn":
            return build_model("egnn", elements, hidden_features=64, n_layers=3, cutoff_A=5.0, dtype=dtype), "egnn"
    except ImportError:
        pass
    from alloop.potentials.pair import PairPotential

    model = PairPotential(elements, seed=0)
    return (model.double() if dtype == "float64" else model), "pair"


class CallCounter:
    """Counts a model's forward calls and the structures they held (a forward pre-hook on the model)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = self.structures = 0
        model.register_forward_pre_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: tuple) -> None:
        self.calls += 1
        self.structures += args[0].n_graphs  # the AtomsBatch

    def take(self) -> tuple[int, int]:
        """(calls, structures) since the last take; resets both."""
        out = (self.calls, self.structures)
        self.calls = self.structures = 0
        return out


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


def parse_args() -> argparse.Namespace:
    """The command line, ``--steps``, ``--repeats`` and ``--results`` filled in (default or ``--quick``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps (smoke run)")
    parser.add_argument("--steps", type=int, default=None, help="MD steps per replica (default 200, quick 20)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--model", choices=["egnn", "pair", *PRESETS], default="egnn")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats, best kept (default 3, quick 1)")
    parser.add_argument("--baseline", default=None, help="a GFN-xTB fidelity (gfn1-xtb, gfn2-xtb): time a Delta model")
    parser.add_argument("--cold-baseline", action="store_true",
                        help="the baseline starts every structure afresh (no wavefunction carried between steps)")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"result file (default {RESULTS.relative_to(ROOT)}/ethanol-MODEL[-BASELINE][-cold].json)")
    args = parser.parse_args()
    args.steps = args.steps or (20 if args.quick else 200)
    args.repeats = args.repeats or (1 if args.quick else 3)
    stem = f"ethanol-{args.model}" + (f"-{args.baseline}" if args.baseline else "") + ("-cold" * args.cold_baseline)
    args.results = args.results or RESULTS / f"{stem}.json"
    return args


def time_replicas(model, atoms, n_rep: int, args: argparse.Namespace, settings: MDSettings,
                  guards: StabilityGuards, counter: CallCounter) -> dict[str, Any]:
    """Each repeat's wall and model seconds of batched MD and of one ASE run per replica for ``n_rep`` replicas,
    the model calls and structures of each side (and the baseline's seconds and SCC cycles per structure)."""
    n_steps = args.steps
    states = init_replicas(atoms, n_rep, settings.temperature_K, seed=1)
    batched: dict[str, Any] = {"wall_s": [], "model_s": [], **({"baseline_s": [], "scc_cycles_per_structure": []}
                                                              if args.baseline else {})}
    ase: dict[str, Any] = {"wall_s": [], "model_s": []}
    for _ in range(args.repeats):
        counter.take()
        base0 = (model.baseline.seconds, model.baseline.scc_cycles) if args.baseline else (0.0, 0)
        res = run_segment(model, atoms, states, n_steps, settings, record_every=10, guards=guards)
        calls_b = counter.take()
        if res.n_model_calls != n_steps + 1 or calls_b[0] != res.n_model_calls:
            raise RuntimeError(f"replicas stopped early ({res.stop_reasons}) or calls miscounted "
                               f"({calls_b[0]} vs {res.n_model_calls}): rates would not compare")
        batched["wall_s"].append(res.total_seconds)
        batched["model_s"].append(res.model_seconds)
        if args.baseline:
            batched["baseline_s"].append(model.baseline.seconds - base0[0])
            batched["scc_cycles_per_structure"].append((model.baseline.scc_cycles - base0[1]) / (n_rep * (n_steps + 1)))
        wall, in_model = ase_run(model, atoms, states, n_steps, settings)
        calls_a = counter.take()
        ase["wall_s"].append(wall)
        ase["model_s"].append(in_model)
    batched.update(calls=calls_b[0], structures=calls_b[1])
    ase.update(calls=calls_a[0], structures=calls_a[1])
    return {"replicas": n_rep, "batched": batched, "ase": ase}


def build_timed(args: argparse.Namespace) -> tuple[torch.nn.Module, str]:
    """The model to time and its name in the table (with the baseline, warm or cold, when asked)."""
    model, name = build(args.model, args.dtype)
    if args.baseline:
        from alloop.potentials.baseline import DeltaPotential

        model, name = DeltaPotential.wrap(model, args.baseline).eval(), f"{name} + {args.baseline}"
        if args.cold_baseline:
            model.baseline.warm = contextlib.nullcontext  # type: ignore[method-assign]
            name += " (cold: every structure afresh)"
    return model, name


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    record = start_record(__file__)
    atoms = molecule("CH3CH2OH")
    model, name = build_timed(args)
    settings = MDSettings(temperature_K=500.0, timestep_fs=0.5, friction_per_fs=0.01)
    # the guards run (their cost counts) but with limits an untrained model cannot hit, so every
    # replica runs every step and the rates compare equal work
    guards = StabilityGuards.from_atoms(atoms, max_bond_stretch=1e9, min_distance_A=0.0, max_temperature_K=1e30)
    run_segment(model, atoms, init_replicas(atoms, 2, 500.0, seed=0), 3, settings, 1)  # warm-up
    counter = CallCounter(model)
    print(f"ethanol, model {name} ({args.dtype}), {args.steps} steps per replica, torch threads {args.threads}, "
          f"best of {args.repeats}\n", flush=True)
    rows = [time_replicas(model, atoms, n_rep, args, settings, guards, counter) for n_rep in args.replicas]
    result = {**finish_record(record), "threads": args.threads, "model": name, "dtype": args.dtype,
              "steps": args.steps, "repeats": args.repeats, "baseline": args.baseline,
              "cold_baseline": args.cold_baseline,
              "settings": {"temperature_K": settings.temperature_K, "timestep_fs": settings.timestep_fs,
                           "friction_per_fs": settings.friction_per_fs, "record_every": 10},
              "torch": torch.__version__, "rows": rows}
    print("\n".join(md_speed_lines([result])))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.results, (json.dumps(result, indent=1) + "\n").encode())
    print(f"\n{load_text(result)}; {result['cpu_s']:.0f} CPU s; written to {args.results}")


if __name__ == "__main__":
    main()
