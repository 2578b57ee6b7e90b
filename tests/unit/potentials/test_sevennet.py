"""SevenNet adapter with the real sevenn wheel: conformance kit, sevenn's own calculator, checkpoints, freezing, batching."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from alloop.config.system import ModelConfig
from alloop.errors import ConfigError
from alloop.potentials.base import AtomsBatch
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.potentials.registry import build_model, model_preset
from alloop.potentials.sevennet import SevenNet
from alloop.testing.cells import water_box
from alloop.testing.potentials import check_potential


@pytest.fixture(scope="module")
def sevennet0() -> SevenNet:
    model = build_model(elements=[1, 6, 8], **model_preset("sevennet-0"))
    assert isinstance(model, SevenNet)
    return model


def _tiny(**kw) -> SevenNet:
    return SevenNet([1, 6, 8], **{"hidden_features": 8, "n_layers": 2, "lmax": 1, "seed": 1, **kw})


def _replicas(atoms: Atoms, n: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        copy_ = atoms.copy()
        copy_.positions += rng.normal(scale=0.05, size=copy_.positions.shape)
        out.append(copy_)
    return out


def test_sevennet0_passes_conformance_kit(sevennet0, water, ethanol):
    report = check_potential(sevennet0, [water, ethanol, molecule("CH4")], seed=1)
    assert report.max_equivariance_force_error < 1e-12 and report.max_batch_error < 1e-12
    assert "Hessian symmetry" in report.checks


def test_sevennet_small_passes_conformance_kit(water, ethanol):
    model = build_model(elements=[1, 6, 8], **model_preset("sevennet-small"))
    assert (model.sevenn_config["channel"], model.sevenn_config["num_convolution_layer"]) == (32, 3)
    model.atomic_energies[[1, 6, 8]] = torch.tensor([-13.6, -1030.0, -2040.0], dtype=torch.float64)
    report = check_potential(model, [water, ethanol, molecule("HCOOH")], seed=2)
    assert report.max_fd_force_error < 1e-6


def test_zero_shot_sevennet0_equals_sevenns_own_calculator(sevennet0, ethanol):
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tensor product accelerator"
        calc = SevenNetCalculator("7net-0", device="cpu")
    atoms = ethanol.copy()
    atoms.positions += np.random.default_rng(3).normal(scale=0.05, size=atoms.positions.shape)
    atoms.calc = calc
    out = sevennet0(AtomsBatch.from_atoms([atoms]))
    np.testing.assert_allclose(out.forces.numpy(), atoms.get_forces(), rtol=0, atol=1e-4)
    assert abs(out.energy.item() - atoms.get_potential_energy()) < 1e-4  # atomic_energies are 0: sevenn's own total
    assert np.abs(atoms.get_forces()).max() > 0.1


def test_sevennet0_on_a_water_box_equals_sevenns_own_calculator(sevennet0):
    """SevenNet-0 was trained on periodic crystals: through alloop's periodic graphs it gives sevenn's own
    energies and forces on a cell (sevenn builds its graph with ASE's neighbour list and the cell)."""
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = SevenNetCalculator("7net-0", device="cpu")
    box = water_box(4, seed=2)
    box.rattle(0.05, seed=3)
    box.positions[0] += box.cell[1]  # unwrapped
    box.calc = calc
    out = sevennet0(AtomsBatch.from_atoms([box]))
    np.testing.assert_allclose(out.forces.numpy(), box.get_forces(), rtol=0, atol=1e-4)
    assert abs(out.energy.item() - box.get_potential_energy()) < 1e-3
    molecules = box.copy()
    molecules.pbc = False
    assert np.abs(sevennet0(AtomsBatch.from_atoms([molecules])).forces.numpy() - box.get_forces()).max() > 1e-2


def test_batch_of_32_replicas_is_one_call_and_equals_one_by_one(sevennet0, ethanol):
    replicas = _replicas(ethanol, 32)
    calls = []
    hook = sevennet0.net._modules["0_convolution"].register_forward_hook(lambda *args: calls.append(1))
    try:
        batched = sevennet0(AtomsBatch.from_atoms(replicas))
        assert len(calls) == 1
        singles = [sevennet0(AtomsBatch.from_atoms([a])) for a in replicas]
    finally:
        hook.remove()
    assert len(calls) == 33
    energies = torch.cat([s.energy for s in singles]).detach()
    np.testing.assert_allclose(batched.energy.detach().numpy(), energies.numpy(), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(batched.forces.numpy(), torch.cat([s.forces for s in singles]).numpy(), atol=1e-5)
    np.testing.assert_allclose(batched.features.numpy(), torch.cat([s.features for s in singles]).numpy(), atol=1e-5)
    assert float(energies.std()) > 1e-3  # the replicas do differ


def test_features_are_scalar_channels_of_fixed_width(sevennet0, ethanol):
    assert sevennet0.feature_dim == 128 and sevennet0.hyperparameters()["features"] == "last"
    last = sevennet0(AtomsBatch.from_atoms([ethanol])).features
    every = copy.deepcopy(sevennet0)
    every.features = "all"
    assert every.feature_dim == 5 * 128 and sevennet0.feature_dim == 128
    both = every(AtomsBatch.from_atoms([ethanol])).features
    assert both.shape == (9, 640) and torch.equal(both[:, -128:], last)
    small = _tiny(features="all")
    assert small.feature_dim == 2 * 8 and small(AtomsBatch.from_atoms([ethanol])).features.shape == (9, 16)


def test_checkpoint_round_trip_is_bit_exact(sevennet0, ethanol):
    pretrained = copy.deepcopy(sevennet0)
    pretrained.atomic_energies[[1, 6, 8]] = torch.tensor([-13.6, -1030.0, -2040.123456789], dtype=torch.float64)
    scratch = _tiny(freeze_blocks=1, features="all").double()
    for model, dtype in ((pretrained, torch.float32), (scratch, torch.float64)):
        loaded, _ = model_from_bytes(checkpoint_to_bytes(model))
        assert type(loaded) is SevenNet and loaded.hyperparameters() == model.hyperparameters()
        mine, theirs = model.state_dict(), loaded.state_dict()
        assert mine.keys() == theirs.keys()
        assert all(mine[k].dtype == theirs[k].dtype and torch.equal(mine[k], theirs[k]) for k in mine)
        assert [p.requires_grad for p in model.parameters()] == [p.requires_grad for p in loaded.parameters()]
        batch = AtomsBatch.from_atoms([ethanol], dtype=dtype)
        a, b = model(batch), loaded(batch)
        assert torch.equal(a.energy, b.energy) and torch.equal(a.forces, b.forces) and torch.equal(a.features, b.features)
    assert model_from_bytes(checkpoint_to_bytes(pretrained))[0].hyperparameters()["base"] == "7net-0"


def test_freeze_blocks_freezes_embeddings_and_first_blocks(ethanol):
    model = _tiny(n_layers=3, freeze_blocks=2)
    for name, param in model.net.named_parameters():
        module = name.split(".")[0]
        frozen = module in ("edge_embedding", "onehot_to_feature_x") or module[:2] in ("0_", "1_")
        # sevenn's own constants (denominators, shift, scale) are never trained
        constant = (module.endswith("_convolution") and name.endswith("denominator")) or module.startswith("rescale")
        assert param.requires_grad == (not frozen and not constant), name
    params = dict(model.named_parameters())
    out = model(AtomsBatch.from_atoms([ethanol]), create_graph=True)
    trainable = [p for p in params.values() if p.requires_grad]
    grads = torch.autograd.grad(out.forces.square().sum(), trainable)
    assert all(bool(g.abs().sum() > 0) for g in grads)
    assert any(name.startswith("net.2_") for name, p in params.items() if p.requires_grad)
    with pytest.raises(ValueError, match="freeze_blocks"):
        _tiny(freeze_blocks=3)


def test_config_presets_and_errors():
    pretrained = ModelConfig.model_validate("sevennet-0")
    assert pretrained.hyperparameters() == {"base": "7net-0", "cutoff_A": 5.0, "dtype": "float32"}
    small = ModelConfig.model_validate({"preset": "sevennet-small", "features": "all", "freeze_blocks": 1})
    expected = {k: v for k, v in model_preset("sevennet-small").items() if k != "architecture"}
    assert small.hyperparameters() == {**expected, "features": "all", "freeze_blocks": 1}
    with pytest.raises(ValueError, match="fixed by the pretrained model '7net-0'"):
        ModelConfig.model_validate({"preset": "sevennet-0", "n_layers": 2})
    with pytest.raises(ValueError, match="not used by architecture 'egnn'"):
        ModelConfig.model_validate({"preset": "small", "lmax": 2})
    with pytest.raises(ConfigError, match=r"elements \[86\] are not among the 89 elements 7net-0 knows"):
        build_model("sevennet", [1, 86], base="7net-0")
    with pytest.raises(ConfigError, match="unknown pretrained SevenNet 'mace'"):
        build_model("sevennet", [1], base="mace")
    with pytest.raises(ConfigError, match="fixed by the pretrained model"):
        build_model("sevennet", [1], base="7net-0", lmax=3)
    with pytest.raises(ConfigError, match="cutoff 4.0 differs"):
        build_model("sevennet", [1], base="7net-0", cutoff_A=4.0)


def test_dtype_mismatch_and_unknown_element_raise(water):
    model = _tiny()
    with pytest.raises(ValueError, match="model.double"):
        model(AtomsBatch.from_atoms([water], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"elements \[7\]"):
        model(AtomsBatch.from_atoms([molecule("NH3")]))


@pytest.mark.parametrize("make", [lambda: SevenNet([1, 8], base="7net-0"), lambda: _tiny(seed=4)],
                         ids=["sevennet-0", "scratch"])
def test_each_model_gets_its_own_copy_of_the_network_built_once(make):
    """Networks are built once per process and copied exactly: equal weights and energies, separate tensors (a
    change to one model reaches no other), and the global RNG is left as it was."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    first = make()
    assert torch.equal(torch.rand(3), expected)  # building drew nothing from the global RNG
    second = make()
    assert first.net is not second.net
    state = {k: v.clone() for k, v in second.state_dict().items()}
    assert all(torch.equal(first.state_dict()[k], v) for k, v in state.items())
    with torch.no_grad():
        for p in first.parameters():
            p.add_(1.0)
    third = make()
    assert all(torch.equal(third.state_dict()[k], v) and torch.equal(second.state_dict()[k], v)
               for k, v in state.items())
    water = AtomsBatch.from_atoms([molecule("H2O")])
    energy = [m(water).energy.detach() for m in (first, second, third)]
    assert torch.equal(energy[1], energy[2]) and not torch.equal(energy[0], energy[1])
