"""selection.exploration in a real campaign: half of each pick by kernel herding over the campaign's MD frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alloop.campaign.loop.runner import start_campaign
from alloop.campaign.phases.representative import load_reservoir
from alloop.config import load_campaign
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path

WATER = """
name: herding
seed: 3
system: {{structures: H2O}}
fidelities: {{cheap: gfn2-xtb, expensive: hf-sto3g}}
model: {{architecture: pair, cutoff_A: 4.0, n_rbf: 8}}
md: {{n_replicas: 3, segment_steps: 40, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0,
     temperature_ladder_K: [300, 700]}}
uncertainty: {{n_components: 2}}
selection: {{max_cheap_per_cycle: 4, max_expensive_per_cycle: 2, min_step_spacing: 10, exploration: 0.5,
            herding_target: {target}, herding_reservoir_frames: 20, energy_window_sigma: null}}
training: {{steps: 20, finetune_steps: 10, batch_size: 4, gamma_grid: [1.0]}}
schedule:
  n_cycles: 2
  bootstrap: {{n_samples: 6, n_expensive: 3, method: rattle, amplitude_A: 0.02}}
execution: {{n_workers: 2}}
evaluation: false
"""


@pytest.mark.parametrize("target", ["campaign", "cycle"])
def test_a_campaign_with_exploration_one_half(tmp_path: Path, target: str) -> None:
    path = tmp_path / "herding.yaml"
    path.write_text(WATER.format(target=target))
    run_dir = tmp_path / "run"
    assert start_campaign(load_campaign(path), run_dir, progress=False, echo=lambda s: None) == "2 cycles done"
    with CampaignStore.open(store_path(run_dir)) as store:
        chosen = tables.read(store, tables.SELECTION)
        target_rows = tables.read(store, tables.HERDING_TARGET)
        meta = store.frame_meta()
        reservoir, n_seen = load_reservoir(store)
    hot = meta["replica"] == 1  # the ladder's 700 K replica: never a herding candidate, never in the target
    at_300 = (meta["origin"] == meta["origin"][meta["replica"] == 0][0]) & ~hot & (meta["replica"] >= 0)
    for cycle in (0, 1):
        for role, quota in (("cheap", 2), ("expensive", 1)):
            mine = (chosen["cycle"] == cycle) & (chosen["role"] == role)
            herded = [str(r).startswith("representative") for r in chosen["reason"][mine]]
            assert sum(herded) == quota, (cycle, role, chosen["reason"][mine])
            ids = chosen["frame_id"][mine][herded]
            assert not hot[ids].any()
            if role == "cheap":  # herded frames of one replica are min_step_spacing (10) steps apart
                steps = meta["md_step"][ids][meta["replica"][ids] == meta["replica"][ids][0]]
                assert steps.size < 2 or abs(int(steps[0]) - int(steps[1])) >= 10
        cycle_target = target_rows["frame_id"][target_rows["cycle"] == cycle]
        assert cycle_target.size > 0 and not hot[cycle_target].any()
    if target == "cycle":  # each cycle's target: its own 300 K frames, and no reservoir
        for cycle in (0, 1):
            mine = np.sort(target_rows["frame_id"][target_rows["cycle"] == cycle])
            assert mine.size
            np.testing.assert_array_equal(mine, np.flatnonzero(at_300 & (meta["cycle"] == cycle)))
        assert reservoir.size == 0 and n_seen == 0
        return
    # the campaign target: a reservoir of at most 20 of the 300 K MD frames so far, cycle 0's among cycle 1's target
    assert n_seen == int((at_300 & (meta["cycle"] >= 0)).sum()) > 20
    assert reservoir.size == 20
    assert set(reservoir.tolist()) == set(target_rows["frame_id"][target_rows["cycle"] == 1].tolist())
    assert (meta["cycle"][reservoir] == 0).any() and (meta["cycle"][reservoir] == 1).any()
    # expensive frames were herded among the cycle's cheap-labelled frames
    expensive = chosen["frame_id"][chosen["role"] == "expensive"]
    assert np.isin(expensive, chosen["frame_id"][chosen["role"] == "cheap"]).all()
