"""A one-cycle ethanol campaign that starts from a MACE model file (a tiny random MACE made with mace.modules
constructors, saved as mace does): real GFN1-xTB and PySCF labels, Dask, MD and Zarr store; its model exported
as a MACE model file and read back by mace's own calculator. Marked ``mace``: skipped without mace-torch."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from alloop import calculator
from alloop.campaign.loop.runner import start_campaign
from alloop.cli import main
from alloop.config import load_campaign
from alloop.potentials.checkpoint import model_from_bytes
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from harness.campaigns import check_invariants

pytestmark = pytest.mark.mace

CAMPAIGN = """
name: tiny-mace
seed: 3
system: {structures: CH3CH2OH}
fidelities: {cheap: gfn1-xtb, expensive: hf-sto3g}
model: {preset: mace, checkpoint: tiny.model}
md: {n_replicas: 2, segment_steps: 20, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0}
uncertainty: {n_components: 2}
selection: {max_cheap_per_cycle: 3, min_cheap_per_cycle: 2, max_expensive_per_cycle: 2, min_step_spacing: 6,
            energy_window_sigma: null}
training: {method: asteroid, steps: 4, batch_size: 2, final_retrain: false}
schedule:
  n_cycles: 1
  max_labels: {cheap: 20, expensive: 10}
  bootstrap: {n_samples: 4, n_expensive: 3, method: rattle, amplitude_A: 0.03}
execution: {n_workers: 2}
evaluation: false
"""


def test_a_campaign_fine_tunes_a_mace_file_and_exports_a_mace_model(tmp_path, capsys):
    from mace.calculators import MACECalculator

    from harness.mace_models import write_mace_file

    write_mace_file(tmp_path / "tiny.model", elements=[1, 6, 8], seed=5)
    path = tmp_path / "campaign.yaml"
    path.write_text(CAMPAIGN)
    run_dir = tmp_path / "run"
    start_campaign(load_campaign(path), run_dir, progress=False, echo=lambda line: None)
    out = check_invariants(run_dir, 1, cheap_name="gfn1-xtb")
    assert out["models"] == 2  # the file's model fine-tuned on the bootstrap labels, then cycle 0's
    with CampaignStore.open(store_path(run_dir)) as store:
        roles = [c["role"] for c in store.checkpoints()]
        newest = store.checkpoint(max(int(c["version"]) for c in store.checkpoints() if c["role"] == "model"))[0]
    assert roles[0] == "base"  # the untouched file's model, stored once
    model = model_from_bytes(newest)[0]
    assert type(model).__name__ == "MACEPotential" and model.hyperparameters()["pretrained"]

    exported = tmp_path / "fine.model"
    assert main(["export", str(run_dir), "--model", "--format", "mace", "-o", str(exported)]) == 0
    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.05, seed=2)
    theirs = ethanol.copy()
    theirs.calc = MACECalculator(model_paths=str(exported), device="cpu", default_dtype="float64")
    ethanol.calc = calculator(run_dir)
    assert abs(theirs.get_potential_energy() - ethanol.get_potential_energy()) < 1e-6
    assert np.abs(theirs.get_forces() - ethanol.get_forces()).max() < 1e-6
