import numpy as np
import pytest
import torch
from training_synthetic import label_frames, perturbed, truth_potential

from alloop.errors import AlloopError
from alloop.evaluation.metrics import evaluate_model
from alloop.potentials.inference import predict
from alloop.potentials.pair import PairPotential
from alloop.training.data import FrameDataset
from alloop.training.metrics import validation_metrics
from alloop.training.references import apply_references, model_references, refit_references
from alloop.training.restarts import MAX_FRESH_RESTARTS, RESTART_LR_FACTOR, STALL_MIN_STEPS, stalled, train_fresh
from alloop.training.trainer import TrainSettings, parameter_fingerprint, train

# the settings of the trainer before the recipe (MAE, no EMA): short runs on tiny data converge with them
FAST = dict(lr=3e-2, batch_size=8, energy_weight=0.01, loss="mae", ema_decay=None, scheduler="plateau", select="best")


def _split(frames, seed=0):
    tr, va, _, _ = FrameDataset.from_atoms(frames, fidelity="synthetic").split(0.25, seed)
    return tr, va


def test_same_seed_same_weights_and_a_different_seed_differs(mixed_frames):
    tr, va = _split(mixed_frames)
    runs = []
    for seed in (4, 4, 5):
        model = PairPotential([1, 6, 8], seed=1)
        train(model, tr, va, TrainSettings(max_epochs=3, seed=seed, **FAST))
        runs.append(model.weights.detach().clone())
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_training_reduces_validation_force_error(mixed_frames, dtype):
    tr, va = _split(mixed_frames)
    model = PairPotential([1, 6, 8], seed=1).to(dtype)
    result = train(model, tr, va, TrainSettings(max_epochs=15, **FAST))
    assert result.history[0].epoch == 0
    assert result.best_val_force_mae < 0.6 * result.history[0].val_force_mae
    assert model.weights.dtype == dtype
    # the references of the training fidelity are in the model
    assert result.reference_fit is not None
    assert model.atomic_energies[8].item() == pytest.approx(result.references[8])


def test_references_are_refitted_after_training(mixed_frames):
    """After training the mean energy error on the training set is zero per composition; forces are unchanged."""
    tr, va = _split(mixed_frames)
    model = PairPotential([1, 6, 8], seed=1)
    # one epoch with a tiny energy weight leaves the network's energy offset where it happens to be
    result = train(model, tr, va, TrainSettings(max_epochs=1, **{**FAST, "energy_weight": 1e-6}))
    energy, forces = predict(model, tr)
    assert result.references == model_references(model)
    again = refit_references(model, tr)  # nothing left to shift (float32 energies of ~1e3 eV: 1e-3 eV)
    assert max(abs(again.energies[z] - result.references[z]) for z in result.references) < 1e-3
    shifted = PairPotential([1, 6, 8], seed=1)
    shifted.load_state_dict(model.state_dict())
    apply_references(shifted, {z: e + 0.7 for z, e in result.references.items()})
    energy_b, forces_b = predict(shifted, tr)
    np.testing.assert_allclose(forces_b, forces, atol=1e-6)  # references shift energies only
    assert not np.allclose(energy_b, energy)
    refit = refit_references(shifted, tr)
    np.testing.assert_allclose(predict(shifted, tr)[0], energy, atol=1e-6 * np.max(np.abs(energy)))
    assert refit.fidelity == tr.fidelity


def test_early_stopping_stops_and_restores_the_best_weights(truth):
    # the model starts as the potential that labels the validation set; training on labels
    # of another potential can only make validation worse: best = epoch 0, restored.
    other = truth_potential(seed=99)
    train_set = FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH4"], 12, seed=5), other))
    val_set = FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH4"], 6, seed=6), truth))
    model = truth_potential()
    start = parameter_fingerprint(model)
    lines: list[str] = []
    result = train(model, train_set, val_set, TrainSettings(max_epochs=50, patience=3, rollback_factor=None, **FAST),
                   log=lines.append)
    assert result.stopped_early and result.best_epoch == 0 and result.epochs_run == 3
    assert parameter_fingerprint(model) == start
    assert any("best weights restored (epoch 0) (the starting weights" in line for line in lines), lines


