"""CCSD(T)/cc-pVDZ labels of equilibrium 500 K ethanol for the ASTEROID ladder (issue 27, part 5).

The ladder of the ASTEROID paper at small scale: B3LYP/def2-SVP is the cheap level, CCSD(T)/cc-pVDZ (the
``ccsdt-dz`` preset, about 4 CPU minutes per ethanol energy + gradient) the expensive one. The frames are
those of the committed equilibrium sets (independent GFN2-xTB runs, already labelled at B3LYP/def2-SVP):
``--test`` frames spread evenly over ``ethanol_500K_eqtest_b3lyp-svp.extxyz`` (held out for scoring) and
``--train`` frames spread evenly over ``ethanol_500K_eqpool_b3lyp-svp.extxyz`` (candidates for training).

Within a set, the next frame is always taken from the source trajectory with the fewest labelled frames so
far, as far (in time) from that trajectory's labelled frames as the plan allows (``balanced_order``), and the
two sets alternate (test, train, test, ...), one frame at a time in this process: a run stopped at any point
leaves a pair of sets that covers every independent trajectory about equally. (Until 2026-11-26 the order
was the plan's, trajectory after trajectory: the first 17 labels came from 2 of the 6 trajectories of each
set; the balanced order fills the others first.) After every label it rewrites
``ethanol_500K_ccsdt<set>_ccsdt-dz.extxyz`` (the expensive labels, with their provenance) and
``..._b3lyp-svp.extxyz`` (the same frames' B3LYP labels), each frame's place in its source set in
``source_index``. Those files are the cache: a rerun (on any machine, from a checkout) skips the frames they
hold.

    python benchmarks/make_ccsdt_sets.py                         # 30 test + 40 train frames (~5 CPU h)
    python benchmarks/make_ccsdt_sets.py --test 2 --train 2 --out /tmp/ccsdt --fidelity hf-sto3g   # a smoke run

``--sets train`` (or ``test``) labels one set only: one process per set uses two cores without two
writers of the same file (each process rewrites only the files of the set it labels).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from lib.common import DATA, data_file

SOURCES = {"test": "ethanol_500K_eqtest_b3lyp-svp.extxyz", "train": "ethanol_500K_eqpool_b3lyp-svp.extxyz"}


def spread(n_available: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(n_available)`` (the sets are ordered by trajectory)."""
    if n > n_available:
        raise SystemExit(f"asked for {n} frames of a set of {n_available}")
    return [int(i) for i in np.linspace(0, n_available - 1, n).round().astype(int)]


