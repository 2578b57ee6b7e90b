"""Memory of a training step in a dense system: SevenNet-0 on frames of 64 waters (192 atoms, periodic), one step
(forces with their graph kept, backward) in one pass against alloop's pieces of bounded neighbour pairs
(:data:`alloop.training.epochs.MAX_TRAIN_PAIRS`), each step in its own process (peak RSS is per process).

Prints the table and writes ``benchmarks/results/train-memory.json``. About three minutes on one core.

    python benchmarks/train_memory.py [--waters 64] [--model sevennet-0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from lib.common import ROOT
from lib.run_record import finish_record, start_record
from lib.train_memory_table import train_memory_table

from alloop.io import write_atomic

RESULT = ROOT / "benchmarks" / "results" / "train-memory.json"
#: (frames, in pieces) of each measured step
STEPS = ((1, False), (2, False), (1, True), (2, True), (4, True))


def child(frames: int, pieces: bool, waters: int, model_name: str) -> dict:
    """One training step in this process; its peak RSS and seconds."""
    import torch
    from ase.calculators.singlepoint import SinglePointCalculator

    from alloop.potentials.inference import batch_bounds
    from alloop.potentials.registry import build_model, model_preset
    from alloop.testing.cells import water_box
    from alloop.training import epochs
    from alloop.training.data import FrameDataset
    from alloop.training.settings import TrainSettings

    torch.set_num_threads(1)
    boxes = []
    for seed in range(frames):
        box = water_box(waters, seed=seed)
        box.calc = SinglePointCalculator(box, energy=-1.0, forces=np.zeros((len(box), 3)))
        boxes.append(box)
    if not pieces:
        epochs.MAX_TRAIN_PAIRS = 10**12
    model = build_model(elements=[1, 8], **model_preset(model_name))
    batch = next(FrameDataset.from_atoms(boxes).batches(frames))
    offsets = batch.atoms.ptr.numpy()
    passes = len(batch_bounds(offsets, np.ones(frames, bool), frames, max_pairs=epochs.MAX_TRAIN_PAIRS))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    start = time.perf_counter()
    epochs.backward_in_pieces(model, batch, TrainSettings(max_steps=1, batch_size=frames), normalizer=float(frames))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return {"frames": frames, "atoms": int(offsets[-1]), "pairs": int(offsets[-1]) * 60, "pieces": pieces,
            "passes": passes, "peak_gb": peak, "growth_gb": peak - before, "step_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--waters", type=int, default=64)
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--child", nargs=2, type=int, metavar=("FRAMES", "PIECES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], bool(args.child[1]), args.waters, args.model)))
        return
    record = start_record("benchmarks/train_memory.py", packages=("torch", "sevenn"))
    rows = []
    for frames, pieces in STEPS:
        out = subprocess.run([sys.executable, __file__, "--waters", str(args.waters), "--model", args.model,
                              "--child", str(frames), str(int(pieces))], capture_output=True, text=True,
                             check=True, cwd=os.path.dirname(__file__))
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{frames} frame(s), {'pieces' if pieces else 'one pass'}: peak {r['peak_gb']:.2f} GB, "
              f"{r['step_s']:.1f} s", flush=True)
    from alloop.training.epochs import MAX_TRAIN_PAIRS

    result = {"model": args.model, "waters": args.waters, "max_train_pairs": MAX_TRAIN_PAIRS,
              "threads": 1, "rows": rows, "record": finish_record(record)}
    print(train_memory_table(result))
    write_atomic(RESULT, (json.dumps(result, indent=1) + "\n").encode())
    print(f"wrote {RESULT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
