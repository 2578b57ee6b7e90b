"""Kernel herding on ethanol's 500 K pool: how well 30 herded frames represent the pool, against random draws.

Describes the 150 frames of ``benchmarks/data/ethanol_500K_eqpool_b3lyp-svp.extxyz`` (GFN2-xTB MD at 500 K) with
the pretrained SevenNet-0's latent features (the per-element mean, as the loop's selection describes frames),
picks 30 by kernel herding (:func:`alloop.uncertainty.herding.kernel_herding`), 30 by farthest-point sampling, and
draws 30 at random many times; prints the squared MMD of each set to the pool (RBF kernel, median-heuristic
bandwidth, standardised descriptors) and the trans / gauche+ / gauche- shares of the H-O-C-C dihedral, and writes
``benchmarks/results/herding.json``. About half a minute on one core.

    python benchmarks/herding_bench.py [--n 30] [--draws 2000] [--model sevennet-0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from ase.io import read
from lib.common import DATA, ROOT
from lib.descriptors import describe
from lib.herding_table import BASINS, herding_table

from alloop.io import write_atomic
from alloop.system.conformers import basin_index, dihedrals, find_rotors
from alloop.uncertainty.herding import kernel_herding, median_bandwidth, squared_mmd, standardise
from alloop.uncertainty.selection import farthest_point_sampling

POOL = DATA / "ethanol_500K_eqpool_b3lyp-svp.extxyz"
RESULT = ROOT / "benchmarks" / "results" / "herding.json"


def shares(basins: np.ndarray) -> dict[str, float]:
    return {name: float(np.mean(basins == k)) for k, name in enumerate(BASINS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=30, help="frames picked")
    parser.add_argument("--draws", type=int, default=2000, help="random draws of n frames")
    parser.add_argument("--model", default="sevennet-0", help="model preset whose features describe the frames")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    frames = read(POOL, ":")
    descriptors = describe(frames, args.model)
    t_describe = time.perf_counter() - t0
    z = standardise(descriptors)[0]
    assert z is not None
    h = median_bandwidth(z)
    herded = kernel_herding(descriptors, args.n).indices
    fps = farthest_point_sampling(z, args.n, start=int(herded[0]))  # the same start as herding
    rng = np.random.default_rng(args.seed)
    draws = [rng.choice(len(z), args.n, replace=False) for _ in range(args.draws)]
    random = np.array([squared_mmd(z[d], z, h) for d in draws])
    rotor = next(r for r in find_rotors(frames[0]) if not r.symmetric)  # H-O-C-C
    basins = basin_index(dihedrals(np.array([a.positions for a in frames]), [rotor])[:, 0])
    random_shares = np.array([[np.mean(basins[d] == k) for k in range(3)] for d in draws])
    result = {
        "pool": POOL.name, "n_pool": len(frames), "n": args.n, "draws": args.draws, "model": args.model,
        "seed": args.seed, "bandwidth": h, "describe_seconds": round(t_describe, 1),
        "mmd2": {"herding": squared_mmd(z[herded], z, h), "fps": squared_mmd(z[fps], z, h),
                 "random_mean": float(random.mean()), "random_p5": float(np.percentile(random, 5)),
                 "random_p95": float(np.percentile(random, 95)),
                 "random_below_herding": float(np.mean(random <= squared_mmd(z[herded], z, h)))},
        "populations": {"pool": shares(basins), "herding": shares(basins[herded]), "fps": shares(basins[fps]),
                        "random_mean": dict(zip(BASINS, random_shares.mean(axis=0).tolist(), strict=True)),
                        "random_sd": dict(zip(BASINS, random_shares.std(axis=0).tolist(), strict=True))},
        "herded_indices": herded.tolist(),
    }
    m = result["mmd2"]
    print(f"{len(frames)} frames of {POOL.name}, described by {args.model} in {t_describe:.0f} s; bandwidth {h:.3f}")
    print(herding_table(result))
    print(f"random draws at or below herding's MMD^2: {m['random_below_herding']:.2%}")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(RESULT, (json.dumps(result, indent=1) + "\n").encode())
    print(f"wrote {RESULT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
