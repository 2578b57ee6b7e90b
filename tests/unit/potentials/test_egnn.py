"""EGNN: conformance kit (forces, symmetries, batching), smooth cutoff, elements, dtypes, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from alloop.potentials.base import AtomsBatch
from alloop.potentials.egnn import EGNN, polynomial_envelope
from alloop.potentials.pair import PairPotential
from alloop.potentials.registry import build_model, model_preset
from alloop.testing.potentials import check_potential


@pytest.fixture
def molecules(water, ethanol):
    return [water, ethanol, molecule("CH4"), molecule("HCOOH")]


def _tiny(**kw) -> EGNN:
    kw = {"hidden_features": 16, "n_layers": 2, "n_rbf": 8, "seed": 1, **kw}
    return EGNN([1, 6, 8], **kw)


def test_egnn_passes_conformance_kit(molecules):
    # cutoff 2.5 A: some pairs of ethanol and formic acid lie beyond it, so the envelope is exercised.
    model = _tiny(cutoff=2.5)
    model.atomic_energies[[1, 6, 8]] = torch.tensor([-13.6, -1030.0, -2040.0], dtype=torch.float64)
    report = check_potential(model, molecules, seed=3)
    assert report.max_fd_force_error < 1e-6
    assert {"batched = one by one", "reference energies", "Hessian symmetry"} <= set(report.checks)


def test_pair_potential_passes_conformance_kit(molecules):
    check_potential(PairPotential([1, 6, 8], seed=2), molecules)


def test_small_preset_passes_conformance_kit(molecules):
    model = build_model(elements=[1, 6, 8], **model_preset("small"))
    assert model.hidden_features == 64 and model.n_layers == 3 and model.cutoff == 5.0
    check_potential(model, molecules[:3])


def test_envelope_vanishes_smoothly_at_cutoff():
    d = torch.tensor([0.0, 4.999999, 5.0, 6.0], dtype=torch.float64, requires_grad=True)
    u = polynomial_envelope(d, 5.0)
    (du,) = torch.autograd.grad(u.sum(), d, create_graph=True)
    (d2u,) = torch.autograd.grad(du.sum(), d)
    assert u[0].item() == 1.0 and u[2].item() == 0.0 and u[3].item() == 0.0
    assert abs(u[1].item()) < 1e-12 and abs(du[1].item()) < 1e-8 and abs(d2u[1].item()) < 1e-4


def test_energy_and_forces_continuous_across_cutoff():
    model = _tiny(cutoff=3.0).double()
    far = model(AtomsBatch.from_atoms([Atoms("OH", positions=[[0, 0, 0], [3.5, 0, 0]])], dtype=torch.float64))
    near = model(AtomsBatch.from_atoms([Atoms("OH", positions=[[0, 0, 0], [3.0 - 1e-4, 0, 0]])], dtype=torch.float64))
    closer = model(AtomsBatch.from_atoms([Atoms("OH", positions=[[0, 0, 0], [1.5, 0, 0]])], dtype=torch.float64))
    assert far.forces.abs().max().item() == 0.0
    assert abs(near.energy.item() - far.energy.item()) < 1e-12
    assert near.forces.abs().max().item() < 1e-8
    assert closer.forces.abs().max().item() > 1e-4  # the pair does interact inside the cutoff


def test_unknown_element_raises(water):
    model = _tiny()
    with pytest.raises(ValueError, match=r"elements \[7\]"):
        model(AtomsBatch.from_atoms([water, molecule("NH3")]))


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="n_layers"):
        EGNN([1, 8], n_layers=0)
    with pytest.raises(ValueError, match="atomic numbers"):
        EGNN([0, 1])
    with pytest.raises(ValueError, match="cutoff"):
        EGNN([1], cutoff=-1.0)


def test_dtype_mismatch_raises_clearly(water):
    model = _tiny()
    with pytest.raises(ValueError, match="model.double"):
        model(AtomsBatch.from_atoms([water], dtype=torch.float64))


def test_float32_and_float64_agree(molecules):
    model32 = _tiny()
    model64 = _tiny().double()
    out32 = model32(AtomsBatch.from_atoms(molecules, dtype=torch.float32))
    out64 = model64(AtomsBatch.from_atoms(molecules, dtype=torch.float64))
    assert out32.energy.dtype == torch.float32 and out64.energy.dtype == torch.float64
    assert out32.forces.dtype == torch.float32 and out64.features.dtype == torch.float64
    np.testing.assert_allclose(out32.energy.detach().numpy(), out64.energy.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out32.forces.numpy(), out64.forces.numpy(), atol=1e-4)


def test_seeded_initialisation_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = _tiny(seed=5), _tiny(seed=5), _tiny(seed=6)
    assert torch.rand(1).item() == expected_next.item()
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.embedding.weight, c.embedding.weight)


def test_features_are_final_hidden_state_of_fixed_width(molecules):
    model = _tiny(hidden_features=24)
    out = model(AtomsBatch.from_atoms(molecules))
    assert model.feature_dim == 24 and out.features.shape == (sum(map(len, molecules)), 24)
    # Identical environments give identical features: the two methane H's related by symmetry.
    ch4 = model(AtomsBatch.from_atoms([molecule("CH4")], dtype=torch.float32)).features
    assert torch.allclose(ch4[1], ch4[2], atol=1e-5)


class _NotInvariant(PairPotential):
    registry_name = ""

    def energy_and_features(self, batch):
        energy, feats = super().energy_and_features(batch)
        x = torch.zeros(batch.n_graphs, dtype=energy.dtype).index_add(0, batch.batch, batch.positions[:, 0])
        return energy + 0.1 * x, feats


class _BatchDependent(PairPotential):
    registry_name = ""

    def energy_and_features(self, batch):
        energy, feats = super().energy_and_features(batch)
        return energy * batch.n_graphs, feats


class _DetachedTerm(PairPotential):
    registry_name = ""

    def energy_and_features(self, batch):
        energy, feats = super().energy_and_features(batch)
        d = batch.positions.detach()
        extra = torch.zeros(batch.n_graphs, dtype=energy.dtype).index_add(0, batch.batch, d.square().sum(-1))
        return energy + 0.1 * (extra - extra.detach()) + 0.1 * extra.detach().sqrt(), feats


@pytest.mark.parametrize(
    ("cls", "message"),
    [(_NotInvariant, "not invariant"), (_BatchDependent, "batched energy"), (_DetachedTerm, "finite difference")],
)
def test_conformance_kit_catches_broken_models(molecules, cls, message):
    with pytest.raises(AssertionError, match=message):
        check_potential(cls([1, 6, 8], seed=2), molecules)


def test_isolated_atom_in_a_batch(water):
    model = _tiny().double()
    lone = Atoms("O", positions=[[1.0, 2.0, 3.0]])
    both = model(AtomsBatch.from_atoms([lone, water], dtype=torch.float64))
    alone = model(AtomsBatch.from_atoms([lone], dtype=torch.float64))
    assert abs(both.energy[0].item() - alone.energy.item()) < 1e-12 and both.forces[0].abs().max().item() == 0.0
    assert torch.allclose(both.features[0], alone.features[0], rtol=0, atol=1e-12)
