"""A campaign in a periodic cell: a water in its box (liquid density), periodic PySCF labels at both fidelities, an EGNN on
periodic graphs, MD in the cell, an evaluation set of labelled boxes; the store keeps the cell everywhere."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read

import alloop
from alloop.cli import main
from alloop.fidelity import load_fidelity
from alloop.io import attach_label, write_extxyz
from alloop.labeling.factory import labeler_for
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path
from alloop.testing.cells import water_box

#: coarse plane-wave cutoffs keep a label of one water in its box near a second (the presets use 400 and 600 Eh)
CHEAP = {"preset": "pbe-gth-szv", "ke_cutoff_Eh": 150.0}
EXPENSIVE = {"preset": "pbe-gth-dzvp", "ke_cutoff_Eh": 150.0}

CAMPAIGN = """
name: box
seed: 1
system: {structures: start.extxyz}
fidelities:
  cheap: {preset: pbe-gth-szv, ke_cutoff_Eh: 150.0}
  expensive: {preset: pbe-gth-dzvp, ke_cutoff_Eh: 150.0}
model: {architecture: egnn, cutoff_A: 3.5, hidden_features: 16, n_layers: 2, n_rbf: 8, baseline: null}
md: {n_replicas: 2, segment_steps: 30, record_every: 5, temperature_K: 300, max_bond_stretch: 2.0, restart_from: start}
uncertainty: {n_components: 2}
selection: {max_cheap_per_cycle: 3, min_cheap_per_cycle: 2, max_expensive_per_cycle: 2, min_step_spacing: 10,
           expensive_pick: bias}
training: {method: asteroid, final_refit: false, max_epochs: 4, patience_epochs: 2, batch_size: 4, gamma_grid: [1.0]}
schedule:
  n_cycles: 1
  max_labels: {cheap: 40, expensive: 20}
  bootstrap: {n_samples: 6, n_expensive: 4, amplitude_A: 0.03}
evaluation: {structures: eval.extxyz}
execution: {n_workers: 2}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("box")
    start = water_box(1, seed=4)
    write_extxyz(folder / "start.extxyz", [start])
    labeler = labeler_for(load_fidelity(EXPENSIVE))
    evaluation = []
    for k in range(3):
        frame = start.copy()
        frame.rattle(0.04, seed=10 + k)
        result = labeler.label(frame)
        assert result.ok, result.reason
        evaluation.append(attach_label(frame, result.energy_eV, result.forces_eV_per_A))
    write_extxyz(folder / "eval.extxyz", evaluation)
    path = folder / "box.yaml"
    path.write_text(CAMPAIGN)
    assert main(["validate", str(path)]) == 0
    assert main(["run", str(path), "--no-progress"]) == 0
    return folder, start


def test_the_cell_is_kept_everywhere(run):
    folder, start = run
    with CampaignStore.open(store_path(folder / "box.run")) as store:
        frames = store.get_frames()
        assert len(frames) > 10 and all(a.pbc.all() for a in frames)
        assert all(np.array_equal(a.cell.array, start.cell.array) for a in frames)
        md = [a for a, replica in zip(frames, store.frame_meta()["replica"], strict=True) if replica >= 0]
        assert md
        frac = np.concatenate([a.positions for a in md]) @ np.linalg.inv(start.cell.array)
        assert frac.min() >= 0.0 and frac.max() < 1.0  # MD frames are stored wrapped
        for role in ("cheap", "expensive"):
            table = store.labels(load_fidelity(CHEAP if role == "cheap" else EXPENSIVE).hash())
            assert table.ok.sum() >= 4
    out = folder / "exp.extxyz"
    assert main(["export", str(folder / "box.run"), "--fidelity", "expensive", "-o", str(out)]) == 0
    exported = read(out, ":")
    assert all(a.pbc.all() and np.allclose(a.cell.array, start.cell.array) for a in exported)


def test_evaluation_and_the_trained_model_see_the_images(run, capsys):
    folder, start = run
    assert main(["status", str(folder / "box.run"), "--json"]) == 0
    assert main(["evaluate", str(folder / "box.run"), str(folder / "eval.extxyz"), "--json"]) == 0
    box = start.copy()
    box.calc = alloop.calculator(folder / "box.run")
    forces = box.get_forces()
    molecule = start.copy()
    molecule.pbc = False
    molecule.calc = alloop.calculator(folder / "box.run")
    assert np.abs(molecule.get_forces() - forces).max() > 1e-4  # the images matter


def test_a_molecular_fidelity_for_a_box_is_one_line(run, tmp_path, capsys):
    folder, _ = run
    path = tmp_path / "bad.yaml"
    (tmp_path / "start.extxyz").write_bytes((folder / "start.extxyz").read_bytes())
    (tmp_path / "eval.extxyz").write_bytes((folder / "eval.extxyz").read_bytes())
    path.write_text(CAMPAIGN.replace("cheap: {preset: pbe-gth-szv, ke_cutoff_Eh: 150.0}", "cheap: hf-sto3g"))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "fidelities.cheap: fidelity 'hf-sto3g' (hf/sto-3g) labels isolated molecules" in err
    path.write_text(CAMPAIGN.replace("{n_samples: 6, n_expensive: 4, amplitude_A: 0.03}",
                                     "{n_samples: 6, n_expensive: 4, method: normal-modes, temperature_K: 300}"))
    assert main(["validate", str(path)]) == 1
    assert "schedule.bootstrap.method: normal-modes needs a Hessian" in capsys.readouterr().err


#: one xdist worker runs this module (its module-scoped fixture is built once)
pytestmark = pytest.mark.xdist_group("test_campaign_periodic")
