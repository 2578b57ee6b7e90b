"""training.final_refit on a real LocalCluster: the retrain and its refit run as two tasks, with the same result as
one after the other in one process."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import torch
from ase.build import molecule

from alloop.campaign.execution.cluster import open_client
from alloop.campaign.execution.train_request import LabelledArrays, TrainRequest
from alloop.campaign.execution.train_task import train_task
from alloop.potentials.base import AtomsBatch
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.potentials.pair import PairPotential
from alloop.training.settings import TrainSettings
from alloop.training.stages import AsteroidSettings
from alloop.training.trainer import parameter_fingerprint
from alloop.uncertainty.qresidual import QResidualSettings

ELEMENTS = [1, 6, 8]


def _refit_lines(log: list[str]) -> list[str]:
    """The refit's log lines without the seconds each epoch took (they depend on the machine's load)."""
    return [re.sub(r"\s+[0-9.]+s$", "", line) for line in log if line.startswith("final refit: ")]


def _request(architecture: str = "pair", hyperparameters: dict | None = None) -> TrainRequest:
    truth = PairPotential(ELEMENTS, seed=3)
    with torch.no_grad():
        truth.weights.mul_(20.0)
    poor = PairPotential(ELEMENTS, seed=8)  # the incumbent: far off, so the retrain is kept and refitted
    rng = np.random.default_rng(0)
    frames = []
    for k in range(16):
        atoms = molecule("CH3CH2OH" if k % 2 else "H2O")
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        frames.append(atoms)
    out = truth(AtomsBatch.from_atoms(frames))
    forces = np.split(out.forces.detach().numpy().astype(float), np.cumsum([len(a) for a in frames])[:-1])
    data = LabelledArrays(frame_ids=np.arange(len(frames)), numbers=[a.numbers for a in frames],
                          positions=[a.positions for a in frames], energy=out.energy.detach().numpy().astype(float),
                          forces=forces, fidelity="synthetic")
    stage = TrainSettings(max_steps=15, batch_size=8, lr=1e-3)
    return TrainRequest(
        method="standard", architecture=architecture, elements=ELEMENTS, hyperparameters=hyperparameters or {},
        expensive=data, cheap=None,
        unlabelled=None,
        settings=AsteroidSettings(stage1=stage, stage2=stage, stage3=stage, val_fraction=0.25, seed=1, split_seed=0),
        uq_settings=QResidualSettings(n_components=2, min_element_atoms=2), metadata={"cycle": 2, "final_retrain": True},
        incumbent=checkpoint_to_bytes(poor, {}), incumbent_version=2, refit=True,
    )


def test_a_sevennet_0_retrain_and_refit_come_back_from_the_workers_loadable():
    """A pickled e3nn model gains tensor constants in its state dict; the pieces return checkpoint bytes instead."""
    from alloop.presets import load_preset

    spec = load_preset("models", "sevennet-0")
    request = dataclasses.replace(_request(spec.pop("architecture"), spec), incumbent=None)
    with open_client(n_workers=2, threads_per_worker=1) as client:
        client.wait_for_workers(2)
        out = client.submit(train_task, request, pure=False).result(timeout=600)
    model, meta = model_from_bytes(out.model_blob)
    validated, _ = model_from_bytes(out.validated_blob)
    assert parameter_fingerprint(model) != parameter_fingerprint(validated)
    assert "refit_train_force_mae_eV_per_A" in meta["metrics"]


def _fingerprints(out) -> tuple[str, str]:
    return (parameter_fingerprint(model_from_bytes(out.model_blob)[0]),
            parameter_fingerprint(model_from_bytes(out.validated_blob)[0]))


def test_the_retrain_and_its_refit_run_as_two_tasks_with_the_in_process_result():
    request = _request()
    alone = train_task(request)  # outside a worker: one after the other
    with open_client(n_workers=2, threads_per_worker=1) as client:
        client.wait_for_workers(2)
        with distributed_task_stream(client) as stream:
            on_workers = client.submit(train_task, dataclasses.replace(request), pure=False).result(timeout=300)
        pieces = [t for t in stream.data if t["key"].startswith("final_fit")]
        two = dataclasses.replace(request, threads=2, settings=request.settings.with_threads(2))  # as a campaign's
        two = client.submit(train_task, two, pure=False).result(timeout=300)
    assert len(pieces) == 2  # the retrain and the refit, each a task of its own
    assert _fingerprints(on_workers) == _fingerprints(alone)  # the same two models
    assert _fingerprints(alone)[0] != _fingerprints(alone)[1]  # the refit is not the validated model
    assert on_workers.metrics == alone.metrics
    refit_lines = _refit_lines(on_workers.log)
    assert refit_lines and refit_lines == _refit_lines(alone.log)
    # two training threads: the retrain and the refit share the two cores, one thread each
    assert {"final retrain on 1 torch thread(s)", "final refit on 1 torch thread(s)"} <= set(two.log)
    starts = [line for line in two.log if "validation frames, 15 steps" in line]  # each training's first line
    assert len(starts) == 2 and all(line.endswith(", 1 torch thread(s)") for line in starts)
    assert "standard training on 2 torch thread(s)" in two.log


def distributed_task_stream(client):
    from distributed import get_task_stream

    return get_task_stream(client)


def test_calibration_folds_train_beside_the_refit_and_calibrate_on_every_frame_once():
    """training.calibration_folds: 3 folds of held-out frames (6, 6 and the last 4 of 16) calibrate the refit's
    error model, each under its own fold's model; the delivered model and the validated one are unchanged."""
    request = _request()
    plain = train_task(request)
    folded = train_task(dataclasses.replace(request, calibration_folds=3))
    assert _fingerprints(folded) == _fingerprints(plain)  # the folds only calibrate
    assert {"calibration fold 1 on 1 torch thread(s)", "calibration fold 2 on 1 torch thread(s)"} <= set(folded.log)
    assert any("calibrated on 6 held-out frames (the validated model's, before the refit)" in line for line in plain.log)
    assert any("calibrated on 16 held-out frames of 3 cross-validation folds" in line for line in folded.log)
