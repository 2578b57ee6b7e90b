"""Write ``ethanol_two_head.safetensors``: the two-head EGNN that the in-distribution refinement test loads.

The frozen recipe (:mod:`alloop.training.two_head`) on the repository's ethanol
data (benchmarks/data): cheap labels = the 150 HF/STO-3G frames of the 500 K
pool, expensive labels = the first 50 B3LYP/def2-SVP frames of the same pool;
an EGNN of 24 features and 3 layers (float32), seed 0. Run from the
repository root: ``python tests/unit/training/data/make_ethanol_two_head.py``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from alloop.potentials.checkpoint import save_checkpoint
from alloop.potentials.egnn import EGNN
from alloop.training.run import load_dataset
from alloop.training.stages import AsteroidSettings
from alloop.training.trainer import TrainSettings
from alloop.training.two_head import train_two_head

DATA = Path("benchmarks/data")


def main() -> None:
    torch.set_num_threads(1)
    cheap = load_dataset(DATA / "ethanol_500K_short_pool_hf-sto3g.extxyz", "cheap")
    expensive = load_dataset(DATA / "ethanol_500K_short_pool_b3lyp-svp.extxyz", "expensive")
    expensive = expensive.subset(range(50))
    run = TrainSettings(max_steps=3000, batch_size=8, lr=3e-3, threads=1)
    settings = AsteroidSettings(stage1=run, stage2=run, stage3=replace(run, max_steps=1500), seed=0)
    result = train_two_head(expensive, cheap, lambda: EGNN([1, 6, 8], hidden_features=24, n_layers=3, seed=0),
                            settings=settings, log=print)
    for head, name in (("cheap", "hf-sto3g"), ("expensive", "b3lyp-svp")):
        result.model.record_fidelity(head, result.model.fidelities[head]["tag"], name)
    out = Path(__file__).with_name("ethanol_two_head.safetensors")
    save_checkpoint(result.model, out, {"metrics": result.metrics, "made_by": Path(__file__).name})
    print(f"wrote {out}: expensive validation force MAE {result.metrics['force_mae_eV_per_A']:.4f} eV/A")


if __name__ == "__main__":
    main()
