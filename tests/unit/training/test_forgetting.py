"""The forgetting metric against an original model, and the outside molecules it is scored on."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from training_synthetic import label_frames, perturbed, truth_potential

from alloop.errors import AlloopError
from alloop.potentials.registry import build_model
from alloop.system.outside import DEFAULT_MOLECULES, forgetting_structures, outside_molecules, replay_structures
from alloop.training.data import FrameDataset
from alloop.training.forgetting import forgetting_scores
from alloop.training.metrics import pseudo_labelled
from alloop.training.references import without_element_offsets
from alloop.training.trainer import TrainSettings, train

CHO = (1, 6, 8)
WATER = [(1, 1, 8)]


def test_outside_molecules_keep_the_campaigns_elements_and_skip_its_own_composition():
    water_only = outside_molecules([1, 8], exclude=WATER)
    assert [m.get_chemical_formula() for m in water_only] == ["H2", "H2O2"]
    cho = outside_molecules(CHO, exclude=[sorted(m.numbers) for m in outside_molecules(CHO, ["CH3CH2OH"])])
    formulas = [m.get_chemical_formula(mode="hill") for m in cho]
    assert "C2H6O" not in formulas  # ethanol, and dimethyl ether of the same composition, are the campaign's
    assert len(cho) == len(DEFAULT_MOLECULES) - 2
    with pytest.raises(AlloopError, match="elements \\[6\\]"):
        outside_molecules([1, 8], names=["CH4"])
    with pytest.raises(AlloopError, match="composition of the campaign"):
        outside_molecules([1, 8], names=["H2O"], exclude=WATER)


def test_forgetting_and_replay_frames_are_different_draws():
    molecules = outside_molecules(CHO, exclude=WATER)
    scored = forgetting_structures(molecules)
    assert len(scored) == 3 * len(molecules)
    again = forgetting_structures(molecules)  # a fixed set: no campaign seed
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(scored, again, strict=True))
    pool = replay_structures(molecules, seed=0)
    assert len(pool) == 32
    assert not any(np.allclose(a.positions, b.positions) for a in scored for b in pool if len(a) == len(b))
    assert not np.allclose(pool[0].positions, replay_structures(molecules, seed=1)[0].positions)


def test_element_offsets_are_removed_and_the_rest_kept():
    frames = perturbed(["H2O", "CH4", "CH3OH", "CO"], 12, seed=2)
    data = FrameDataset.from_atoms(frames, labelled=False)
    offsets = {1: 0.3, 6: -2.0, 8: 5.0}
    shift = np.array([sum(offsets[int(z)] for z in a.numbers) for a in frames])
    assert np.abs(without_element_offsets(data, shift)).max() < 1e-7  # the fit's tiny ridge
    bump = np.zeros(len(frames))
    bump[3] = 0.1  # one frame's energy changes relative to the others
    rest = without_element_offsets(data, shift + bump)
    assert np.abs(rest).max() > 0.05


@pytest.fixture(scope="module")
def sevennet0():
    return build_model("sevennet", CHO, base="7net-0")


def test_forgetting_is_zero_for_the_original_and_positive_after_fine_tuning(sevennet0):
    torch.manual_seed(0)
    reference = pseudo_labelled(sevennet0, forgetting_structures(outside_molecules(CHO, exclude=WATER)))
    same = forgetting_scores(copy.deepcopy(sevennet0), reference)
    assert same.force_mae_eV_per_A < 1e-6 and same.energy_mae_per_atom_eV < 1e-6
    assert same.n_frames == len(reference)

    truth = truth_potential()  # water labels far from SevenNet-0's: fine-tuning moves the weights
    data = FrameDataset.from_atoms(label_frames(perturbed(["H2O"], 8, seed=1), truth), fidelity="water")
    tuned = copy.deepcopy(sevennet0)
    tr, va, _, _ = data.split(0.25, 0)
    train(tuned, tr, va, TrainSettings(max_steps=4, batch_size=2, lr=1e-2, energy_weight=0.1, patience=100))
    moved = forgetting_scores(tuned, reference)
    assert moved.force_mae_eV_per_A > 1e-3 and moved.energy_mae_per_atom_eV > 1e-5
    # the trainer re-referenced the tuned model's energies to the water labels: offsets alone would be eV per atom
    raw = np.abs(pseudo_labelled(tuned, reference.to_atoms()).energy - reference.energy) / reference.sizes
    assert raw.mean() > 10 * moved.energy_mae_per_atom_eV


def test_forgetting_needs_labels_and_known_elements(sevennet0):
    unlabelled = FrameDataset.from_atoms(forgetting_structures(outside_molecules(CHO)), labelled=False)
    with pytest.raises(AlloopError, match="energies and forces"):
        forgetting_scores(sevennet0, unlabelled)
    water_model = build_model("pair", [1, 8])
    reference = pseudo_labelled(build_model("pair", CHO), forgetting_structures(outside_molecules(CHO)))
    with pytest.raises(AlloopError, match="elements \\[6\\]"):
        forgetting_scores(water_model, reference)


#: one xdist worker runs this module (its module-scoped fixture is built once)
pytestmark = pytest.mark.xdist_group("test_forgetting")
