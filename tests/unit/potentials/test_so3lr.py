"""SO3LR with its real weights (the so3krates-torch wheel's): the conformance kit, so3krates' own ASE calculator,
features, last-layer features, checkpoints. The tests that need so3krates-torch are marked ``so3lr`` (skipped with
the reason where it is not installed); the config checks run everywhere."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch
from ase.build import molecule

from alloop.config import CampaignConfig
from alloop.config.system import ModelConfig
from alloop.errors import ConfigError
from alloop.potentials.base import AtomsBatch
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.testing.cells import water_box
from alloop.testing.potentials import check_potential

so3lr = pytest.mark.so3lr


@pytest.fixture(scope="module")
def model():
    from alloop.potentials.registry import build_model, model_preset

    return build_model(elements=[1, 6, 8], **model_preset("so3lr"))


@pytest.fixture
def molecules():
    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.05, seed=1)
    return [molecule("H2O"), ethanol, molecule("CH4")]


@contextmanager
def _float64_default():
    """so3krates' calculator builds its inputs in torch's default dtype (and sets it): float64 inside, restored after."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _so3krates_results(atoms):
    """Energy, forces and invariant features of so3krates' own SO3LRCalculator (its defaults) in float64."""
    from so3krates_torch.calculator.so3 import SO3LRCalculator

    atoms = atoms.copy()
    with _float64_default():
        atoms.calc = SO3LRCalculator(default_dtype="float64")
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        (features,) = atoms.calc.get_descriptors(atoms)["invariant_features"]
    return energy, forces, features


@so3lr
def test_so3lr_passes_the_conformance_kit_with_molecules_and_a_periodic_cell(model, molecules):
    assert type(model).__name__ == "SO3LRPotential" and model.cutoff == 4.5 and model.feature_dim == 128
    assert next(model.parameters()).dtype == torch.float32 and not model.learns_output_scale
    box = water_box(4, seed=2)  # 12 atoms in a 4.9 A cube: the 12 A long-range edges reach many images
    report = check_potential(model, molecules, seed=1, periodic=[box])
    assert "periodic cells" in report.checks and report.max_fd_force_error < 1e-6
    assert report.max_equivariance_force_error < 1e-12 and report.max_batch_error < 1e-12


@so3lr
@pytest.mark.filterwarnings("ignore:path is deprecated:DeprecationWarning")  # so3krates' calculator reads its weights
def test_energies_forces_and_features_equal_so3krates_own_calculator_on_ethanol_and_a_water_box(model, molecules):
    model64 = _copy64(model)
    for atoms in (molecules[1], water_box(16, seed=3)):  # rattled ethanol; 48 atoms in a 7.8 A cube
        out = model64(AtomsBatch.from_atoms([atoms], dtype=torch.float64))
        energy, forces, features = _so3krates_results(atoms)
        assert abs(out.energy.item() - energy) < 1e-6  # atomic_energies are 0: SO3LR's own total energy
        assert np.abs(out.forces.numpy() - forces).max() < 1e-6
        assert np.abs(out.features.numpy() - features).max() < 1e-6
        assert np.abs(forces).max() > 0.1  # a real comparison, not of zeros


def _copy64(model):
    import copy

    return copy.deepcopy(model).double()


@so3lr
def test_the_long_range_terms_are_in_the_energy(model):
    """Two waters 8 A apart (beyond the 4.5 A graph): electrostatics and dispersion still couple them."""
    model64 = _copy64(model)
    pair = molecule("H2O")
    far = molecule("H2O")
    far.translate([8.0, 0.0, 0.0])
    both = pair + far
    one = model64(AtomsBatch.from_atoms([pair], dtype=torch.float64)).energy.item()
    together = model64(AtomsBatch.from_atoms([both], dtype=torch.float64))
    assert abs(together.energy.item() - 2 * one) > 1e-4
    assert together.forces[3:].norm(dim=1).max() > 1e-4  # the far water feels the first one


@so3lr
def test_last_layer_features_are_the_energy_gradient_of_the_readouts_last_layer(model, molecules):
    model64 = _copy64(model)
    layer = model64.net.atomic_energy_output_block.final_layer
    for atoms in molecules:
        batch = AtomsBatch.from_atoms([atoms], dtype=torch.float64)
        energy = model64(batch, compute_forces=False).energy.sum()
        grad = torch.cat([g.ravel() for g in torch.autograd.grad(energy, [layer.weight, layer.bias])])
        features = model64.last_layer_features(batch).detach().sum(dim=0)
        assert torch.allclose(grad, features, rtol=1e-10, atol=1e-12)


@so3lr
def test_a_checkpoint_rebuilds_the_fine_tuned_weights_from_the_wheel(model, molecules):
    tuned = _copy64(model)
    with torch.no_grad():
        tuned.net.atomic_energy_output_block.final_layer.weight.mul_(1.01)  # as fine-tuning changes weights
    tuned.atomic_energies[6] = -3.5  # as a reference refit does
    again, _ = model_from_bytes(checkpoint_to_bytes(tuned))
    assert again.hyperparameters()["base"] == "so3lr" and next(again.parameters()).dtype == torch.float64
    batch = AtomsBatch.from_atoms(molecules, dtype=torch.float64)
    a, b = tuned(batch), again(batch)
    assert torch.equal(a.energy, b.energy) and torch.equal(a.forces, b.forces) and torch.equal(a.features, b.features)
    untouched = _copy64(model)(batch)
    assert not torch.equal(untouched.energy, a.energy)


@so3lr
def test_the_registry_refuses_what_so3lr_cannot_be():
    from alloop.potentials.registry import build_model

    with pytest.raises(ConfigError, match="pretrained weights only"):
        build_model("so3lr", [1, 8])
    with pytest.raises(ConfigError, match="short-range cutoff 4.5"):
        build_model("so3lr", [1, 8], base="so3lr", cutoff_A=5.0)
    with pytest.raises(ConfigError, match=r"elements \[100\] are outside"):
        build_model("so3lr", [1, 100], base="so3lr")
    with pytest.raises(ConfigError, match="unknown pretrained SO3LR"):
        build_model("so3lr", [1, 8], base="so3lr-2")


def test_the_preset_is_a_pretrained_model_and_so3lr_needs_its_weights():
    cfg = ModelConfig.model_validate({"preset": "so3lr"})
    assert cfg.architecture == "so3lr" and cfg.pretrained
    assert cfg.hyperparameters() == {"base": "so3lr", "cutoff_A": 4.5, "dtype": "float32"}
    with pytest.raises(ValueError, match="pretrained SO3LR only"):
        ModelConfig.model_validate({"architecture": "so3lr"})
    with pytest.raises(ValueError, match="not used by architecture 'so3lr'"):
        ModelConfig.model_validate({"preset": "so3lr", "features": "all"})


def test_a_charged_or_open_shell_system_is_refused_for_so3lr(tmp_path):
    for system, said in (({"charge": 2}, "charge 2 and spin 0"), ({"charge": 1, "spin": 1}, "charge 1 and spin 1")):
        with pytest.raises(ConfigError, match=f"^system.charge: model 'so3lr' runs neutral closed-shell .*{said}$"):
            CampaignConfig.from_dict({"system": {"structures": "H2O", **system}, "model": {"preset": "so3lr"}},
                                     base_dir=tmp_path)
