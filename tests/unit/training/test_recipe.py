"""The training recipe: step budget, warm-up + cosine schedule, EMA, output scale, Huber loss, warm starts."""

import copy
import math

import numpy as np
import pytest
import torch
from training_synthetic import label_frames, perturbed, truth_potential

from alloop.evaluation.metrics import evaluate_model
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.potentials.pair import PairPotential
from alloop.potentials.registry import build_model
from alloop.training.asteroid import train_asteroid
from alloop.training.data import FrameDataset
from alloop.training.loss import HUBER_DELTA, per_frame_losses
from alloop.training.metrics import per_frame_errors
from alloop.training.optim import WeightAverage, learning_rate
from alloop.training.stages import AsteroidSettings, WarmStart
from alloop.training.trainer import TrainSettings, fit_output_scale, force_rms, parameter_fingerprint, train


def test_warmup_then_cosine_reaches_min_lr():
    lrs = [learning_rate(k, 100, 1e-3, 1e-5, 10, "cosine") for k in range(101)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[10] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11], strict=True))  # warm-up rises
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))  # cosine falls
    assert lrs[100] == pytest.approx(1e-5) and lrs[55] == pytest.approx(0.5 * (1e-3 + 1e-5))
    assert learning_rate(50, 100, 1e-3, 1e-5, 10, "none") == 1e-3


def test_weight_average_matches_a_direct_computation():
    model = torch.nn.Linear(3, 2)
    ema = WeightAverage(model, decay=0.9)
    expected = [p.detach().clone() for p in model.parameters()]
    gen = torch.Generator().manual_seed(0)
    for t in range(30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen))
        ema.update(model)
        d = min(0.9, (1 + t) / (10 + t))
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, model.parameters(), strict=True)]
    for avg, e in zip(ema.model.parameters(), expected, strict=True):
        torch.testing.assert_close(avg, e)
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_huber_loss_in_torch_and_numpy_agree():
    gen = torch.Generator().manual_seed(1)
    forces_true = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    forces_pred = forces_true + 0.02 * torch.randn(7, 3, generator=gen, dtype=torch.float64)
    n_atoms, graph = torch.tensor([3, 4]), torch.tensor([0, 0, 0, 1, 1, 1, 1])
    e_true, e_pred = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([1.005, 2.3], dtype=torch.float64)
    lf, le = per_frame_losses(e_pred, forces_pred, e_true, forces_true, graph, n_atoms, "huber")
    data = FrameDataset.from_arrays([np.ones(3, int), np.ones(4, int)], [np.zeros((3, 3)), np.zeros((4, 3))],
                                    energy=e_true.numpy(), forces=[forces_true[:3].numpy(), forces_true[3:].numpy()])
    nlf, nle = per_frame_errors(data, e_pred.numpy(), forces_pred.numpy(), "huber")
    np.testing.assert_allclose(lf.numpy(), nlf, rtol=1e-12)
    np.testing.assert_allclose(le.numpy(), nle, rtol=1e-12)
    small = 0.5 * (0.005 / 3) ** 2  # quadratic below delta
    large = HUBER_DELTA * (0.3 / 4 - 0.5 * HUBER_DELTA)  # linear above
    np.testing.assert_allclose(le.numpy(), [small, large], rtol=1e-9)


@pytest.fixture
def data():
    frames = label_frames(perturbed(["H2O", "CH4", "CH3CH2OH"], 18, seed=3), truth_potential())
    tr, va, _, _ = FrameDataset.from_atoms(frames, fidelity="synthetic").split(0.25, 0)
    return tr, va


def test_the_step_budget_is_exact_and_the_schedule_ends_at_min_lr(data):
    tr, va = data
    result = train(PairPotential([1, 6, 8], seed=1), tr, va,
                   TrainSettings(max_steps=23, batch_size=4, lr=1e-2, min_lr=1e-4, patience=1000))
    assert result.steps == 23 and result.epochs_run == math.ceil(23 / math.ceil(len(tr) / 4))
    assert result.history[-1].lr == pytest.approx(learning_rate(22, 23, 1e-2, 1e-4, 1, "cosine"))


def test_the_returned_weights_are_the_ema_weights(data):
    tr, va = data
    a, b = PairPotential([1, 6, 8], seed=1), PairPotential([1, 6, 8], seed=1)
    s = TrainSettings(max_steps=20, batch_size=4, lr=3e-2, patience=1000, scheduler="none")
    train(a, tr, va, s)
    train(b, tr, va, TrainSettings(**{**s.__dict__, "ema_decay": None}))
    assert not torch.allclose(a.weights, b.weights)  # the average lags behind the raw weights
    raw = PairPotential([1, 6, 8], seed=1)
    ema = WeightAverage(raw, 0.99)
    assert torch.equal(ema.model.weights, raw.weights)


