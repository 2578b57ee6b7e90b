"""Speed of the built-in potentials: forward + backward (energy and forces) on batches of molecules.

Prints a Markdown table: model, dtype, batch, atoms, edges, time of the
neighbour search alone, time of energy + forces (wall, and the process's CPU
time, which a loaded machine inflates less), and the neighbour search's
share. Single-threaded by default (``--threads``). ``--quick`` runs fewer repeats.
``--preset NAME`` (repeatable) times those model presets on ethanol instead of the
default cases, e.g. the cost of one MD step of one replica of the pretrained models:

    python benchmarks/potentials_speed.py [--quick] [--threads 1] [--replicas 32]
    python benchmarks/potentials_speed.py --replicas 1 --preset so3lr --preset sevennet-0
"""

from __future__ import annotations

import argparse
import time

import torch
from ase.build import molecule

from alloop.potentials.base import AtomsBatch
from alloop.potentials.neighbors import neighbor_pairs
from alloop.potentials.registry import build_model, model_preset


def _median_ms(fn, repeats: int, clock=time.perf_counter) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return 1e3 * sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke run)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--preset", action="append", default=None, help="a model preset to time on ethanol")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 5 if args.quick else 50

    cases = [
        ("ethanol", "small", torch.float32),
        ("ethanol", "small", torch.float64),
        ("ethanol", "egnn-paper", torch.float32),
        ("ethanol", "pair", torch.float32),
    ]
    if not args.quick:
        cases.append(("C6H6", "small", torch.float32))
    if args.preset:
        cases = [("ethanol", preset, torch.float32) for preset in args.preset]
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {repeats} runs\n")
    print("| molecule | model | dtype | molecules | atoms | edges | neighbours (ms) | energy+forces (ms) "
          "| energy+forces (CPU ms) | neighbour share |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, preset, dtype in cases:
        mol = molecule("CH3CH2OH" if name == "ethanol" else name)
        elements = sorted(set(mol.numbers.tolist()))
        if preset == "pair":
            model = build_model("pair", elements, cutoff_A=5.0)
        else:
            model = build_model(elements=elements, **{**model_preset(preset), "dtype": str(dtype)[6:]})
        batch = AtomsBatch.from_atoms([mol] * args.replicas, dtype=dtype)
        edges = neighbor_pairs(batch, model.cutoff)[2].numel()
        t_nb = _median_ms(lambda batch=batch, model=model: neighbor_pairs(batch, model.cutoff), repeats)
        t_all = _median_ms(lambda batch=batch, model=model: model(batch), repeats)
        t_cpu = _median_ms(lambda batch=batch, model=model: model(batch), repeats, clock=time.process_time)
        print(
            f"| {name} | {preset} | {str(dtype)[6:]} | {args.replicas} | {batch.numbers.numel()} | {edges} "
            f"| {t_nb:.2f} | {t_all:.1f} | {t_cpu:.1f} | {100 * t_nb / t_all:.0f}% |"
        )


if __name__ == "__main__":
    main()
