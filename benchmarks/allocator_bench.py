"""What glibc's malloc settings cost a worker's work: SevenNet-0 training and a periodic PySCF label, three ways.

Each case runs in a fresh process, its work in a second thread as a Dask task runs (one compute thread):

- ``dask``: the environment Dask's nanny gives a worker (``MALLOC_TRIM_THRESHOLD_=65536``), alloop before
  :mod:`alloop.allocator`;
- ``glibc``: glibc's defaults (a process outside Dask: ``alloop train`` before it);
- ``reuse``: Dask's environment, then :func:`alloop.allocator.reuse_freed_memory`, as alloop's workers now run.

The work: ``--steps`` optimiser steps of SevenNet-0 (batch 4) on the 24 reline reference frames (38 atoms, a
7.1 A cell), the same on 30 frames of ethanol (the universal quickstart's kind), and one PBE/GTH-SZV label of the
reline melt. Printed per work and case: wall and CPU seconds (user, system), minor page faults, the peak resident
memory, and the result (the trained weights' fingerprint, the label's energy), which must not change.

Writes a result file (``--results``, default ``benchmarks/results/memory-reuse/allocator.json``) with every row,
the frames of each work, the thread count and the run record (``lib/run_record.py``: the command, date, commit, cores,
the versions of torch, sevenn and PySCF, the 1-min load average at the start and the end and the CPU seconds,
the cases' processes' included); the table (printed, and in docs/benchmarks.md through
``python benchmarks/docs_tables.py``) is ``lib/allocator_table.py``'s.

    python benchmarks/allocator_bench.py                      # about 10 minutes on a free core
    python benchmarks/allocator_bench.py --works ethanol-train --steps 30
    python benchmarks/allocator_bench.py --garbage-check      # about 3 minutes

``--garbage-check``: reused memory is not zeroed, so code that reads memory it never wrote would now read what
an earlier computation left there. With alloop's settings, one process labels the melt three times, each time
after filling freed blocks of 1-300 MiB with huge random numbers, and prints whether the energies and forces are
identical to each other and to a fresh process's under Dask's setting.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from lib.allocator_table import allocator_lines
from lib.common import DATA, ROOT
from lib.run_record import finish_record, load_text, start_record

from alloop.io import write_atomic

CASES = ("dask", "glibc", "reuse")
WORKS = ("reline-train", "ethanol-train", "reline-label")
DASK_ENV = {"MALLOC_TRIM_THRESHOLD_": "65536"}  # distributed.nanny.pre-spawn-environ's
RESULTS = ROOT / "benchmarks" / "results" / "memory-reuse" / "allocator.json"
RELINE_FRAMES = DATA / "reline_1fu_350K_eqtest_pbe-gth-dzvp.extxyz"


def _train(frames: Path, steps: int) -> str:
    """The parameter fingerprint of SevenNet-0 after ``steps`` standard-training steps on ``frames`` (1 thread)."""
    from alloop.cli import build_parser
    from alloop.deploy.loading import load_trained
    from alloop.training.trainer import parameter_fingerprint

    out = Path(tempfile.mkdtemp()) / "model.pt"
    argv = ["train", "--expensive", str(frames), "--method", "standard", "--model", "sevennet-0", "--steps",
            str(steps), "--batch-size", "4", "--threads", "1", "--seed", "0", "-o", str(out), "--quiet"]
    args = build_parser("train").parse_args(argv)
    args.func(args)  # not cli.main: it would set the allocator for every case
    return parameter_fingerprint(load_trained(out).model)


def _label() -> float:
    """Energy (eV) of the reline melt at PBE/GTH-SZV, 1 thread."""
    from alloop.fidelity import load_fidelity
    from alloop.io import read_structures
    from alloop.labeling.factory import labeler_for

    box = read_structures(DATA / "reline_1fu_melt.extxyz", "0")[0]
    result = labeler_for(load_fidelity("pbe-gth-szv")).label(box)
    return float(result.energy_eV)


def garbage_labels(repeats: int) -> list[tuple[float, list[float]]]:
    """``repeats`` labels of the melt in a second thread, freed blocks filled with garbage before each."""
    import numpy as np

    from alloop.fidelity import load_fidelity
    from alloop.io import read_structures
    from alloop.labeling.factory import labeler_for

    box = read_structures(DATA / "reline_1fu_melt.extxyz", "0")[0]
    out: list[tuple[float, list[float]]] = []

    def run() -> None:
        rng = np.random.default_rng(0)
        for _ in range(repeats):
            for mib in (1, 8, 64, 300):
                block = rng.standard_normal(mib << 17) * 1e300
                del block
            result = labeler_for(load_fidelity("pbe-gth-szv")).label(box)
            out.append((float(result.energy_eV), np.asarray(result.forces_eV_per_A).ravel().tolist()))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out


def child(work: str, case: str, steps: int) -> dict[str, Any]:
    """Run ``work`` in a second thread of this process and measure it."""
    if case == "reuse":
        from alloop.allocator import reuse_freed_memory

        assert reuse_freed_memory(), "this C library has no mallopt"
    if work == "garbage":
        return {"labels": garbage_labels(3 if case == "reuse" else 1)}
    import torch

    torch.set_num_threads(1)
    result: dict[str, Any] = {}

    def run() -> None:
        if work == "reline-label":
            result["value"] = _label()
        else:
            frames = RELINE_FRAMES if work == "reline-train" else _ethanol()
            result["value"] = _train(frames, steps)

    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall": time.perf_counter() - t0, "user": after.ru_utime - before.ru_utime,
            "system": after.ru_stime - before.ru_stime, "faults": after.ru_minflt - before.ru_minflt,
            "max_rss_GB": after.ru_maxrss / 1e6, **result}


def _ethanol() -> Path:
    """30 frames of the 500 K B3LYP pool, written once."""
    import ase.io

    path = Path(tempfile.gettempdir()) / "alloop-allocator-ethanol30.extxyz"
    if not path.exists():
        ase.io.write(path, ase.io.read(DATA / "ethanol_500K_eqpool_b3lyp-svp.extxyz", ":30"))
    return path


def measure(work: str, case: str, steps: int) -> dict[str, Any]:
    """One (work, case) in a fresh process with the case's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if case != "glibc":
        env.update(DASK_ENV)
    cmd = [sys.executable, __file__, "--child", work, case, "--steps", str(steps)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def work_frames(work: str) -> dict[str, int]:
    """The training frames of a work (0 for the label) and their atoms."""
    import ase.io

    frames = ase.io.read(RELINE_FRAMES if work == "reline-train" else _ethanol(), ":") if work != "reline-label" else []
    return {"frames": len(frames), "atoms": len(frames[0]) if frames else 0}


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every (work, case) measured; the result file's content, with the run's record."""
    record = start_record(__file__, packages=("torch", "sevenn", "pyscf"))
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = []
    for work in args.works:
        for case in args.cases:
            m = measure(work, case, args.steps)
            rows.append({"work": work, "case": case, **{k: m[k] for k in
                                                        ("wall", "user", "system", "faults", "max_rss_GB", "value")}})
            print(f"{work} {case}: {m['wall']:.1f} s", file=sys.stderr, flush=True)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    return {**finish_record(record, children), "threads": 1, "steps": args.steps, "batch_size": 4,
            "works": {work: work_frames(work) for work in args.works}, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--works", nargs="+", default=list(WORKS), choices=WORKS)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--steps", type=int, default=16, help="optimiser steps per training")
    ap.add_argument("--results", type=Path, default=RESULTS, help=f"result file (default {RESULTS.relative_to(ROOT)})")
    ap.add_argument("--child", nargs=2, metavar=("WORK", "CASE"), help=argparse.SUPPRESS)
    ap.add_argument("--garbage-check", action="store_true", help="only the check on reused memory (see above)")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.steps)))
        return
    if args.garbage_check:
        labels = measure("garbage", "reuse", 0)["labels"] + measure("garbage", "dask", 0)["labels"]
        same = all(e == labels[0][0] and f == labels[0][1] for e, f in labels)
        print(f"PBE/GTH-SZV energies {[e for e, _ in labels]} eV (3 x alloop's settings after garbage, then Dask's "
              f"in a fresh process): energies and forces {'identical' if same else 'DIFFER'}")
        return
    result = run_all(args)
    print("\n".join(allocator_lines(result)))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.results, (json.dumps(result, indent=1) + "\n").encode())
    print(f"\n{args.steps} steps per training; {load_text(result)}; {result['cpu_s']:.0f} CPU s; "
          f"written to {args.results}")


if __name__ == "__main__":
    main()