def _knocked_out(truth, **settings):
    """Train the validation set's own potential on another potential's labels: every epoch spikes."""
    other = truth_potential(seed=99)
    train_set = FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH4"], 12, seed=5), other))
    val_set = FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH4"], 6, seed=6), truth))
    model = truth_potential()
    start = parameter_fingerprint(model)
    result = train(model, train_set, val_set, TrainSettings(**{**FAST, "scheduler": "none", "select": "final", **settings}))
    return model, start, result


def test_a_validation_spike_rolls_back_to_the_best_weights_with_half_the_learning_rate(truth):
    model, start, result = _knocked_out(truth, max_epochs=5, patience=100, rollback_factor=2.0, max_rollbacks=2)
    assert result.rollbacks == 2
    lrs = [r.lr for r in result.history]  # an evaluation's lr is the one its epoch trained with
    assert lrs[1] == pytest.approx(FAST["lr"]) and lrs[2] == pytest.approx(FAST["lr"] / 2)
    assert lrs[3] == pytest.approx(FAST["lr"] / 4) and lrs[5] == pytest.approx(FAST["lr"] / 4)
    assert result.selected == "final" and parameter_fingerprint(model) != start  # no rollback left after epoch 2


def test_a_rollback_at_the_last_evaluation_returns_the_best_weights(truth):
    model, start, result = _knocked_out(truth, max_epochs=1, patience=100, rollback_factor=2.0)
    assert result.rollbacks == 1 and result.selected == "best" and result.best_epoch == 0
    assert parameter_fingerprint(model) == start


def test_without_rollback_the_spike_is_kept(truth):
    model, start, result = _knocked_out(truth, max_epochs=1, patience=100, rollback_factor=None)
    assert result.rollbacks == 0 and result.selected == "final" and parameter_fingerprint(model) != start


def test_select_best_returns_the_best_epoch(mixed_frames):
    tr, va = _split(mixed_frames)
    model = PairPotential([1, 6, 8], seed=1)
    s = TrainSettings(max_epochs=12, lr=0.5, batch_size=4, patience=4, energy_weight=0.01, loss="mae",
                      ema_decay=None, scheduler="none", select="best", rollback_factor=None)
    result = train(model, tr, va, s)
    best = min(r.val_force_mae for r in result.history)
    assert 0 < result.best_epoch < result.epochs_run  # later epochs were worse: restoring matters
    assert result.best_val_force_mae == best and result.selected == "best"
    assert validation_metrics(model, va, 0.01, "mae")["force_mae"] == pytest.approx(best, rel=1e-6)


def test_returned_energy_mae_is_validation_metrics_of_the_returned_model(mixed_frames):
    """After the references are re-fitted, the run reports the returned model's validation energy MAE exactly."""
    tr, va = _split(mixed_frames)
    model = PairPotential([1, 6, 8], seed=1).double()
    s = TrainSettings(max_steps=12, lr=0.1, batch_size=4, energy_weight=0.3, loss="mse", ema_decay=0.9)
    result = train(model, tr, va, s)
    assert result.reference_fit is not None and result.best_val_energy_mae > 0
    assert result.best_val_energy_mae == validation_metrics(model, va, 0.3, "mse", s.eval_batch_size)["energy_mae"]


def test_select_final_returns_the_weights_at_the_end_of_the_budget(mixed_frames):
    """Validation does not choose the returned weights unless the guard stops the run."""
    tr, va = _split(mixed_frames)
    model = PairPotential([1, 6, 8], seed=1)
    s = TrainSettings(max_steps=40, lr=0.3, batch_size=4, energy_weight=0.01, loss="mae", ema_decay=0.9,
                      scheduler="none", patience=1000)
    result = train(model, tr, va, s)
    assert result.selected == "final" and not result.stopped_early and result.steps == 40
    assert result.best_epoch == result.epochs_run == result.history[-1].epoch
    assert result.best_val_force_mae == result.history[-1].val_force_mae
    assert validation_metrics(model, va, 0.01, "mae")["force_mae"] == pytest.approx(result.best_val_force_mae, rel=1e-6)


