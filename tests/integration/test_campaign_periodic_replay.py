"""Replay in a periodic campaign: SevenNet-0 fine-tuned on water boxes (GFN1-xTB cheap, GFN2-xTB expensive, both
periodic) keeps half of each batch for gas-phase outside molecules that the original model labelled. Batches
mix periodic frames and molecules; the store, the forgetting scores and the trained model keep working."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.cli import main
from alloop.io import write_extxyz
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from alloop.testing.cells import water_box

pytest.importorskip("sevenn")
pytest.importorskip("tblite")

CAMPAIGN = """
name: box-replay
seed: 1
system: {structures: start.extxyz}
fidelities: {cheap: gfn1-xtb, expensive: gfn2-xtb}
model: sevennet-0
md: {n_replicas: 2, segment_steps: 20, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0, restart_from: start}
uncertainty: {n_components: 2}
selection: {max_cheap_per_cycle: 3, min_cheap_per_cycle: 2, max_expensive_per_cycle: 2, min_step_spacing: 6,
            energy_window_sigma: null, expensive_pick: bias}
training: {method: standard, steps: 4, batch_size: 2, energy_weight: 0.1, replay_fraction: 0.5, final_retrain: false}
schedule:
  n_cycles: 1
  max_labels: {cheap: 20, expensive: 10}
  bootstrap: {n_samples: 4, n_expensive: 4, method: rattle, amplitude_A: 0.03}
execution: {n_workers: 1}
evaluation: false
"""


def test_a_periodic_campaign_replays_outside_molecules(tmp_path):
    start = water_box(2, seed=4)
    write_extxyz(tmp_path / "start.extxyz", [start])
    path = tmp_path / "box.yaml"
    path.write_text(CAMPAIGN)
    assert main(["validate", str(path)]) == 0
    assert main(["run", str(path), "--no-progress"]) == 0
    log = (tmp_path / "box.run" / "campaign.log").read_text()
    assert log.count("replay 1 of 2 frames per batch (32 in the pool)") == 2  # the bootstrap's training and cycle 0's
    with CampaignStore.open(store_path(tmp_path / "box.run")) as store:
        frames = store.get_frames()
        assert all(a.pbc.all() and np.array_equal(a.cell.array, start.cell.array) for a in frames)
        cycles = store.table("cycles")
        forget = np.asarray(cycles["forget_force_mae_eV_per_A"], float)
        assert np.isfinite(forget).all() and (forget > 0).all()
        assert [c["role"] for c in store.checkpoints()] == ["base", "model", "model"]
