"""Errors per molecule (alloop.evaluation.metrics.molecule_metrics): formulas apart, adding up to the whole."""

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.evaluation.metrics import evaluate_model, per_molecule_metrics
from alloop.io import attach_label
from alloop.potentials.inference import predict
from alloop.potentials.pair import PairPotential
from alloop.training.data import FrameDataset


def test_errors_are_split_by_molecule_and_add_up():
    model = PairPotential([1, 6, 8], seed=0).to(torch.float64)
    names = ["H2O", "CH4", "CH3OH", "H2O", "CH4", "H2O"]
    frames = []
    for k, name in enumerate(names):
        a = molecule(name)
        a.rattle(0.02, seed=k)
        frames.append(a)
    energy, forces = predict(model, FrameDataset.from_atoms(frames, labelled=False))
    rng = np.random.default_rng(0)
    labelled, start = [], 0
    for a, e in zip(frames, energy, strict=True):
        f = forces[start:start + len(a)]
        start += len(a)
        noise = 0.0 if a.get_chemical_formula() == "H2O" else rng.normal(0.0, 0.1, f.shape)  # water is exact
        labelled.append(attach_label(a, float(e), f + noise))
    data = FrameDataset.from_atoms(labelled)
    split = per_molecule_metrics(model, data)
    assert list(split) == ["H2O", "CH4", "CH4O"]  # formulas, in the order of first appearance
    assert split["H2O"]["force_mae_eV_per_A"] == pytest.approx(0.0, abs=1e-12) and split["H2O"]["n_frames"] == 3
    assert split["CH4"]["force_mae_eV_per_A"] > 0.03 and split["CH4O"]["share"] == pytest.approx(1 / 6)
    overall = evaluate_model(model, data)["force_mae_eV_per_A"]
    atoms = sum(m["n_atoms"] for m in split.values())
    assert sum(m["n_atoms"] * m["force_mae_eV_per_A"] for m in split.values()) / atoms == pytest.approx(overall)
    assert per_molecule_metrics(model, data.subset([0, 3, 5])) == {}  # one molecule: nothing to split
