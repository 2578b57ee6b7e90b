"""Starting boxes of liquid water for a periodic campaign (``campaigns/water-box-starts.extxyz``).

Each start is a box of ``--waters`` randomly oriented molecules at 1 g/cm^3
(:func:`alloop.testing.cells.water_box`, seed ``s`` of ``--seeds``: none of them a seed of the evaluation set's
runs, 0 and 1) melted by ``--ps`` of periodic Langevin MD at ``--temperature`` on the GFN1-xTB surface
(tblite, 0.5 fs, friction 0.01/fs; ~0.1 s per step for 8 waters): a campaign whose MD starts from a lattice
spends its short segments melting it and labels lattice-like frames the liquid never visits. The boxes are
made in parallel over ``--workers`` processes and written in seed order with their cell and pbc (a periodic
structure file sets a campaign's cell). Prints the O-O and O-H distances of each box before and after.

    python benchmarks/make_water_box_starts.py                 # 4 boxes of 8 waters, 0.5 ps at 300 K: ~4 min on 2 cores
    python benchmarks/make_water_box_starts.py --quick         # 2 boxes of 2 waters, 0.02 ps
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from ase import Atoms
from lib.box_md import liquid
from lib.common import markdown_table

from alloop.io import write_extxyz
from alloop.system.structures import pair_distances
from alloop.testing.cells import water_box

ROOT = Path(__file__).resolve().parents[1]


def distances(atoms: Atoms) -> tuple[float, float]:
    """(shortest O-O distance, mean O-H bond length) in A, minimum image."""
    d = pair_distances(atoms.positions, atoms.cell.array)
    oxygen, hydrogen = np.flatnonzero(atoms.numbers == 8), np.flatnonzero(atoms.numbers == 1)
    oo = d[np.ix_(oxygen, oxygen)]
    oh = d[np.ix_(oxygen, hydrogen)]  # each H's nearest O is its own
    return float(oo[np.triu_indices(len(oxygen), 1)].min()), float(oh.min(axis=0).mean())


def make_start(n_waters: int, seed: int, temperature: float, ps: float) -> tuple[Atoms, dict]:
    box = water_box(n_waters, seed=seed)
    t0 = time.perf_counter()
    melted = liquid(box, temperature, ps, seed=seed)
    melted.info["name"] = f"water{n_waters}-gfn1-{temperature:g}K-{ps:g}ps-seed{seed}"
    before, after = distances(box), distances(melted)
    return melted, [seed, f"{before[0]:.3f}", f"{after[0]:.3f}", f"{before[1]:.3f}", f"{after[1]:.3f}",
                    f"{time.perf_counter() - t0:.0f}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waters", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[200, 201, 202, 203])
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--ps", type=float, default=0.5, help="GFN1-xTB MD per box (ps)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "campaigns" / "water-box-starts.extxyz")
    parser.add_argument("--quick", action="store_true", help="2 boxes of 2 waters, 0.02 ps, to a scratch file")
    args = parser.parse_args(argv)
    if args.quick:
        args.waters, args.seeds, args.ps = 2, args.seeds[:2], 0.02
        if args.out == parser.get_default("out"):
            args.out = Path("water-box-starts-quick.extxyz")
    if args.waters < 1 or args.ps < 0 or args.workers < 1:
        parser.error("--waters and --workers must be >= 1, --ps >= 0")
    print(f"{len(args.seeds)} boxes of {args.waters} waters, {args.ps} ps of GFN1-xTB MD at {args.temperature} K "
          f"each, on {args.workers} processes", flush=True)
    with ProcessPoolExecutor(args.workers) as pool:
        done = list(pool.map(make_start, [args.waters] * len(args.seeds), args.seeds,
                             [args.temperature] * len(args.seeds), [args.ps] * len(args.seeds)))
    write_extxyz(args.out, [atoms for atoms, _ in done])
    header = ["seed", "min O-O before (A)", "after", "mean O-H before (A)", "after", "wall (s)"]
    print(markdown_table(header, [row for _, row in done]))
    print(f"wrote {len(done)} boxes to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
