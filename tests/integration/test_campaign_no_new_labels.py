"""A cycle with no new label its training method trains on keeps its model (issue 63), in the synchronous and the
asynchronous loop; its cheap labels still come, filled up to the per-cycle minimum when too few frames are flagged.

The tiny water campaign with standard training (expensive labels only) and no expensive label per cycle: cycle 0
labels cheap frames only, so it must not retrain; cycle 1, the last, runs the final retrain on every label.
"""

from __future__ import annotations

import numpy as np
import pytest

from alloop.campaign.loop.runner import start_campaign
from alloop.config import load_campaign
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from harness.campaigns import write_tiny

MIN_CHEAP = 3


@pytest.mark.parametrize("mode", ["synchronous", "asynchronous"])
def test_a_cycle_without_new_expensive_labels_does_not_retrain(tmp_path, mode):
    cfg = load_campaign(write_tiny(tmp_path, cycles=2, mode=mode, min_cheap=MIN_CHEAP),
                        overrides=["training.method=standard", "selection.max_expensive_per_cycle=0"])
    run_dir = tmp_path / "run"
    lines: list[str] = []
    assert start_campaign(cfg, run_dir, progress=False, echo=lines.append) == "2 cycles done"
    log = (run_dir / "campaign.log").read_text()
    assert log.count("cycle 0: not retrained: no new expensive label since the model of the bootstrap (4 "
                     "expensive)") == 1
    assert "cycle 1: not retrained" not in log  # the final retrain runs
    with CampaignStore.open(store_path(run_dir)) as store:
        models = [c for c in store.checkpoints() if c["role"] == "model"]
        cycles = tables.read(store, tables.CYCLES)
        selection = tables.read(store, tables.SELECTION)
        progress = tables.read(store, tables.PROGRESS)
    assert [int(store_cycle) for store_cycle in cycles["cycle"]] == [-1, 0, 1]
    assert list(cycles["model_version"][1:2]) == [-1] and len(models) == 2  # the bootstrap's and the final one
    assert np.any((progress["cycle"] == 0) & (progress["phase"] == "trained"))
    cheap0 = [str(r) for c, r, role in zip(selection["cycle"], selection["reason"], selection["role"], strict=True)
              if int(c) == 0 and role == "cheap"]
    assert len(cheap0) >= MIN_CHEAP  # labelled however few frames were flagged
    assert all(role == "cheap" for c, role in zip(selection["cycle"], selection["role"], strict=True) if int(c) >= 0)
