"""The final retrain replaces the campaign's model only if it is no worse on its own validation frames."""

from __future__ import annotations

import numpy as np
import torch
from ase.build import molecule

from alloop.campaign.execution.train_request import LabelledArrays, TrainRequest
from alloop.campaign.execution.train_task import train_task
from alloop.evaluation.frames import EvaluationFrames
from alloop.evaluation.scoring import score_model
from alloop.potentials.base import AtomsBatch
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.potentials.pair import PairPotential
from alloop.training.settings import TrainSettings
from alloop.training.stages import AsteroidSettings
from alloop.training.trainer import parameter_fingerprint
from alloop.uncertainty.qresidual import QResidualSettings

ELEMENTS = [1, 6, 8]


def _truth() -> PairPotential:
    model = PairPotential(ELEMENTS, seed=3)
    with torch.no_grad():
        model.weights.mul_(20.0)  # forces of O(1) eV/A
    return model


def _labelled(truth: PairPotential, n: int = 24) -> LabelledArrays:
    rng = np.random.default_rng(0)
    frames = []
    for k in range(n):
        atoms = molecule("CH3CH2OH" if k % 2 else "H2O")
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        frames.append(atoms)
    out = truth(AtomsBatch.from_atoms(frames))
    forces = np.split(out.forces.detach().numpy().astype(float), np.cumsum([len(a) for a in frames])[:-1])
    return LabelledArrays(frame_ids=np.arange(n), numbers=[a.numbers for a in frames],
                          positions=[a.positions for a in frames], energy=out.energy.detach().numpy().astype(float),
                          forces=forces, fidelity="synthetic")


def _final_retrain(incumbent: PairPotential, data: LabelledArrays) -> TrainRequest:
    stage = TrainSettings(max_steps=20, batch_size=16, lr=1e-3)  # a short retrain: well short of the truth
    return TrainRequest(
        method="standard", architecture="pair", elements=ELEMENTS, hyperparameters={}, expensive=data, cheap=None,
        unlabelled=None,
        settings=AsteroidSettings(stage1=stage, stage2=stage, stage3=stage, val_fraction=0.25, seed=1, split_seed=0),
        uq_settings=QResidualSettings(n_components=2, min_element_atoms=2), metadata={"cycle": 1, "final_retrain": True},
        incumbent=checkpoint_to_bytes(incumbent, {}), incumbent_version=4,
    )


def test_a_final_retrain_worse_than_the_model_it_replaces_is_kept_aside():
    truth = _truth()  # the incumbent is exact: nothing trained in 20 steps beats it
    out = train_task(_final_retrain(truth, _labelled(truth)))
    model, meta = model_from_bytes(out.model_blob)
    assert parameter_fingerprint(model) == parameter_fingerprint(truth)
    assert out.metrics["force_mae_eV_per_A"] < 1e-5
    assert meta["final_retrain_rejected"]["kept_version"] == 4
    assert meta["final_retrain_rejected"]["retrained_val_force_mae_eV_per_A"] > 0.01
    assert out.rejected_blob is not None and out.bias_model_blob is None and out.pretrained_blob is None
    rejected, _ = model_from_bytes(out.rejected_blob)
    assert parameter_fingerprint(rejected) != parameter_fingerprint(truth)
    assert any(line.startswith("WARNING: final retrain rejected") and "v4's" in line for line in out.log)


def test_a_final_retrain_at_least_as_good_replaces_it():
    truth = _truth()
    poor = PairPotential(ELEMENTS, seed=8)
    with torch.no_grad():
        poor.weights.mul_(-40.0)  # forces far from the truth's
    out = train_task(_final_retrain(poor, _labelled(truth)))
    model, meta = model_from_bytes(out.model_blob)
    assert parameter_fingerprint(model) != parameter_fingerprint(poor)
    assert "final_retrain_rejected" not in meta and out.rejected_blob is None
    assert any("the retrained model replaces it" in line for line in out.log)


