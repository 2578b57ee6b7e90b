"""The training task: a cycle's models trained on a worker from the labels the driver sends, with the uncertainty
model, the committee and the scores on the evaluation set.

A pure, top-level function of plain data (:class:`TrainRequest`: arrays, bytes, settings) so it pickles cleanly and
is a deterministic function of its inputs (Dask may run a task twice). It never touches the store: it returns its
models as checkpoint bytes to the driver (the train phase, :mod:`alloop.campaign.phases.train`).
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import Any

import numpy as np
import torch

from alloop.campaign.execution.final_refit import (
    as_refit,
    final_fit,
    final_pieces,
    request_trainer,
    restored,
    warm_start,
)
from alloop.campaign.execution.train_request import TRAIN_TOPIC, TrainRequest, TrainTaskResult
from alloop.campaign.execution.worker import TaskLog, cluster_slots, pin_threads, worker_map
from alloop.evaluation.frames import EvaluationFrames
from alloop.evaluation.metrics import evaluate_model
from alloop.evaluation.scoring import coverage_scores, evaluation_scores, predicted_error_scores, score_model
from alloop.potentials.base import Potential
from alloop.potentials.baseline import Baseline, learned_part
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.potentials.inference import predict_energies, predict_features
from alloop.training.data import FrameDataset
from alloop.training.error_fit import EnsembleOf, HeldOut, fit_error_model
from alloop.training.fit import LabelSets, as_delta, fit
from alloop.training.methods import STANDARD, check_labels, method_spec
from alloop.training.stages import AsteroidResult, WarmStart, model_factory
from alloop.uncertainty.error_model import METADATA_KEY as ERROR_MODEL_KEY
from alloop.uncertainty.error_model import CalibrationEnsemble, ErrorModel
from alloop.uncertainty.qresidual import QResidualModel, QResidualSettings


def split_frames(request: TrainRequest, splits: dict[str, np.ndarray]) -> dict[str, dict[str, list[int]]]:
    """The frame ids on each side of the training's validation splits, per kind (expensive, cheap)."""
    out: dict[str, dict[str, list[int]]] = {}
    for kind, data in (("expensive", request.expensive), ("cheap", request.cheap)):
        if data is not None and f"{kind}_val" in splits:
            ids = np.asarray(data.frame_ids, dtype=np.int64)
            out[kind] = {side: ids[splits[f"{kind}_{side}"]].tolist() for side in ("train", "val")}
    return out


def fit_uncertainty(model: Potential, data: FrameDataset, settings: QResidualSettings) -> QResidualModel:
    """Fit the Q-residual model on the latent features of the training frames under ``model``."""
    return QResidualModel.fit(data.numbers, predict_features(model, data, 64), data.offsets, settings)


def _labels(request: TrainRequest, log: list[str]) -> LabelSets:
    """The request's label sets; AlloopError (:func:`~alloop.training.methods.check_labels`) when one its method
    trains on is missing (a method is never swapped for another)."""
    expensive = request.expensive.dataset()
    cheap = request.cheap.dataset() if request.cheap is not None and len(request.cheap) else None
    unlabelled = request.unlabelled.dataset() if request.unlabelled is not None and len(request.unlabelled) else None
    replay = request.replay.dataset() if request.replay is not None else None
    labels = LabelSets(expensive=expensive, cheap=cheap, unlabelled=unlabelled, replay=replay)
    check_labels(request.method, labels.present())
    if replay is not None:
        log.append(f"replay: {len(replay)} outside frames labelled by the original model")
    return labels


