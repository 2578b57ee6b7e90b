"""Campaign store speed: frames appended per second (add_frames + commit) and the cost of opening a big store.

    python benchmarks/store_bench.py            # full run
    python benchmarks/store_bench.py --quick    # smoke run
    python benchmarks/store_bench.py --no-fsync # commits without fsync (crash-safe against kills, not power loss)

Prints Markdown tables and writes benchmarks/results/store-bench/store.json (``--out``; the docs' tables are
generated from it). Timings depend on the disk and on the machine's load (its 1-minute load average is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from lib.common import ROOT
from lib.store_bench_table import store_bench_lines

from alloop.store import CampaignStore

#: the result file
OUT = ROOT / "benchmarks" / "results" / "store-bench" / "store.json"


def make_frames(n_frames: int, n_atoms: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    numbers = rng.integers(1, 10, (n_frames, n_atoms))
    positions = rng.normal(0.0, 3.0, (n_frames, n_atoms, 3))
    return [Atoms(numbers=numbers[k], positions=positions[k]) for k in range(n_frames)]


def append_rate(folder: Path, n_atoms: int, batch: int, n_batches: int, durable: bool) -> dict[str, float]:
    """Frames per second and milliseconds per commit (wall and this process's CPU) for ``n_batches`` batches of
    ``batch`` frames."""
    frames = make_frames(batch * n_batches, n_atoms)
    with CampaignStore.create(folder / f"append-{n_atoms}-{batch}", durable=durable) as store:
        store.add_frames(frames[:batch], md_step=np.arange(batch))  # creates the arrays: not timed
        store.commit()
        start, cpu = time.perf_counter(), time.process_time()
        for k in range(1, n_batches):
            store.add_frames(frames[k * batch : (k + 1) * batch], md_step=np.arange(batch), replica=0)
            store.commit()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = batch * (n_batches - 1)
    return {"frames": n, "commits": n_batches - 1, "fps": n / elapsed, "ms_per_commit": 1e3 * elapsed / (n_batches - 1),
            "cpu_ms_per_commit": 1e3 * cpu / (n_batches - 1)}


def open_cost(folder: Path, n_frames: int, n_atoms: int, durable: bool) -> dict[str, float]:
    """Build a store of ``n_frames`` frames, then time open, frame_meta(), and reading 100 random frames."""
    path = folder / f"open-{n_frames}"
    chunk = 10_000
    with CampaignStore.create(path, durable=durable) as store:
        for start in range(0, n_frames, chunk):
            store.add_frames(make_frames(min(chunk, n_frames - start), n_atoms, seed=start), origin="md")
            store.commit()
    t0 = time.perf_counter()
    store = CampaignStore.open(path)
    t1 = time.perf_counter()
    meta = store.frame_meta()
    t2 = time.perf_counter()
    ids = np.random.default_rng(1).choice(n_frames, 100, replace=False)
    store.get_frames(ids)
    t3 = time.perf_counter()
    writer = CampaignStore.open(path, "a")
    t4 = time.perf_counter()
    writer.close()
    store.close()
    assert len(meta["frame_id"]) == n_frames
    ms = [1e3 * dt for dt in (t1 - t0, t2 - t1, t3 - t2, t4 - t3)]
    return dict(zip(("open_ms", "meta_ms", "get100_ms", "open_a_ms"), ms, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--no-fsync", action="store_true", help="open stores with durable=False")
    parser.add_argument("--out", type=Path, default=OUT, help=f"result file (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    durable = not args.no_fsync
    n_batches = {1: 20, 32: 10, 1024: 4} if args.quick else {1: 100, 32: 40, 1024: 12}
    n_open = 10_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        folder = Path(tmp)
        append = [{"atoms": n_atoms, "batch": batch, **append_rate(folder, n_atoms, batch, count, durable)}
                  for n_atoms in (10, 100) for batch, count in n_batches.items()]
        result = {"fsync": durable, "append": append,
                  "open": {"frames": n_open, "atoms": 10, **open_cost(folder, n_open, 10, durable)},
                  "measured": time.strftime("%Y-%m-%d"), "load_average": os.getloadavg()[0]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(store_bench_lines(result)))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
