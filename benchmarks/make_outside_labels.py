"""Expensive labels of the forgetting set: the rattled outside molecules of an ethanol campaign, at B3LYP/def2-SVP.

The forgetting set (:func:`alloop.system.outside.forgetting_structures`: 3 rattled
copies of each small H/C/O molecule of :data:`alloop.system.outside.DEFAULT_MOLECULES`
whose composition is not ethanol's; fixed random stream, no campaign seed) is
what the campaigns' ``forget_*`` columns compare against the original
SevenNet-0. With B3LYP/def2-SVP labels of the same frames, a model's change
there can be judged: towards the fine-tuning level of theory (transfer) or away
from it (damage). Labels come from ``alloop label`` (PySCF, in this process).

    python benchmarks/make_outside_labels.py        # 42 frames, about 3 min on one core

Writes ``benchmarks/data/outside_forgetting_b3lyp-svp.extxyz``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lib.outside_labels import OUT, forgetting_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fidelity", default="b3lyp-svp")
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()
    import ase.io

    from alloop.cli import main as alloop_main

    frames = forgetting_frames()
    with tempfile.TemporaryDirectory() as tmp:
        structures = Path(tmp) / "outside.extxyz"
        ase.io.write(structures, frames)
        code = alloop_main(["label", str(structures), "--fidelity", args.fidelity, "--workers", "0",
                            "-o", str(args.output)])
    labelled = ase.io.read(args.output, index=":")
    print(f"wrote {len(labelled)} of {len(frames)} frames to {args.output} (exit {code})")


if __name__ == "__main__":
    main()