def train_task(request: TrainRequest) -> TrainTaskResult:
    """Train per ``request.method`` (:func:`alloop.training.fit.fit`: ASTEROID stages, standard or two-head; a final
    retrain compared with the model it would replace, then refitted on every label if asked), fit the next Q-residual
    model, train the committee's other members and score the model on the evaluation set."""
    pin_threads(request.threads)
    t0 = time.perf_counter()
    log = TaskLog(TRAIN_TOPIC)
    initial = model_from_bytes(request.initial_model)[0] if request.initial_model else None
    warm = warm_start(request, log)
    method, labels = request.method, _labels(request, log)
    baseline = None if request.baseline is None else Baseline(request.baseline, threads=request.threads)
    # once, for every model the task trains on these labels (the committee's members train standard: a subset)
    labels = labels.minus(baseline, log.append, trains_on=method_spec(method).labels)
    log.append(f"{method} training on {torch.get_num_threads()} torch thread(s)")
    refit, folds = None, []
    if request.refit:  # the retrain and its refit at once, one task each (the refit is kept only if the retrain is)
        threads = request.threads if cluster_slots() < 2 else max(1, request.threads // 2)  # the two share the cores
        (result, lines), (refit, refit_lines), *fold_runs = worker_map(
            partial(final_fit, request=request, method=method, labels=labels, threads=threads), final_pieces(request))
        result, refit = restored(result), restored(refit)
        folds = [restored(fold) for fold, _ in fold_runs]
        pin_threads(request.threads)  # a piece may have run in this process
        log.extend(lines)  # published already by the pieces' own logs
        for _, fold_lines in fold_runs:
            log.extend(fold_lines)
    else:
        train = request_trainer(request, initial, baseline, log.append)
        result = train(method, labels, settings=request.settings, warm=warm)
    rejected, rejected_blob = None, None
    if request.incumbent is not None:
        result, rejected = _better_of(result, request, labels, baseline, log)
        rejected_blob = None if rejected is None else rejected.pop("blob")
    validated = None
    if refit is not None and rejected is None:
        log.extend(refit_lines)
        validated = result
        result = as_refit(refit, validated, len(labels.expensive), log)
    elif refit is not None:
        log.append("the refit trained beside the rejected retrain is discarded")
    uq = fit_uncertainty(learned_part(result.model), labels.expensive if labels.cheap is None else labels.cheap,
                         request.uq_settings)
    error_model, line = fit_error_model(learned_part(result.model), *_error_frames(labels, result, validated, folds),
                                        ensemble_of=_ensemble_of(result.model, request.calibration_temperature_K),
                                        exponent=request.error_exponent)
    log.append(line)
    members = _train_committee(request, labels, initial, baseline, log)
    out = _task_result(request, method, result, uq, t0, log, rejected, error_model)
    out.rejected_blob = rejected_blob
    out.committee_blobs = members
    if validated is not None:
        out.validated_blob = checkpoint_to_bytes(validated.model, {**_model_meta(request, method, validated),
                                                                   "role": "validated"})
    if request.evaluation is not None:
        _score(out, request.evaluation, result.model, uq, log)
    return out


def _error_frames(labels: LabelSets, result: AsteroidResult, validated: AsteroidResult | None,
                  folds: list[AsteroidResult]) -> tuple[FrameDataset, list[HeldOut]]:
    """The expensive frames the delivered model learned its last stage from, and the held-out frames that calibrate
    its error model (with a refit: the validated model's, and each calibration fold model's, see
    :mod:`alloop.training.error_fit`)."""
    expensive, splits = labels.expensive, result.splits  # minus the baseline for a Delta model, as the learned part
    if "expensive_val" not in splits or len(splits["expensive_val"]) == 0:
        return expensive, []
    train, val = expensive.subset(splits["expensive_train"]), expensive.subset(splits["expensive_val"])
    if validated is None:
        return train, [HeldOut(learned_part(result.model), train, val, splits["expensive_val"])]
    return expensive, [HeldOut(learned_part(run.model), expensive.subset(run.splits["expensive_train"]),
                               expensive.subset(run.splits["expensive_val"]), run.splits["expensive_val"])
                       for run in (validated, *folds)]


def _ensemble_of(model: Potential, temperature_K: float | None) -> EnsembleOf | None:
    """The calibration frames' ensemble under the delivered ``model`` (its whole energy, the baseline's included),
    drawn at ``temperature_K``; None (no ensemble kept) for frames of a temperature ladder."""
    if temperature_K is None:
        return None
    return lambda frames: CalibrationEnsemble.of_frames(predict_energies(model, frames), frames.numbers, frames.offsets,
                                                        temperature_K)


def _score(out: TrainTaskResult, evaluation: bytes, model: Potential, uq: QResidualModel, log: list[str]) -> None:
    """Score the task's model (and the validated model before a refit) on the campaign's evaluation set, in ``out``."""
    frames = EvaluationFrames.from_bytes(evaluation)
    out.evaluation, out.molecules = evaluation_scores(out.model_blob, frames)
    out.coverage = coverage_scores(model, uq, frames)
    out.predicted = predicted_error_scores(out.model_blob, frames)
    if out.validated_blob is not None:
        before = score_model(out.validated_blob, frames)["eval_force_mae_eV_per_A"]
        line = (f"evaluation set: force MAE {out.evaluation['eval_force_mae_eV_per_A']:.4f} eV/A refit on every "
                f"label, {before:.4f} the validated model before it")
        log.append(line)  # streamed to the campaign's log
        out.log.append(line)


#: shifts the initialisation and validation-split seeds of committee member k (k x this)
COMMITTEE_SEED_STEP = 7919


def _train_committee(request: TrainRequest, labels: LabelSets, initial: Potential | None,
                     baseline: Baseline | None, log: list[str]) -> list[bytes]:
    """The committee's other members (``request.committee - 1``), as checkpoint bytes: standard training on the
    expensive labels (minus the baseline for a Delta model), member k with the model seed and the validation split's
    seed shifted by k x COMMITTEE_SEED_STEP (another initialisation and another training subset), warm-started from
    the previous cycle's member k when there is one."""
    blobs = []
    base = request.settings
    expensive = dataclasses.replace(labels, cheap=None, unlabelled=None, replay=None)  # still minus the baseline
    for k in range(1, request.committee):
        shift = COMMITTEE_SEED_STEP * k
        hp = {**request.hyperparameters, "seed": int(request.hyperparameters.get("seed", 0)) + shift}
        settings = dataclasses.replace(base, seed=base.seed + shift, split_seed=base.split_key + shift)
        warm = model_from_bytes(request.committee_warm[k - 1])[0] if k - 1 < len(request.committee_warm) else None

        def member_log(line: str, k: int = k) -> None:
            if "epoch" not in line:
                log.append(f"committee {k}: {line}")

        member = fit(STANDARD, expensive, model_factory=model_factory(request.architecture, request.elements, **hp),
                     settings=settings, baseline=baseline, initial_model=initial, log=member_log,
                     warm=WarmStart(model=warm))
        mae = member.metrics.get("force_mae_eV_per_A")
        log.append(f"committee member {k} of {request.committee - 1}: validation force MAE "
                   f"{'n/a' if mae is None else f'{mae:.4f} eV/A'}" + (" (warm start)" if warm is not None else ""))
        blobs.append(checkpoint_to_bytes(member.model, {"role": "committee", "member": k, **request.metadata,
                                                        "metrics": _jsonable(member.metrics)}))
    return blobs


#: a final retrain replaces the model before it unless its validation force MAE is more than this fraction worse
#: (a handful of validation frames: quickstart seed 0 with 228 cheap labels, 0.1106 against 0.1098 eV/A on 10
#: frames, was 0.100 against 0.118 on 150 independent ones; the collapses it guards against were 34-73 % worse)
FINAL_RETRAIN_TOLERANCE = 0.1


def _better_of(result: AsteroidResult, request: TrainRequest, labels: LabelSets, baseline: Baseline | None,
               log: list[str]) -> tuple[AsteroidResult, dict[str, Any] | None]:
    """The retrained models, or the incumbent alone if the retrained force MAE on the retrain's own validation
    frames (frames neither model trained on: the campaign's split is the same in every cycle) is more than
    ``FINAL_RETRAIN_TOLERANCE`` worse than the incumbent's. The second value says what was rejected (None: the
    retrained model is kept)."""
    val = labels.expensive.subset(result.splits["expensive_val"])  # minus the baseline for a Delta model
    assert request.incumbent is not None  # train_task compares only with an incumbent
    incumbent, meta = model_from_bytes(request.incumbent)
    incumbent = learned_part(incumbent)  # ``val`` holds the learned part's targets with a baseline
    kept = evaluate_model(incumbent, val)
    new, old = result.metrics["force_mae_eV_per_A"], kept["force_mae_eV_per_A"]
    version = f"v{request.incumbent_version}" if request.incumbent_version is not None else "the previous model"
    limit = (1.0 + FINAL_RETRAIN_TOLERANCE) * old
    if not new > limit:
        log.append(f"final retrain: validation force MAE {new:.4f} eV/A, {version} had {old:.4f} on the same "
                   f"{len(val)} frames: the retrained model replaces it")
        return result, None
    log.append(f"WARNING: final retrain rejected: validation force MAE {new:.4f} eV/A is more than "
               f"{100 * FINAL_RETRAIN_TOLERANCE:.0f} % worse than {version}'s {old:.4f} on the same {len(val)} frames; "
               f"{version}'s weights stay the campaign's model")
    references = {k: {int(z): float(e) for z, e in v.items()} for k, v in meta["energy_references"].items()}
    kept_result = dataclasses.replace(result, model=as_delta(incumbent, baseline), metrics=kept, stages={},
                                      bias_model=None, pretrained=None, bias=None, weights=None, gamma=None,
                                      gamma_scores={}, references=references)
    blob = checkpoint_to_bytes(result.model, {**request.metadata, "metrics": _jsonable(result.metrics)})
    return kept_result, {"retrained_val_force_mae_eV_per_A": new, "kept_version": request.incumbent_version, "blob": blob}


def _task_result(request: TrainRequest, method: str, result: AsteroidResult, uq: QResidualModel, t0: float,
                 log: list[str], rejected: dict[str, Any] | None = None,
                 error_model: ErrorModel | None = None) -> TrainTaskResult:
    """The trained models as checkpoint bytes (metadata: method, metrics, gamma, energy references, error model; a
    rejected final retrain) and the rest."""
    meta = _model_meta(request, method, result)
    if error_model is not None:
        meta[ERROR_MODEL_KEY] = error_model.to_text()
    if rejected is not None:
        meta["final_retrain_rejected"] = rejected
    bias_blob = pretrained_blob = None
    if result.bias_model is not None and result.bias_model is not result.model:
        bias_blob = checkpoint_to_bytes(result.bias_model, {"role": "theta0", **request.metadata})
    if result.pretrained is not None:
        pretrained_blob = checkpoint_to_bytes(result.pretrained, {"role": "stage2", **request.metadata})
    return TrainTaskResult(
        model_blob=checkpoint_to_bytes(result.model, meta),
        bias_model_blob=bias_blob,
        pretrained_blob=pretrained_blob,
        uq_blob=uq.to_bytes(),
        metrics=_jsonable(result.metrics),
        bias=result.bias,
        weights=result.weights,
        gamma=result.gamma,
        seconds=time.perf_counter() - t0,
        log=list(log),
        split_frames=split_frames(request, result.splits),
    )


def _model_meta(request: TrainRequest, method: str, result: AsteroidResult) -> dict[str, Any]:
    """A trained model's checkpoint metadata: the request's, method, metrics, gamma, energy references."""
    references = {k: {int(z): float(e) for z, e in v.items()} for k, v in result.references.items()}
    return {**request.metadata, "method": method, "metrics": _jsonable(result.metrics), "gamma": result.gamma,
            "energy_references": references}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
