"""Exploration in a real campaign: replicas and bootstrap samples over an input's rotamers, uncertainty-driven MD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.build import molecule

from alloop.campaign.loop.runner import start_campaign
from alloop.campaign.phases.explore import REPLICAS_BLOB, unpack_states
from alloop.config import load_campaign
from alloop.md.state import ReplicaState
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from alloop.store.schema import ORIGIN_CODES
from alloop.system.conformers import basin_index, dihedrals, find_rotors

ETHANOL = """
name: explore
seed: 1
system: {structures: CH3CH2OH, conformers: 3}
fidelities: {cheap: hf-sto3g, expensive: hf-sto3g}
model: {architecture: pair, cutoff_A: 4.0, n_rbf: 8, baseline: null}
md: {n_replicas: 3, segment_steps: 20, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0,
     uncertainty_bias_eV: 0.5, temperature_ladder_K: [300, 700], restart_from: start}
uncertainty: {n_components: 2}
selection: {max_cheap_per_cycle: 3, min_cheap_per_cycle: 0, max_expensive_per_cycle: 1, min_step_spacing: 10,
           expensive_pick: bias}
training: {method: asteroid, final_refit: false, steps: 20, finetune_steps: 10, batch_size: 4, gamma_grid: [1.0]}
schedule:
  n_cycles: 1
  bootstrap: {n_samples: 6, n_expensive: 3, method: rattle, amplitude_A: 0.02}
execution: {n_workers: 2}
evaluation: null
"""


def test_rotamer_starts_uncertainty_bias_and_temperature_ladder_in_a_campaign(tmp_path: Path) -> None:
    path = tmp_path / "explore.yaml"
    path.write_text(ETHANOL)
    run_dir = tmp_path / "run"
    assert start_campaign(load_campaign(path), run_dir, progress=False, echo=lambda s: None) == "1 cycles done"
    rotors = [r for r in find_rotors(molecule("CH3CH2OH")) if not r.symmetric]
    with CampaignStore.open(store_path(run_dir)) as store:
        origin = store.frame_meta()["origin"]
        boot_ids = np.flatnonzero(origin == ORIGIN_CODES["bootstrap"])
        boot = [a.positions for a in store.get_frames(boot_ids)]
        md_ids = np.flatnonzero(origin == ORIGIN_CODES["md"])
        bias = tables.read(store, tables.MD_BIAS)
        recorded = tables.read(store, tables.FRAME_BASINS)
        labelled = np.unique(store.labels("hf-sto3g").frame_id)
        positions = np.array([a.positions for a in store.get_frames(recorded["frame_id"])])
        states = {r: ReplicaState.from_bytes(b) for r, b in unpack_states(store.get_blob(REPLICAS_BLOB)).items()}
    # bootstrap samples round robin over trans, gauche-, gauche+: the first three (expensive) cover all basins
    basins = basin_index(dihedrals(np.array(boot), rotors)[:, 0])
    assert sorted(basins[:3].tolist()) == [0, 1, 2] and len(boot) == 6
    # every labelled frame's basin code was recorded as its label came back, and it is the frame's basin
    assert sorted(set(recorded["frame_id"].tolist())) == labelled.tolist()
    np.testing.assert_array_equal(recorded["code"], basin_index(dihedrals(positions, rotors)[:, 0]))
    # every MD frame has its bias energy recorded, within (-A, 0]
    assert sorted(bias["frame_id"].tolist()) == sorted(md_ids.tolist())
    assert np.all(bias["bias_energy_eV"] <= 0) and np.all(bias["bias_energy_eV"] > -0.5)

    # the ladder: replica 1 ran at 700 K, replicas 0 and 2 at 300 K (running-average kinetic temperature, 20 steps)
    t_avg = {r: s.temperature_avg_K for r, s in states.items()}
    assert t_avg[1] > 1.4 * max(t_avg[0], t_avg[2]), t_avg
