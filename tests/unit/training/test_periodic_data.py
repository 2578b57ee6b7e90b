"""Periodic frames in training: cells travel through FrameDataset (subsets, splits, batches, Atoms) and alloop
train / alloop evaluate work on labelled water boxes."""

from __future__ import annotations

import numpy as np
import torch
from ase.build import molecule

from alloop.cli import main
from alloop.deploy.loading import load_trained
from alloop.io import attach_label, read_labelled, write_extxyz
from alloop.potentials.calculator import PotentialCalculator
from alloop.potentials.egnn import EGNN
from alloop.potentials.inference import predict
from alloop.testing.cells import water_box
from alloop.training.data import FrameDataset
from alloop.training.metrics import pseudo_labelled


def _boxes(n: int) -> list:
    out = []
    for k in range(n):
        box = water_box(2, seed=k)
        box.rattle(0.05, seed=k)
        out.append(box)
    return out


def test_cells_travel_through_the_dataset():
    boxes = _boxes(5)
    data = FrameDataset.from_atoms([*boxes, molecule("H2O")], labelled=False)
    assert data.cells.shape == (6, 3, 3) and data.pbc[:5].all() and not data.pbc[5].any()
    sub = data.subset([4, 5, 1])
    np.testing.assert_array_equal(sub.cells[0], boxes[4].cell.array)
    batch = sub.batch([0, 2], dtype=torch.float64).atoms
    assert batch.periodic and batch.cell.shape == (2, 3, 3)
    back = data.to_atoms()
    assert back[0].pbc.all() and np.array_equal(back[0].cell.array, boxes[0].cell.array) and not back[5].pbc.any()
    moved = boxes[0].copy()
    moved.set_cell(moved.cell.array * 1.01, scale_atoms=False)  # same atoms, another cell: another frame
    draws = FrameDataset.from_atoms([boxes[0], moved], labelled=False).frame_draws(3)
    assert draws[0] != draws[1]
    assert FrameDataset.from_atoms([molecule("H2O")], labelled=False).cells is None


def test_train_and_evaluate_on_water_boxes(tmp_path):
    teacher = EGNN([1, 8], hidden_features=16, n_layers=2, n_rbf=8, cutoff=3.0, seed=7).double()
    with torch.no_grad():
        teacher.readout[2].weight.mul_(50.0)
    labelled = pseudo_labelled(teacher, _boxes(12), fidelity="teacher")
    frames = [attach_label(a, float(labelled.energy[k]), labelled.forces[labelled.frame_slice(k)])
              for k, a in enumerate(labelled.to_atoms())]
    data = tmp_path / "boxes.extxyz"
    write_extxyz(data, frames)
    assert all(a.pbc.all() for a in read_labelled(data))
    model = tmp_path / "m.safetensors"
    assert main(["train", "--expensive", str(data), "--method", "standard", "--model", "small", "--steps", "60",
                 "--quiet", "-o", str(model)]) == 0
    assert main(["evaluate", str(model), str(data), "--json"]) == 0
    trained = load_trained(model).model
    energy, forces = predict(trained, read_labelled(data))  # the periodic images are seen: as the calculator
    box = read_labelled(data)[0]
    box.calc = PotentialCalculator(trained)
    np.testing.assert_allclose(forces[:len(box)], box.get_forces(), atol=1e-5)
    boxes = read_labelled(data)
    molecules = [a.copy() for a in boxes]
    for a in molecules:
        a.pbc = False
    teacher_forces = predict(teacher, boxes)[1]  # the teacher's forces are large: the images visibly count
    np.testing.assert_allclose(teacher_forces, labelled.forces, atol=1e-8)
    assert np.abs(predict(teacher, molecules)[1] - teacher_forces).max() > 1e-2
