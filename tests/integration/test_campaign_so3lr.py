"""A one-cycle ethanol campaign with the pretrained SO3LR (``model.preset: so3lr``, weights from the so3krates-torch
wheel): real GFN2-xTB and PySCF labels, Dask, MD and Zarr store; its final model is SO3LR fine-tuned (on a GFN2-xTB
baseline, as the universal quickstart trains SevenNet-0) and the campaign calculator reproduces the stored model.
Marked ``so3lr``: skipped without so3krates-torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop import calculator
from alloop.campaign.loop.runner import start_campaign
from alloop.config import load_campaign
from alloop.potentials.checkpoint import model_from_bytes
from alloop.potentials.inference import predict
from alloop.potentials.registry import build_model, model_preset
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from harness.campaigns import check_invariants, write_one_cycle_ethanol

pytestmark = pytest.mark.so3lr

def test_a_campaign_fine_tunes_so3lr_on_a_gfn2_baseline(tmp_path):
    path = write_one_cycle_ethanol(tmp_path, "so3lr", "{preset: so3lr, baseline: gfn2-xtb}", cheap="gfn2-xtb",
                                   method="standard", seed=4)
    run_dir = tmp_path / "run"
    start_campaign(load_campaign(path), run_dir, progress=False, echo=lambda line: None)
    check_invariants(run_dir, 1, cheap_name="gfn2-xtb")
    with CampaignStore.open(store_path(run_dir)) as store:
        models = [c for c in store.checkpoints() if c["role"] == "model"]
        newest = store.checkpoint(max(int(c["version"]) for c in models))[0]
    assert len(models) == 2  # the bootstrap's fine-tuned SO3LR, then cycle 0's
    model = model_from_bytes(newest)[0]
    assert type(model).__name__ == "DeltaPotential" and type(model.inner).__name__ == "SO3LRPotential"
    packaged = dict(build_model(elements=list(model.elements), **model_preset("so3lr")).named_parameters())
    changed = [n for n, p in model.inner.named_parameters() if not torch.equal(p, packaged[n])]
    assert changed  # fine-tuned from the wheel's weights

    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.05, seed=2)
    energy, forces = predict(model, [ethanol])  # SO3LR's delta plus GFN2-xTB, as the campaign's calculator adds them
    ethanol.calc = calculator(run_dir)
    assert np.isfinite(forces).all()
    assert abs(ethanol.get_potential_energy() - energy[0]) < 1e-6
    assert np.abs(ethanol.get_forces() - forces).max() < 1e-6
