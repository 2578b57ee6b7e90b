"""A model's LLPR from its frames: residual rows in the order of the feature rows, the fit on held-out frames."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.potentials.egnn import EGNN
from alloop.potentials.inference import predict
from alloop.training.data import FrameDataset
from alloop.training.llpr_fit import fit_model_llpr, frame_llpr_std, llpr_residuals, llpr_rows


def _labelled_by(teacher: EGNN, n: int, seed: int) -> FrameDataset:
    frames = []
    for k in range(n):
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.08, seed=seed + k)
        frames.append(atoms)
    unlabelled = FrameDataset.from_atoms(frames, labelled=False)
    energy, forces = predict(teacher, unlabelled)
    return FrameDataset(unlabelled.numbers, unlabelled.positions, unlabelled.offsets, energy=energy, forces=forces)


def test_residuals_are_the_rows_times_the_last_layer_difference_and_the_fit_uses_them():
    model = EGNN([1, 6, 8], hidden_features=16, n_layers=2, seed=4).double()
    teacher = copy.deepcopy(model)
    delta = 0.05 * torch.randn(teacher.readout[-1].weight.shape, generator=torch.Generator().manual_seed(0),
                               dtype=torch.float64)
    with torch.no_grad():
        teacher.readout[-1].weight += delta  # the teacher differs from the model in its last layer only
    training, held_out = _labelled_by(teacher, 12, seed=0), _labelled_by(teacher, 10, seed=100)
    difference = torch.cat([-delta.ravel(), torch.zeros(1, dtype=torch.float64)]).numpy()  # model minus teacher
    for target in ("energy", "forces", "local"):
        rows, ptr = llpr_rows(model, held_out, target)
        residuals = llpr_residuals(model, held_out, target)
        predicted = rows @ difference
        if target == "local":  # an atom's own features: its energy contribution, not its forces
            assert rows.shape == (90, 17) and residuals.shape == (90, 3)
            continue
        assert residuals == pytest.approx(predicted, abs=1e-12)
        fitted = fit_model_llpr(model, training, held_out, target)
        assert fitted.n_train == (12 if target == "energy" else 12 * 27)
        std = frame_llpr_std(fitted, model, held_out)
        assert std.shape == (10,) and np.all(std > 0)
        # the fitted variances explain the residuals: their mean square over the mean variance is about one
        assert np.mean(residuals**2) / np.mean(fitted.variances(rows)) == pytest.approx(1.0, rel=0.5)