def test_output_scale_comes_from_the_force_rms_and_survives_checkpoints(data):
    tr, _ = data
    model = build_model("egnn", [1, 6, 8], cutoff_A=4.0, hidden_features=8, n_layers=1, n_rbf=4)
    assert float(model.output_scale) == 1.0
    rms = fit_output_scale(model, tr)
    assert rms == pytest.approx(float(np.sqrt(np.mean(tr.forces**2)))) == force_rms(tr)
    again, _ = model_from_bytes(checkpoint_to_bytes(model))
    assert float(again.output_scale) == rms and again.output_scale.dtype == torch.float64
    batch = next(tr.batches(4))
    torch.testing.assert_close(again(batch.atoms).forces, model(batch.atoms).forces)
    fixed = copy.deepcopy(model)
    fixed.learns_output_scale = False
    fixed.output_scale.fill_(1.0)
    assert fit_output_scale(fixed, tr) == 1.0


def test_a_checkpoint_without_output_scale_still_loads(data):
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    model = PairPotential([1, 6, 8], seed=1)
    blob = checkpoint_to_bytes(model)
    header = __import__("json").loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])["__metadata__"]
    tensors = {k: v for k, v in st_load(blob).items() if k != "output_scale"}
    old, _ = model_from_bytes(st_save(tensors, metadata=header))
    assert float(old.output_scale) == 1.0 and torch.equal(old.weights, model.weights)


def test_the_trainer_fits_a_small_training_set_tightly(data):
    """A model that can represent the labels must reach a small fraction of the force scale on its own data."""
    tr, _ = data
    model = PairPotential([1, 6, 8], seed=1)
    fit_output_scale(model, tr)
    train(model, tr, tr, TrainSettings(max_steps=1000, batch_size=4, lr=1e-1, patience=1000))
    error = evaluate_model(model, tr)["force_mae_eV_per_A"]
    assert error < 0.02 * force_rms(tr), f"training-set force MAE {error:.4f} eV/A vs force RMS {force_rms(tr):.3f}"


def _asteroid_data(seed: int):
    truth, biased = truth_potential(), truth_potential(seed=5, scale=2.5)
    exp = FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH4"], 10, seed=seed), truth), fidelity="expensive")
    cheap = FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH4"], 16, seed=seed + 1), biased), fidelity="cheap")
    return exp, cheap


def test_warm_start_continues_every_stage_from_the_previous_models():
    exp, cheap = _asteroid_data(2)
    factory = lambda: PairPotential([1, 6, 8], seed=1)  # noqa: E731
    s = AsteroidSettings(stage1=TrainSettings(max_steps=6, batch_size=4), stage2=TrainSettings(max_steps=6, batch_size=4),
                         stage3=TrainSettings(max_steps=4, batch_size=4), val_fraction=0.2)
    first = train_asteroid("asteroid", exp, cheap, model_factory=factory, settings=s)
    warm = WarmStart(stage1=first.bias_model, stage2=first.pretrained, model=first.model)
    marks = {name: parameter_fingerprint(m) for name, m in (("stage1", first.bias_model), ("stage2", first.pretrained))}
    second = train_asteroid("asteroid", exp, cheap, model_factory=factory, settings=s, warm=warm)
    assert second.stages["stage1"].initial_fingerprint == marks["stage1"]
    assert second.fingerprints["stage2"] != marks["stage2"]  # trained further
    assert parameter_fingerprint(first.pretrained) == marks["stage2"]  # the warm models are not modified
    standard = train_asteroid("standard", exp, model_factory=factory, settings=s, warm=warm)
    assert standard.stages["stage1"].initial_fingerprint == parameter_fingerprint(first.model)


def test_a_gamma_search_never_scores_on_the_reported_validation_split():
    exp, cheap = _asteroid_data(4)
    seen = []

    def spy_map(fn, items):
        seen.append(fn.keywords["exp_val"])
        return map(fn, items)

    s = AsteroidSettings(stage1=TrainSettings(max_steps=4, batch_size=4), stage2=TrainSettings(max_steps=4, batch_size=4),
                         stage3=TrainSettings(max_steps=4, batch_size=4), gamma_grid=(0.5, 1.0), val_fraction=0.2)
    result = train_asteroid("asteroid", exp, cheap, model_factory=lambda: PairPotential([1, 6, 8], seed=1), settings=s,
                            map_fn=spy_map)
    assert len(result.gamma_scores) == 2 and len(seen) == 1
    val_positions = {tuple(np.round(a.positions, 8).ravel()) for a in exp.subset(result.splits["expensive_val"]).to_atoms()}
    selection = {tuple(np.round(a.positions, 8).ravel()) for a in seen[0].to_atoms()}
    assert selection and not (selection & val_positions)
    fixed = train_asteroid("asteroid", exp, cheap, model_factory=lambda: PairPotential([1, 6, 8], seed=1),
                           settings=AsteroidSettings(**{**s.__dict__, "gamma_grid": (1.0,)}), map_fn=spy_map)
    assert fixed.gamma_scores == {} and len(seen) == 1 and fixed.gamma == pytest.approx(np.median(fixed.bias))
