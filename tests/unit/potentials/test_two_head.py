"""Two-head models: conformance for EGNN and SevenNet bodies, head switching, references, checkpoints, freezing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from ase.build import molecule
from safetensors.torch import load as st_load

from alloop.potentials.base import AtomsBatch
from alloop.potentials.checkpoint import checkpoint_to_bytes, load_checkpoint, model_from_bytes
from alloop.potentials.egnn import EGNN
from alloop.potentials.registry import build_model, model_preset
from alloop.potentials.sevennet import SevenNet
from alloop.potentials.two_head import TwoHeadPotential
from alloop.testing.heads import check_two_head

DATA = Path(__file__).parent / "data"
REFS = {"cheap": [-12.875, -1025.0, -2035.5], "expensive": [-13.6, -1030.5, -2040.25]}


@pytest.fixture
def molecules(water, ethanol):
    return [water, ethanol, molecule("CH4")]


def _two_head(preset: str) -> TwoHeadPotential:
    """A two-head model from a preset, its cheap head perturbed (as training would) and references per head."""
    model = TwoHeadPotential.from_model(build_model(elements=[1, 6, 8], **model_preset(preset)))
    with torch.no_grad():
        for p in model.heads["cheap"].parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    for name in ("cheap", "expensive"):
        model.use_head(name)
        model.atomic_energies[[1, 6, 8]] = torch.tensor(REFS[name], dtype=torch.float64)
    model.record_fidelity("cheap", "fa1162a91ebb1963", "hf-sto3g")
    return model


@pytest.mark.parametrize("preset", ["small", "sevennet-small", pytest.param("sevennet-0", marks=pytest.mark.slow)])
def test_two_head_models_pass_the_conformance_kits(preset, molecules):
    torch.manual_seed(0)
    model = _two_head(preset)
    reports = check_two_head(model, molecules, seed=1)
    assert set(reports) == {"cheap", "expensive"}
    assert all(r.max_fd_force_error < 1e-6 and "Hessian symmetry" in r.checks for r in reports.values())


@pytest.mark.parametrize("preset", ["small", "sevennet-small"])
def test_from_model_predicts_like_the_single_head_model_with_every_head(preset, molecules):
    single = build_model(elements=[1, 6, 8], **model_preset(preset))
    single.atomic_energies[[1, 6, 8]] = torch.tensor(REFS["expensive"], dtype=torch.float64)
    single.output_scale.fill_(1.7)
    two = TwoHeadPotential.from_model(single)
    batch = AtomsBatch.from_atoms(molecules)
    want = single(batch)
    for name in ("cheap", "expensive"):
        two.use_head(name)
        got = two(batch)
        assert torch.equal(got.energy, want.energy) and torch.equal(got.forces, want.forces)
        assert torch.equal(got.features, want.features)
    assert two.feature_dim == single.feature_dim and float(two.output_scale) == 1.7
    # the representation holds no readout: each head's parameters live once, in its head
    names = [n for n, _ in two.named_parameters()]
    assert not any(n.startswith("body.readout") or "reduce_hidden_to_energy" in n and n.startswith("body.") for n in names)
    assert sum(p.numel() for p in two.parameters()) == sum(p.numel() for p in single.parameters()) + sum(
        p.numel() for p in two.heads["cheap"].parameters())


def test_head_switching_changes_predictions_and_swaps_references(molecules):
    torch.manual_seed(0)
    model = _two_head("small")
    batch = AtomsBatch.from_atoms(molecules)
    model.use_head("expensive")
    expensive = model(batch)
    assert model.head_references("expensive")[8] == -2040.25 and model.atomic_energies[8].item() == -2040.25
    model.use_head("cheap")
    cheap = model(batch)
    assert model.atomic_energies[8].item() == -2035.5 and model.head_references("expensive")[8] == -2040.25
    assert torch.equal(cheap.features, expensive.features)
    assert float((cheap.forces - expensive.forces).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="no head 'dft'"):
        model.use_head("dft")


def test_checkpoint_round_trip_is_bit_exact_for_both_heads(tmp_path, molecules):
    torch.manual_seed(0)
    model = _two_head("sevennet-small").double()
    model.use_head("cheap")  # saved with the cheap head active, its references changed since the switch
    model.atomic_energies[1] = -12.5
    blob = checkpoint_to_bytes(model, {"energy_references": {"x": {1: -1.0}}})
    assert st_load(blob)["head_energies"][0, 1].item() == -12.5  # every head's row is current on disk
    loaded, meta = model_from_bytes(blob)
    assert type(loaded) is TwoHeadPotential and type(loaded.body) is SevenNet and loaded.active_head == "cheap"
    assert loaded.fidelities == {"cheap": {"tag": "fa1162a91ebb1963", "name": "hf-sto3g"}}
    mine, theirs = model.state_dict(), loaded.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert theirs["head_energies"].dtype == torch.float64
    assert [p.requires_grad for p in model.parameters()] == [p.requires_grad for p in loaded.parameters()]
    assert loaded.head_references("cheap") == {1: -12.5, 6: REFS["cheap"][1], 8: REFS["cheap"][2]}
    assert loaded.head_references("expensive") == dict(zip((1, 6, 8), REFS["expensive"], strict=True))
    assert meta["energy_references"] == {"x": {1: -1.0}}


@pytest.mark.parametrize("name, cls, energy", [
    ("egnn_single_head_v1", EGNN, -4187.952002079954),
    ("sevennet_single_head_v1", SevenNet, -4182.837807372178),
])
def test_single_head_checkpoints_written_before_two_heads_still_load(name, cls, energy, ethanol):
    """Files written by alloop 15ab3ea (before the representation/head split); energies computed then."""
    model, meta = load_checkpoint(DATA / f"{name}.safetensors")
    assert type(model) is cls and "before two-head" in meta["note"]
    out = model(AtomsBatch.from_atoms([ethanol], dtype=torch.float64))
    assert out.energy.item() == energy


def test_train_only_freezes_the_other_parts_and_restores_flags():
    model = TwoHeadPotential.from_model(build_model(elements=[1, 6, 8], **model_preset("sevennet-small")))
    before = [p.requires_grad for p in model.parameters()]
    assert not all(before)  # sevenn's constants (denominators, shift, scale) are never trained
    with model.train_only(representation=False, heads=["expensive"]):
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert trainable and all(n.startswith("heads.expensive.") for n in trainable)
    with model.train_only(representation=True, heads=[]):
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert trainable and all(n.startswith("body.") for n in trainable)
    assert [p.requires_grad for p in model.parameters()] == before
    with pytest.raises(ValueError, match="no head"):
        with model.train_only(representation=True, heads=["nope"]):
            pass


def test_copy_head_copies_weights_and_references(molecules):
    torch.manual_seed(0)
    model = _two_head("small")
    model.use_head("expensive")
    model.copy_head("cheap", "expensive")
    assert model.head_references("expensive") == model.head_references("cheap")
    batch = AtomsBatch.from_atoms(molecules)
    expensive = model(batch).energy
    model.use_head("cheap")
    assert torch.equal(model(batch).energy, expensive)


def test_bad_two_head_models_are_refused():
    egnn = {"architecture": "egnn", "hyperparameters": {"hidden_features": 8}}
    with pytest.raises(ValueError, match="at least two distinct"):
        TwoHeadPotential([1, 8], body=egnn, heads=["cheap", "cheap"])
    with pytest.raises(ValueError, match="active head 'dft'"):
        TwoHeadPotential([1, 8], body=egnn, active="dft")
    with pytest.raises(ValueError, match="no representation/head split"):
        TwoHeadPotential([1, 8], body={"architecture": "pair", "hyperparameters": {}})
    with pytest.raises(ValueError, match="already has heads"):
        TwoHeadPotential.from_model(TwoHeadPotential([1, 8], body=egnn))
    body = copy.deepcopy(TwoHeadPotential([1, 8], body=egnn).body)
    with pytest.raises(RuntimeError, match="taken out"):
        body(AtomsBatch.from_atoms([molecule("H2O")]))
