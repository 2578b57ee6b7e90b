import numpy as np
import pytest
from training_synthetic import TRUE_REFS, label_frames, perturbed, truth_potential

from alloop.errors import AlloopError
from alloop.potentials.pair import PairPotential
from alloop.training.data import FrameDataset
from alloop.training.references import apply_references, element_counts, fit_references, model_references


def test_recovers_known_element_energies():
    # tiny residual network energies (scale 0.01): the fit must recover the references to ~meV
    frames = label_frames(perturbed(["H2O", "CH4", "CH3CH2OH", "CO", "CO2", "H2"], 30, seed=1), truth_potential(scale=0.01))
    fit = fit_references(FrameDataset.from_atoms(frames))
    assert not fit.degenerate and fit.rank == 3
    for z, e in TRUE_REFS.items():
        assert fit.energies[z] == pytest.approx(e, abs=0.05)
    assert fit.residual_rms_eV < 0.05


def test_exact_linear_energies_are_recovered_exactly():
    structures = perturbed(["H2O", "CH4", "CO2"], 6, seed=2)
    energies = [sum(TRUE_REFS[int(z)] for z in a.numbers) for a in structures]
    data = FrameDataset.from_arrays([a.numbers for a in structures], [a.positions for a in structures],
                                    energy=energies, forces=[np.zeros((len(a), 3)) for a in structures])
    fit = fit_references(data)
    for z, e in TRUE_REFS.items():
        assert fit.energies[z] == pytest.approx(e, rel=1e-8)
    assert fit.residual_rms_eV < 1e-6


def test_one_molecule_fit_is_degenerate_and_reproduces_the_mean(truth):
    frames = label_frames(perturbed(["CH3CH2OH"], 8, seed=3), truth)
    data = FrameDataset.from_atoms(frames)
    fit = fit_references(data)
    assert fit.degenerate and fit.rank == 1
    counts = element_counts(data, data.elements)
    predicted = counts[0] @ np.array([fit.energies[z] for z in data.elements])
    assert predicted == pytest.approx(float(np.mean(data.energy)), abs=1e-6)


def test_apply_references_writes_the_model_buffer():
    model = PairPotential([1, 6, 8])
    model.atomic_energies[7] = 5.0  # a stale value of an element the model does not use
    apply_references(model, {1: -13.0, 8: -2040.0})
    assert model.atomic_energies[1].item() == -13.0 and model.atomic_energies[8].item() == -2040.0
    assert model.atomic_energies[6].item() == 0.0 and model.atomic_energies[7].item() == 0.0
    assert model_references(model) == {1: -13.0, 6: 0.0, 8: -2040.0}
    with pytest.raises(AlloopError, match="does not know"):
        apply_references(model, {9: -1.0})
