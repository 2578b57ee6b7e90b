"""Errors per conformer basin (alloop.evaluation.metrics.basin_metrics)."""

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.evaluation.metrics import basin_metrics, evaluate_model
from alloop.io import attach_label
from alloop.potentials.inference import predict
from alloop.potentials.pair import PairPotential
from alloop.system.conformers import conformer_starts
from alloop.training.data import FrameDataset


def test_errors_are_split_by_basin_and_add_up():
    model = PairPotential([1, 6, 8], seed=0).to(torch.float64)
    starts = conformer_starts(molecule("CH3CH2OH"))
    frames = []
    for k in range(12):
        a = starts[k % 3].copy()
        a.rattle(0.02, seed=k)
        frames.append(a)
    clean = FrameDataset.from_atoms(frames, labelled=False)
    energy, forces = predict(model, clean)
    noise = np.random.default_rng(0).normal(0.0, 0.1, forces.shape).reshape(12, 9, 3)
    noise[0::3] = 0.0  # the trans frames are labelled exactly by the model
    labelled = [attach_label(a, e, f + n)
                for a, e, f, n in zip(frames, energy, forces.reshape(12, 9, 3), noise, strict=True)]
    data = FrameDataset.from_atoms(labelled)
    basins = basin_metrics(model, data)
    assert set(basins) == {"trans", "gauche+", "gauche-"}
    assert basins["trans"]["force_mae_eV_per_A"] == pytest.approx(0.0, abs=1e-9)
    assert basins["gauche+"]["force_mae_eV_per_A"] > 0.05 and basins["gauche-"]["n_frames"] == 4
    overall = evaluate_model(model, data)["force_mae_eV_per_A"]
    assert sum(b["share"] * b["force_mae_eV_per_A"] for b in basins.values()) == pytest.approx(overall, rel=1e-12)
    water = FrameDataset.from_atoms([attach_label(molecule("H2O"), 0.0, np.zeros((3, 3)))])
    assert basin_metrics(PairPotential([1, 8], seed=0).to(torch.float64), water) == {}
