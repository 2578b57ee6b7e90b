"""Campaign store speed: frames appended per second (add_frames + commit) and the cost of opening a big store.

    python benchmarks/store_bench.py            # full run
    python benchmarks/store_bench.py --quick    # smoke run
    python benchmarks/store_bench.py --no-fsync # commits without fsync (crash-safe against kills, not power loss)

Prints Markdown tables. Timings depend on the disk and on the machine's load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from alloop.store import CampaignStore


def make_frames(n_frames: int, n_atoms: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    numbers = rng.integers(1, 10, (n_frames, n_atoms))
    positions = rng.normal(0.0, 3.0, (n_frames, n_atoms, 3))
    return [Atoms(numbers=numbers[k], positions=positions[k]) for k in range(n_frames)]


def append_rate(folder: Path, n_atoms: int, batch: int, n_batches: int, durable: bool) -> dict[str, float]:
    """Frames per second and milliseconds per commit for ``n_batches`` batches of ``batch`` frames."""
    frames = make_frames(batch * n_batches, n_atoms)
    with CampaignStore.create(folder / f"append-{n_atoms}-{batch}", durable=durable) as store:
        store.add_frames(frames[:batch], md_step=np.arange(batch))  # creates the arrays: not timed
        store.commit()
        start = time.perf_counter()
        for k in range(1, n_batches):
            store.add_frames(frames[k * batch : (k + 1) * batch], md_step=np.arange(batch), replica=0)
            store.commit()
        elapsed = time.perf_counter() - start
    n = batch * (n_batches - 1)
    return {"frames": n, "commits": n_batches - 1, "fps": n / elapsed, "ms_per_commit": 1e3 * elapsed / (n_batches - 1)}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--no-fsync", action="store_true", help="open stores with durable=False")
    args = parser.parse_args()
    durable = not args.no_fsync
    n_batches = {1: 20, 32: 10, 1024: 4} if args.quick else {1: 100, 32: 40, 1024: 12}
    n_open = 10_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        folder = Path(tmp)
        print(f"## Appending frames (add_frames + commit; fsync {'on' if durable else 'off'})\n")
        print("| atoms/frame | batch | frames | commits | frames/s | ms/commit |")
        print("|---:|---:|---:|---:|---:|---:|")
        for n_atoms in (10, 100):
            for batch, count in n_batches.items():
                r = append_rate(folder, n_atoms, batch, count, durable)
                cells = [n_atoms, batch, r["frames"], r["commits"], f"{r['fps']:.0f}", f"{r['ms_per_commit']:.1f}"]
                print("| " + " | ".join(map(str, cells)) + " |", flush=True)
        r = open_cost(folder, n_open, 10, durable)
        print(f"\n## Opening a store of {n_open} frames (10 atoms each)\n")
        print("| open (read) ms | frame_meta() ms | get_frames(100 random) ms | open (write: lock, cleanup) ms |")
        print("|---:|---:|---:|---:|")
        print(f"| {r['open_ms']:.1f} | {r['meta_ms']:.1f} | {r['get100_ms']:.1f} | {r['open_a_ms']:.1f} |")


if __name__ == "__main__":
    main()
