"""The final cycle's trainings as pieces of the training task: the validated retrain, ``training.final_refit``'s
refit and the folds of ``training.calibration_folds`` are independent, so
:func:`alloop.campaign.execution.train_task.train_task` maps :func:`final_fit` over them
(:func:`~alloop.campaign.execution.worker.worker_map`: at once on a cluster with as many task slots), and the pieces
return their models as checkpoint bytes (:func:`portable`). :func:`warm_start` and :func:`request_trainer` serve
every training of the task, here to keep the pieces free of an import of the task's module."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from alloop.campaign.execution.train_request import TRAIN_TOPIC, TrainRequest
from alloop.campaign.execution.worker import TaskLog, pin_threads, worker_map
from alloop.potentials.base import Potential
from alloop.potentials.baseline import Baseline
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.training.fit import LabelSets, fit
from alloop.training.stages import AsteroidResult, WarmStart, model_factory


def warm_start(request: TrainRequest, log: list[str]) -> WarmStart:
    """The previous cycle's models to continue from (theta0: stage 1, stage2, model), if the request has them."""
    warm = {role: model_from_bytes(blob)[0] for role, blob in request.warm.items()}
    if warm:
        log.append(f"warm start from the previous cycle's {', '.join(sorted(warm))}")
    elif request.metadata.get("final_retrain"):
        log.append("final retrain: every stage afresh with the full budget on every label")
    return WarmStart(stage1=warm.get("theta0"), stage2=warm.get("stage2"), model=warm.get("model"))


def request_trainer(request: TrainRequest, initial: Potential | None, baseline: Baseline | None,
                    log: Callable[[str], None]) -> Callable[..., AsteroidResult]:
    """:func:`~alloop.training.fit.fit` with the request's model, baseline and start (``train(method, labels, ...)``)."""
    return partial(fit, model_factory=model_factory(request.architecture, request.elements, **request.hyperparameters),
                   baseline=baseline, initial_model=initial, log=log, map_fn=worker_map)


#: :func:`final_fit`'s pieces: the validated retrain, the refit, and calibration fold k as piece k + 1 (the first
#: two are also False and True, the pieces of a campaign driver that predates the folds)
RETRAIN, REFIT = 0, 1


def final_pieces(request: TrainRequest) -> list[int]:
    """The final cycle's trainings as :func:`final_fit` pieces: the validated retrain, the refit, and with
    ``training.calibration_folds`` k the folds 1..k-1 of cross-validated calibration."""
    return [RETRAIN, REFIT, *(fold + 1 for fold in range(1, request.calibration_folds))]


def final_fit(piece: int, *, request: TrainRequest, method: str, labels: LabelSets,
              threads: int) -> tuple[AsteroidResult, list[str]]:
    """One of a final cycle's trainings, as a task of its own: the validated retrain (``piece`` :data:`RETRAIN`:
    the request's split and warm start), ``training.final_refit``'s refit (:data:`REFIT`: the same recipe and seeds
    on every frame, no holdout) or calibration fold k (piece k + 1: the retrain holding out fold k of the split
    instead, :meth:`alloop.training.data.FrameDataset.split`). The pieces are independent, so a campaign with
    several task slots runs them at once, each on ``threads`` torch threads (half the training's threads there; with
    one thread each, the same computation as one after the other). Returns the result and its log lines (the refit's and the
    folds' prefixed), which the piece has published as they happened."""
    pin_threads(threads)
    log = TaskLog(TRAIN_TOPIC)
    name = {RETRAIN: "final retrain", REFIT: "final refit"}.get(piece, f"calibration fold {piece - 1}")
    log.append(f"{name} on {torch.get_num_threads()} torch thread(s)")
    initial = model_from_bytes(request.initial_model)[0] if request.initial_model else None
    baseline = labels.baseline  # the labels are minus it already
    settings = request.settings.with_threads(threads)  # each stage sets its threads when it starts
    if piece == RETRAIN:
        train = request_trainer(request, initial, baseline, log.append)
        return portable(train(method, labels, settings=settings, warm=warm_start(request, []))), list(log)
    train = request_trainer(request, initial, baseline, lambda line: log.append(f"{name}: {line}"))
    if piece == REFIT:
        return portable(train(method, labels, settings=dataclasses.replace(settings, refit=True))), list(log)
    return (portable(train(method, labels, settings=dataclasses.replace(settings, val_fold=piece - 1),
                           warm=warm_start(request, []))), list(log))


#: the model-valued fields of an AsteroidResult
_MODEL_FIELDS = ("model", "bias_model", "pretrained")


def portable(result: AsteroidResult) -> AsteroidResult:
    """``result`` with its models as checkpoint bytes, to cross processes: a pickled e3nn model (SevenNet-0) comes
    back with extra tensor constants in its state dict, which no checkpoint of its architecture loads."""
    blobs: dict[str, Any] = {k: None if getattr(result, k) is None else checkpoint_to_bytes(getattr(result, k))
                             for k in _MODEL_FIELDS}
    return dataclasses.replace(result, **blobs)


def restored(result: AsteroidResult) -> AsteroidResult:
    """The models of a :func:`portable` result, rebuilt."""
    models: dict[str, Any] = {k: None if getattr(result, k) is None else model_from_bytes(getattr(result, k))[0]
                              for k in _MODEL_FIELDS}
    return dataclasses.replace(result, **models)


def as_refit(refit: AsteroidResult, validated: AsteroidResult, n: int, log: list[str]) -> AsteroidResult:
    """The delivered model of ``training.final_refit``: the refit (see :func:`final_fit`), with the validated
    run's metrics (its holdout error is the estimate the campaign records) and splits, plus the refit's
    training-set force MAE; the refit's own guards watch the training error."""
    log.append(f"final refit: the same recipe on all {n} expensive labels (the {len(validated.splits['expensive_val'])} "
               "validation frames joined the training set)")
    metrics = {**validated.metrics, "refit_train_force_mae_eV_per_A": refit.metrics["force_mae_eV_per_A"]}
    log.append(f"final refit: training-set force MAE {refit.metrics['force_mae_eV_per_A']:.4f} eV/A; the validation "
               f"force MAE recorded stays the validated model's {validated.metrics['force_mae_eV_per_A']:.4f}")
    return dataclasses.replace(refit, metrics=metrics, splits=validated.splits)
