"""The bias task: ASTEROID's bias B of frames under a model on a worker, with the descriptors and the committee's
deviation that the expensive selection (:mod:`alloop.campaign.phases.select_expensive`) picks by; the driver never
loads a model.

A pure, top-level function of plain data, a deterministic function of its inputs (Dask may run a task twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from alloop.campaign.execution.worker import pin_threads
from alloop.potentials.base import Potential
from alloop.potentials.baseline import learned_part
from alloop.potentials.checkpoint import model_from_bytes
from alloop.potentials.inference import predict_features
from alloop.uncertainty.bias_score import committee_deviation, model_bias
from alloop.uncertainty.error_model import ErrorModel
from alloop.uncertainty.selection import frame_descriptors


@dataclass
class BiasTaskResult:
    """What a bias task returns: B per frame and, when asked for, the frames' descriptors."""

    bias: np.ndarray  # [M] eV/A
    descriptors: np.ndarray | None  # [M, D] frame_descriptors of the feature model, for the diverse expensive pick
    labelled: np.ndarray | None = None  # [K, D] the same for the frames already expensive-labelled (coverage rule)
    deviation: np.ndarray | None = None  # [M] eV/A the committee's force deviation (committee rule)
    predicted: np.ndarray | None = None  # [M] the model's predicted force error, eV/A (its latent distance when
    # uncalibrated): the expensive pick's score for a method without a stage-1 model theta_0
    target: np.ndarray | None = None  # [P, D] the descriptors of the cycle's herding target (selection.exploration)


def bias_task(model_blob: bytes, frames: list[Atoms], ref_forces: np.ndarray, threads: int = 1,
              feature_blob: bytes | None = None, labelled: list[Atoms] | None = None,
              committee: list[bytes] | None = None, error_blob: bytes | None = None,
              target: list[Atoms] | None = None) -> BiasTaskResult:
    """ASTEROID's bias B per frame of the checkpoint ``model_blob`` against reference (cheap) forces [N, 3]; with
    ``feature_blob`` (the checkpoint whose latent features the explore phase's selection uses) also the frames'
    :func:`frame_descriptors` under that model, and those of the ``labelled`` frames (already expensive-labelled;
    the coverage rule's reference), over one element list; with ``committee`` (checkpoints of two models or more)
    the committee's force deviation per frame (:func:`committee_deviation`); with ``error_blob`` (a checkpoint) the
    force error that model's own error model predicts per frame (None if it has no error model); with ``target``
    (frames, needs ``feature_blob``) also their descriptors (the herding target of the representative quota)."""
    pin_threads(threads)
    model, metadata = model_from_bytes(model_blob)
    model.eval()
    bias = model_bias(model, frames, ref_forces)
    deviation = None
    if committee:
        members = [model if b == model_blob else model_from_bytes(b)[0].eval() for b in committee]  # loaded once
        deviation = committee_deviation(members, frames)
    predicted = None
    if error_blob is not None:
        own, own_meta = (model, metadata) if error_blob == model_blob else model_from_bytes(error_blob)
        predicted = own_predicted_error(own.eval(), own_meta, frames)
    if feature_blob is None:
        return BiasTaskResult(bias, None, deviation=deviation, predicted=predicted)
    features_model = model if feature_blob == model_blob else model_from_bytes(feature_blob)[0]
    labelled, target = labelled or [], target or []
    elements = sorted(set(np.concatenate([a.numbers for a in frames + labelled + target]).tolist()))

    def describe(group: list[Atoms]) -> np.ndarray:
        numbers = np.concatenate([a.numbers for a in group])
        ptr = np.concatenate([[0], np.cumsum([len(a) for a in group])])
        return frame_descriptors(numbers, predict_features(features_model, group), ptr, elements)

    return BiasTaskResult(bias, describe(frames), describe(labelled) if labelled else None, deviation, predicted,
                          describe(target) if target else None)


def own_predicted_error(model: Potential, metadata: dict, frames: list[Atoms]) -> np.ndarray | None:
    """Per frame: the force error the model's error model predicts (eV/A), or its latent distance when the error
    model is uncalibrated (the same ranking); None for a model without one."""
    error_model = ErrorModel.from_metadata(metadata)
    if error_model is None:
        return None
    numbers = np.concatenate([a.numbers for a in frames])
    ptr = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    errors = error_model.frame_errors(numbers, predict_features(learned_part(model), frames), ptr)
    return errors.predicted if error_model.calibrated else errors.distance
