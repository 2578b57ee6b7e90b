"""A campaign that starts from the pretrained SevenNet-0 (sevenn wheel): real PySCF, Dask, MD and Zarr store.

It is interrupted after the bootstrap model and resumed: the original model is stored once, and every
model's forgetting (against that stored original) is in the cycles table and in ``alloop status``. Every
training replays outside frames labelled by the original (half of each batch of 2).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alloop import calculator
from alloop.campaign.loop.driver import Campaign
from alloop.campaign.loop.runner import resume_campaign, start_campaign
from alloop.cli import main
from alloop.config import load_campaign
from alloop.potentials.checkpoint import model_from_bytes
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from harness.campaigns import check_invariants

pytest.importorskip("sevenn")

CAMPAIGN = """
name: tiny-sevennet
seed: 5
system: {structures: H2O}
fidelities:
  cheap: hf-sto3g
  expensive: {name: hf-631g, method: hf, basis: 6-31g}
model: sevennet-0
md: {n_replicas: 2, segment_steps: 20, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0, restart_from: start}
uncertainty: {n_components: 2}
selection: {max_cheap_per_cycle: 3, min_cheap_per_cycle: 2, max_expensive_per_cycle: 2, min_step_spacing: 6,
            energy_window_sigma: null, expensive_pick: bias}
training: {method: standard, steps: 6, batch_size: 2, energy_weight: 0.1, warm_start_fraction: 0.5, replay_fraction: 0.5,
           final_retrain: false}
schedule:
  n_cycles: 1
  max_labels: {cheap: 20, expensive: 10}
  bootstrap: {n_samples: 4, n_expensive: 4, method: rattle, amplitude_A: 0.03}
execution: {n_workers: 2}
evaluation: null
"""


class Interrupted(Exception):
    pass


def test_campaign_fine_tunes_sevennet0(tmp_path, monkeypatch, capsys):
    path = tmp_path / "campaign.yaml"
    path.write_text(CAMPAIGN)
    run_dir = tmp_path / "run"
    lines: list[str] = []

    def stop(self, cycle):
        raise Interrupted(f"stopped before cycle {cycle}")

    with monkeypatch.context() as patch:  # the campaign stops after its bootstrap model
        patch.setattr(Campaign, "_cycle", stop)
        with pytest.raises(Interrupted):
            start_campaign(load_campaign(path), run_dir, progress=False, echo=lines.append)
    with CampaignStore.open(store_path(run_dir)) as store:
        assert [(c["version"], c["role"]) for c in store.checkpoints()] == [(0, "base"), (1, "model")]
    assert resume_campaign(run_dir, progress=False, echo=lines.append) == "1 cycles done"
    out = check_invariants(run_dir, 1)
    assert out["models"] == 2  # bootstrap + cycle 0
    log = (run_dir / "campaign.log").read_text()
    assert "original model: stored as checkpoint v0 (role base)" in log
    assert "original model: found as checkpoint v0 (role base)" in log  # the resumed run did not store it again
    assert "warm start from the previous cycle's model" in log
    assert log.count("replay: 32 outside frames labelled by the original model") == 2  # both trainings
    assert log.count("replay 1 of 2 frames per batch (32 in the pool)") == 2
    md_lines = [line for line in lines if "MD recorded" in line]
    assert md_lines and all(" 0 unstable" in line for line in md_lines), md_lines  # 300 K water stays stable

    with CampaignStore.open(store_path(run_dir)) as store:
        assert [c["version"] for c in store.checkpoints() if c["role"] == "base"] == [0]  # stored once
        models = [c for c in store.checkpoints() if c["role"] == "model"]
        blobs = [store.checkpoint(c["version"])[0] for c in models]
    # every model's forgetting against the stored original: positive after fine-tuning
    cycles = out["cycles"]
    for column in ("forget_force_mae_eV_per_A", "forget_energy_mae_per_atom_eV"):
        assert np.all(np.isfinite(cycles[column])) and np.all(cycles[column] > 0), (column, cycles[column])
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 0
    status = capsys.readouterr().out
    assert "forgetting   change against the original v0 (role base)" in status
    assert len([line for line in status.splitlines() if line.strip().startswith(("v1 ", "v2 "))]) == 2
    trained = [model_from_bytes(b)[0] for b in blobs]
    # every checkpoint says it is SevenNet fine-tuned from the wheel's 7net-0
    for model in trained:
        assert type(model).__name__ == "SevenNet" and model.hyperparameters()["base"] == "7net-0"
    # fine-tuning changed the pretrained weights
    from alloop.potentials.registry import build_model
    from alloop.presets import load_preset

    spec = load_preset("models", "sevennet-0")
    original = build_model(spec.pop("architecture"), [1, 8], **spec)
    first = dict(trained[0].named_parameters())
    assert any(not torch.equal(first[n], p) for n, p in original.named_parameters())
    # cycle 0 bought expensive labels of MD frames and trained on them
    assert "cycle 0: model v2 trained" in log and "on 6 expensive" in log

    # the campaign's model drives ASE
    from ase.build import molecule

    water = molecule("H2O")
    water.calc = calculator(run_dir)
    forces = water.get_forces()
    assert forces.shape == (3, 3) and np.all(np.isfinite(forces))
    assert abs(forces.sum(axis=0)).max() < 1e-4  # Newton's third law holds for the fine-tuned model