def balanced_order(plan: list[int], trajectory: list[str], done: set[int]) -> list[int]:
    """The plan's frames not in ``done``, in labelling order: each next frame from the trajectory with the fewest
    frames labelled or ordered so far (ties: the trajectory seen first), the one farthest in source index from
    that trajectory's chosen frames (none yet: the middle one). ``trajectory[i]`` names frame ``i``'s run."""
    chosen = {t: [i for i in plan if i in done and trajectory[i] == t] for t in dict.fromkeys(trajectory[i] for i in plan)}
    remaining = {t: [i for i in plan if i not in done and trajectory[i] == t] for t in chosen}
    order: list[int] = []
    while any(remaining.values()):
        t = min((t for t in chosen if remaining[t]), key=lambda t: len(chosen[t]))
        if chosen[t]:
            pick = max(remaining[t], key=lambda i: (min(abs(i - j) for j in chosen[t]), -i))
        else:
            pick = remaining[t][(len(remaining[t]) - 1) // 2]
        remaining[t].remove(pick)
        chosen[t].append(pick)
        order.append(pick)
    return order


def interleave(orders: dict[str, list[int]]) -> list[tuple[str, int]]:
    """(set, source index) in the labelling order: the sets' own orders, alternately."""
    order: list[tuple[str, int]] = []
    for k in range(max((len(v) for v in orders.values()), default=0)):
        for name, indices in orders.items():
            if k < len(indices):
                order.append((name, indices[k]))
    return order


def set_path(out: Path, name: str, fidelity_name: str) -> Path:
    return out / f"ethanol_500K_ccsdt{name}_{fidelity_name}.extxyz"


def done_frames(out: Path, name: str, fidelity_name: str) -> dict[int, Atoms]:
    """The frames of a set already labelled at the expensive level, by source index."""
    from alloop.io import read_structures

    path = set_path(out, name, fidelity_name)
    return {int(a.info["source_index"]): a for a in read_structures(str(path))} if path.exists() else {}


def write_set(out: Path, name: str, fidelity_name: str, done: dict[int, Atoms], plan: list[int],
              source: list[Atoms]) -> None:
    """Rewrite a set's extxyz pair (expensive labels; the same frames' B3LYP labels) in plan order."""
    from alloop.io import write_extxyz

    indices = [i for i in plan if i in done]
    twins = []
    for i in indices:
        twin = source[i].copy()
        twin.calc = source[i].calc
        twin.info["source_index"] = i
        twins.append(twin)
    write_extxyz(set_path(out, name, fidelity_name), [done[i] for i in indices])
    write_extxyz(set_path(out, name, "b3lyp-svp"), twins)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", type=int, default=30, help="held-out frames (default 30)")
    parser.add_argument("--train", type=int, default=40, help="training candidates (default 40)")
    parser.add_argument("--fidelity", default="ccsdt-dz", help="the expensive level (default ccsdt-dz)")
    parser.add_argument("--threads", type=int, default=1, help="PySCF threads (default 1)")
    parser.add_argument("--sets", nargs="+", choices=sorted(SOURCES), default=sorted(SOURCES),
                        help="which sets this process labels (default both; one per process for two cores)")
    parser.add_argument("--out", type=Path, default=DATA, help="output folder (default benchmarks/data)")
    args = parser.parse_args(argv)

    from alloop.commands.label import labelled_frame
    from alloop.fidelity import load_fidelity
    from alloop.io import read_structures
    from alloop.labeling.factory import labeler_for

    sources = {name: read_structures(str(data_file(file))) for name, file in SOURCES.items()}
    plan = {"test": spread(len(sources["test"]), args.test), "train": spread(len(sources["train"]), args.train)}
    fidelity = load_fidelity(args.fidelity)
    labeler = labeler_for(fidelity, threads=args.threads)
    done = {name: done_frames(args.out, name, fidelity.name) for name in plan}
    orders = {name: balanced_order(plan[name], [str(a.info["trajectory"]) for a in sources[name]], set(done[name]))
              for name in plan if name in args.sets}
    todo = interleave(orders)
    on_disk = sum(len(v) for v in done.values())
    total = sum(len(v) for v in plan.values())
    print(f"{on_disk} of {total} labels on disk; {len(todo)} to do at {fidelity.name} ({', '.join(args.sets)})",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    failed = 0
    for k, (name, i) in enumerate(todo, 1):
        result = labeler.label(sources[name][i])
        if result.ok:
            frame = labelled_frame(sources[name][i], result)
            frame.info["source_index"] = i
            done[name][i] = frame
            write_set(args.out, name, fidelity.name, done[name], plan[name], sources[name])
        else:
            failed += 1
        elapsed = time.perf_counter() - start
        print(f"{k}/{len(todo)} {name} frame {i}: {result.status.value}, {result.cpu_seconds:.0f} CPU s; "
              f"test {len(done['test'])}, train {len(done['train'])}; elapsed {elapsed:.0f} s, "
              f"ETA {elapsed / k * (len(todo) - k):.0f} s", file=sys.stderr, flush=True)
    print(f"| set | frames labelled at {fidelity.name} |\n|---|---:|")
    for name in plan:
        print(f"| {name} | {len(done[name])} of {len(plan[name])} |")
    if failed:
        print(f"{failed} labels failed (not written; a rerun tries them again)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