def test_the_retrain_may_be_a_little_worse_than_the_model_it_replaces(monkeypatch):
    """A few validation frames cannot tell models within FINAL_RETRAIN_TOLERANCE apart: the retrain replaces the
    previous model unless it is worse by more than that share."""
    import alloop.campaign.execution.train_task as tasks

    truth = _truth()
    near = _truth()
    with torch.no_grad():
        near.weights.mul_(1.01)  # 1 % off the truth: far better than a 20-step retrain, but not exact
    data = _labelled(truth)
    assert train_task(_final_retrain(near, data)).rejected_blob is not None
    monkeypatch.setattr(tasks, "FINAL_RETRAIN_TOLERANCE", 1e6)  # now any retrain is within the margin
    out = train_task(_final_retrain(near, data))
    assert out.rejected_blob is None and any("the retrained model replaces it" in line for line in out.log)
    assert parameter_fingerprint(model_from_bytes(out.model_blob)[0]) != parameter_fingerprint(near)


def test_a_refit_trains_the_accepted_retrain_again_on_every_label():
    """training.final_refit: the validated model is kept aside, the delivered one saw the validation frames too."""
    import dataclasses

    truth = _truth()
    poor = PairPotential(ELEMENTS, seed=8)
    with torch.no_grad():
        poor.weights.mul_(-40.0)
    data = _labelled(truth)
    frames = EvaluationFrames(numbers=np.concatenate(data.numbers), positions_A=np.concatenate(data.positions),
                              offsets=np.concatenate([[0], np.cumsum([len(z) for z in data.numbers])]),
                              energy_eV=np.asarray(data.energy), forces_eV_per_A=np.concatenate(data.forces))
    request = dataclasses.replace(_final_retrain(poor, data), refit=True, evaluation=frames.to_bytes())
    out = train_task(request)
    model, meta = model_from_bytes(out.model_blob)
    validated, vmeta = model_from_bytes(out.validated_blob)
    assert vmeta["role"] == "validated" and "final_retrain_rejected" not in meta
    assert parameter_fingerprint(model) != parameter_fingerprint(validated)
    val = out.split_frames["expensive"]["val"]
    assert val and set(val).isdisjoint(out.split_frames["expensive"]["train"])  # the validated run's split
    # the recorded estimate is the validated model's holdout error; the refit's training error is beside it
    assert meta["metrics"]["force_mae_eV_per_A"] == vmeta["metrics"]["force_mae_eV_per_A"]
    assert "refit_train_force_mae_eV_per_A" in meta["metrics"]
    assert any(line.startswith(f"final refit: the same recipe on all {len(request.expensive)} expensive labels")
               for line in out.log)
    # the delivered (refit) model is scored on the evaluation set, and the validated one beside it in the log
    scored = [line for line in out.log if line.startswith("evaluation set: force MAE")]
    assert scored == [f"evaluation set: force MAE {out.evaluation['eval_force_mae_eV_per_A']:.4f} eV/A refit on every "
                      f"label, {score_model(out.validated_blob, frames)['eval_force_mae_eV_per_A']:.4f} the validated "
                      "model before it"]


def test_the_refit_trains_on_the_validation_frames():
    from alloop.training.data import FrameDataset
    from alloop.training.stages import AsteroidSettings as Settings

    data = _labelled(_truth()).dataset()
    assert isinstance(data, FrameDataset)
    stage = TrainSettings(max_steps=1)
    train, val, tr, va = Settings(stage, stage, stage, val_fraction=0.25, refit=True).split(data)
    assert len(train) == len(val) == len(data) and list(tr) == list(va) == list(range(len(data)))
    train, val, tr, va = Settings(stage, stage, stage, val_fraction=0.25).split(data)
    assert len(train) + len(val) == len(data) and set(tr).isdisjoint(va)


def test_no_refit_when_the_retrain_is_rejected():
    import dataclasses

    truth = _truth()
    out = train_task(dataclasses.replace(_final_retrain(truth, _labelled(truth)), refit=True))
    assert out.rejected_blob is not None and out.validated_blob is None
    assert not any(line.startswith("final refit") for line in out.log)  # trained beside it, then discarded
    assert "the refit trained beside the rejected retrain is discarded" in out.log
