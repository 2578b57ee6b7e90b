"""Two-head training (frozen and joint) on synthetic labels: what trains, what stays frozen, references per fidelity."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from training_synthetic import label_frames, perturbed, truth_potential

from alloop.errors import AlloopError
from alloop.evaluation.metrics import evaluate_model
from alloop.potentials.egnn import EGNN
from alloop.potentials.two_head import TwoHeadPotential
from alloop.training.data import FrameDataset
from alloop.training.stages import AsteroidSettings
from alloop.training.trainer import TrainSettings
from alloop.training.two_head import train_two_head

CHEAP_REFS = {1: -10.0, 6: -1000.0, 8: -2000.0}
NAMES = ["H2O", "CH4", "CH3OH"]


@pytest.fixture(scope="module")
def data():
    expensive = FrameDataset.from_atoms(label_frames(perturbed(NAMES, 12, seed=0), truth_potential()), "exp-hash")
    cheap_truth = truth_potential(seed=5, scale=2.5)
    cheap = FrameDataset.from_atoms(label_frames(perturbed(NAMES, 24, seed=1), cheap_truth, CHEAP_REFS), "cheap-hash")
    return expensive, cheap


def _factory():
    return EGNN([1, 6, 8], cutoff=4.0, hidden_features=12, n_layers=2, n_rbf=8, seed=3)


def _settings(stage3_steps: int = 40) -> AsteroidSettings:
    run = TrainSettings(max_steps=60, batch_size=4, lr=3e-3, threads=1, eval_every=5)
    return AsteroidSettings(stage1=run, stage2=run, stage3=replace(run, max_steps=stage3_steps, lr=1e-2), val_fraction=0.25,
                            seed=2)  # stage 1 unused: a two-head model has no theta_0


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_frozen_mode_leaves_the_representation_bit_identical_during_the_expensive_stage(data):
    expensive, cheap = data
    # The same seeds with no expensive steps give the model as the expensive stage receives it.
    start = train_two_head(expensive, cheap, _factory, settings=_settings(stage3_steps=0), mode="frozen").model
    done = train_two_head(expensive, cheap, _factory, settings=_settings(stage3_steps=40), mode="frozen")
    model = done.model
    assert isinstance(model, TwoHeadPotential) and model.active_head == "expensive"
    assert _same(_state(start.body), _state(model.body)), "the expensive stage changed the representation"
    assert _same(_state(start.heads["cheap"]), _state(model.heads["cheap"])), "the expensive stage changed the cheap head"
    assert start.head_references("cheap") == model.head_references("cheap")
    assert not _same(_state(start.heads["expensive"]), _state(model.heads["expensive"]))
    assert set(done.stages) == {"cheap", "expensive"} and done.stages["expensive"].steps == 40
    # the representation did train in the cheap stage
    fresh = TwoHeadPotential.from_model(_factory())
    assert not _same(_state(fresh.body), _state(model.body))


def test_each_head_predicts_its_own_fidelity(data):
    expensive, cheap = data
    for mode in ("frozen", "joint"):
        result = train_two_head(expensive, cheap, _factory, settings=_settings(), mode=mode)
        model = result.model
        assert model.fidelities == {"cheap": {"tag": "cheap-hash"}, "expensive": {"tag": "exp-hash"}}
        assert set(result.references) == {"cheap-hash", "exp-hash"}
        assert result.references["cheap-hash"] == model.head_references("cheap")
        exp_err = evaluate_model(model, expensive)
        with model.using_head("cheap"):
            cheap_on_cheap = evaluate_model(model, cheap)
            cheap_on_exp = evaluate_model(model, expensive)
        # per-fidelity references: each head's energies sit on its own fidelity (about 13 eV per atom apart here)
        assert exp_err["energy_mae_per_atom_eV"] < 0.5 and cheap_on_cheap["energy_mae_per_atom_eV"] < 0.5, mode
        assert cheap_on_exp["energy_mae_per_atom_eV"] > 5, mode
        assert result.metrics["cheap_head"]["n_frames"] == len(cheap.split(_settings().val_fraction, _settings().seed)[1])


def test_joint_mode_trains_the_representation_and_both_heads(data):
    expensive, cheap = data
    fresh = TwoHeadPotential.from_model(_factory())
    result = train_two_head(expensive, cheap, _factory, settings=_settings(), mode="joint")
    model = result.model
    assert set(result.stages) == {"joint"}
    for part in (lambda m: m.body, lambda m: m.heads["cheap"], lambda m: m.heads["expensive"]):
        assert not _same(_state(part(fresh)), _state(part(model)))
    assert not _same(_state(model.heads["cheap"]), _state(model.heads["expensive"]))


def test_initial_models_are_not_modified_and_bad_inputs_refused(data):
    expensive, cheap = data
    single = _factory()
    before = _state(single)
    result = train_two_head(expensive, cheap, settings=_settings(stage3_steps=5), initial_model=single)
    assert _same(before, _state(single)) and isinstance(result.model, TwoHeadPotential)
    with pytest.raises(AlloopError, match="unknown two-head mode 'both'"):
        train_two_head(expensive, cheap, _factory, settings=_settings(), mode="both")
    with pytest.raises(AlloopError, match="method 'two-head' needs cheap labelled frames"):
        train_two_head(expensive, None, _factory, settings=_settings())
    with pytest.raises(AlloopError, match="same fidelity"):
        train_two_head(expensive, expensive, _factory, settings=_settings())
    assert np.isfinite(result.metrics["force_mae_eV_per_A"])


def test_a_two_head_sevennet_trains_and_refines_its_representation_only(data):
    from alloop.potentials.sevennet import SevenNet
    from alloop.training.refine import RefineSettings, refine_representation

    expensive, cheap = data
    factory = lambda: SevenNet([1, 6, 8], cutoff=4.0, hidden_features=8, n_layers=2, lmax=1, n_rbf=4, seed=1)  # noqa: E731
    run = TrainSettings(max_steps=10, batch_size=4, lr=3e-3, threads=1, eval_every=5)
    settings = AsteroidSettings(stage1=run, stage2=run, stage3=replace(run, max_steps=5), val_fraction=0.25, seed=2)
    model = train_two_head(expensive, cheap, factory, settings=settings).model
    assert isinstance(model.body, SevenNet) and model.fidelities["cheap"] == {"tag": "cheap-hash"}
    heads = {name: _state(model.heads[name]) for name in model.head_names}
    body = _state(model.body)
    result = refine_representation(model, cheap.subset(range(4)), RefineSettings(steps=3, lr=1e-3, threads=1))
    assert all(_same(heads[name], _state(model.heads[name])) for name in heads)
    assert not result.reverted and not _same(body, _state(model.body))


#: one xdist worker runs this module (its module-scoped fixture is built once)
pytestmark = pytest.mark.xdist_group("test_two_head_training")