@pytest.mark.parametrize("kind", ["mae", "mse"])
def test_bias_weights_protect_against_corrupted_labels(truth, kind):
    clean = perturbed(["H2O", "CH4", "CH3CH2OH"], 30, seed=7)
    good = label_frames(clean[:15], truth)
    bad = label_frames(clean[15:], truth_potential(seed=42, scale=6.0))
    data = FrameDataset.from_atoms(good + bad, fidelity="cheap")
    test = FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH4", "CH3CH2OH"], 9, seed=8), truth), fidelity="cheap")
    errors = {}
    for name, w in {"uniform": np.ones(30), "weighted": np.r_[np.ones(15), np.full(15, 1e-3)]}.items():
        model = PairPotential([1, 6, 8], seed=1)
        weighted = data.with_weights(w)
        train(model, weighted, weighted, TrainSettings(max_epochs=20, **{**FAST, "loss": kind}))
        errors[name] = evaluate_model(model, test)["force_mae_eV_per_A"]
    assert errors["weighted"] < 0.7 * errors["uniform"]


def test_progress_lines_and_silence(mixed_frames, capsys):
    tr, va = _split(mixed_frames)
    lines = []
    result = train(PairPotential([1, 6, 8]), tr, va, TrainSettings(max_epochs=2, **FAST), log=lines.append, tag="t")
    assert len(lines) == result.epochs_run + 3 == 5  # settings, epoch 0..2, then the reference re-fit
    assert lines[0].startswith(f"t {len(tr)} training / {len(va)} validation frames, 6 steps")
    assert lines[2].startswith("t epoch    1") and "val F-MAE" in lines[2] and "eV/A" in lines[2] and "lr" in lines[2]
    assert lines[-1].startswith("t energy references re-fitted")
    train(PairPotential([1, 6, 8]), tr, va, TrainSettings(max_epochs=1, **FAST))
    assert capsys.readouterr().out == ""


def test_threads_are_set_and_restored(mixed_frames):
    tr, va = _split(mixed_frames)
    before = torch.get_num_threads()
    train(PairPotential([1, 6, 8]), tr, va, TrainSettings(max_epochs=1, threads=2, **FAST))
    assert torch.get_num_threads() == before


def test_clear_errors(mixed_frames, water):
    tr, va = _split(mixed_frames)
    with pytest.raises(AlloopError, match="not in the model's element set"):
        train(PairPotential([1, 8]), tr, va, TrainSettings(max_epochs=1))
    with pytest.raises(AlloopError, match="unknown loss"):
        TrainSettings(max_steps=1, loss="l3")
    with pytest.raises(AlloopError, match="ema_decay"):
        TrainSettings(max_steps=1, ema_decay=1.0)
    with pytest.raises(AlloopError, match="rollback_factor"):
        TrainSettings(max_steps=1, rollback_factor=0.5)
    with pytest.raises(AlloopError, match="min_lr"):
        TrainSettings(max_steps=1, min_lr=-1.0)
    with pytest.raises(AlloopError, match="unknown select"):
        TrainSettings(max_steps=1, select="median")
    unlabelled = FrameDataset.from_atoms([water, water], labelled=False)
    with pytest.raises(AlloopError, match="need energies and forces"):
        train(PairPotential([1, 6, 8]), unlabelled, va, TrainSettings(max_epochs=1))


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_learning_rate_schedules_lower_the_rate(truth, scheduler):
    # validation can only get worse (see the early-stopping test), so the plateau schedule cuts the rate
    train_set = FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH4"], 8, seed=5), truth_potential(seed=99)))
    val_set = FrameDataset.from_atoms(label_frames(perturbed(["H2O", "CH4"], 4, seed=6), truth))
    s = TrainSettings(max_epochs=4, **{**FAST, "scheduler": scheduler, "lr_patience": 0, "patience": 10})
    result = train(truth_potential(), train_set, val_set, s)
    assert result.history[-1].lr < result.history[1].lr == FAST["lr"]


def test_a_float32_egnn_trains_and_supports_score_matching(mixed_frames):
    from alloop.potentials.base import AtomsBatch
    from alloop.potentials.registry import build_model
    from alloop.training.score_matching import projection_vectors, score_matching_loss

    model = build_model("egnn", [1, 6, 8], cutoff_A=4.0, hidden_features=16, n_layers=2, n_rbf=8, seed=0)
    tr, va = _split(mixed_frames)
    result = train(model, tr, va, TrainSettings(max_steps=60, lr=1e-2, batch_size=8, patience=1000))
    assert np.isfinite(result.best_val_force_mae) and result.selected == "final"
    assert result.history[-1].val_force_mae < 0.9 * result.history[0].val_force_mae
    batch = AtomsBatch.from_atoms(tr.to_atoms()[:3])
    v = projection_vectors(1, tuple(batch.positions.shape), torch.float32, "rademacher", torch.Generator().manual_seed(0))
    score_matching_loss(model, batch, 300.0, v).sum().backward()  # double backward through the message passing
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def _dead_or_alive(dead_attempts: set[int]):
    """A fresh PairPotential per attempt; in ``dead_attempts`` its gradients are zero (a network that died)."""
    made = []

    def new_model(attempt: int) -> PairPotential:
        model = PairPotential([1, 6, 8], seed=10 + attempt)
        if attempt in dead_attempts:
            model.weights.register_hook(torch.zeros_like)
        made.append(model)
        return model

    return new_model, made


def test_a_fresh_run_that_learns_nothing_restarts_from_a_new_initialisation_at_a_lower_lr(mixed_frames):
    tr, va = _split(mixed_frames)
    new_model, made = _dead_or_alive({0})
    lines = []
    model, result = train_fresh(new_model, tr, va, TrainSettings(max_steps=STALL_MIN_STEPS, **FAST), log=lines.append,
                                tag="stage2")
    assert len(made) == 2 and model is made[1] and result.restarts == 1
    assert not stalled(result) and result.best_val_force_mae < 0.85 * result.history[0].val_force_mae
    assert result.history[0].lr == pytest.approx(FAST["lr"] * RESTART_LR_FACTOR)
    assert any(line.startswith("stage2 stalled") and "restart 1/" in line for line in lines)


def test_a_fresh_run_that_learns_is_not_restarted_and_a_dead_one_gives_up_with_a_warning(mixed_frames):
    tr, va = _split(mixed_frames)
    new_model, made = _dead_or_alive(set())
    _, result = train_fresh(new_model, tr, va, TrainSettings(max_steps=STALL_MIN_STEPS, **FAST))
    assert len(made) == 1 and result.restarts == 0
    new_model, made = _dead_or_alive({0})  # a short run is not judged: it may just be slow
    _, result = train_fresh(new_model, tr, va, TrainSettings(max_steps=STALL_MIN_STEPS - 10, **FAST))
    assert len(made) == 1 and result.restarts == 0 and not stalled(result)
    new_model, made = _dead_or_alive(set(range(MAX_FRESH_RESTARTS + 1)))
    lines = []
    model, result = train_fresh(new_model, tr, va, TrainSettings(max_steps=STALL_MIN_STEPS, **FAST), log=lines.append)
    assert len(made) == MAX_FRESH_RESTARTS + 1 and result.restarts == MAX_FRESH_RESTARTS and stalled(result)
    assert any("WARNING: still stalled" in line for line in lines)


@pytest.mark.parametrize("curve, dead", [
    ([1.12, 0.95, 1.12, 1.12], True),  # learned for a few epochs, then died: ends where it started
    ([1.12, 1.12, 1.12], True),
    ([1.0, 0.5, float("nan")], True),
    ([1.0, 0.5, 0.3], False),
    ([1.0, 0.3, 0.45], False),  # over-fitted after its best epoch, far from dead
])
def test_stalled_judges_where_a_run_ended(curve, dead):
    from alloop.training.trainer import EpochRecord, TrainResult

    history = [EpochRecord(10 * k, 1.0, 1.0, mae, 0.1, 1e-2, 0.1) for k, mae in enumerate(curve)]
    result = TrainResult(history=history, best_epoch=0, best_val_force_mae=min(curve), best_val_energy_mae=0.1,
                         best_val_loss=1.0, epochs_run=history[-1].epoch, stopped_early=True, diverged=False,
                         seconds=1.0, planned_steps=STALL_MIN_STEPS)
    assert stalled(result) is dead
    result.planned_steps = STALL_MIN_STEPS - 1  # too short a budget to judge
    assert not stalled(result)
