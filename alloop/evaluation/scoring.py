"""The scores a task computes on a worker on the campaign's evaluation set (so the driver loads no model): a
checkpoint's errors (:func:`score_model`; per molecule too, :func:`evaluation_scores`) and how much of the set
a model's uncertainty model covers (:func:`coverage_scores`). :mod:`alloop.evaluation.campaign` records them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alloop.errors import AlloopError
from alloop.evaluation.frames import EvaluationFrames
from alloop.evaluation.records import SCORES

#: frames per model call when scoring
BATCH_SIZE = 32


def score_model(model_blob: bytes, frames: EvaluationFrames) -> dict[str, float]:
    """The ``eval_*`` scores and tails of a checkpoint on the set (expensive-fidelity energy references applied)."""
    return evaluation_scores(model_blob, frames)[0]


def evaluation_scores(model_blob: bytes, frames: EvaluationFrames
                      ) -> tuple[dict[str, float], dict[str, dict[str, float]] | None]:
    """The ``eval_*`` scores and tails (:data:`~alloop.evaluation.records.SCORES`) of a checkpoint on the set
    (expensive-fidelity energy references applied) and, for a set of several molecules (formulas,
    :mod:`alloop.molecules`), the same per molecule with its ``n_frames`` (None for a set of one molecule), from one
    prediction."""
    from alloop.evaluation.metrics import error_metrics, molecule_metrics
    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.potentials.inference import predict
    from alloop.training.data import FrameDataset
    from alloop.training.references import apply_references

    model, metadata = model_from_bytes(model_blob)
    references = metadata["energy_references"].get(str(frames.header.get("expensive_fidelity_hash", "")))
    if references:
        apply_references(model, references)
    unknown = set(frames.elements) - set(model.elements)
    if unknown:
        raise AlloopError(f"the evaluation set has elements {sorted(unknown)} that the model does not know "
                          f"{list(model.elements)}")
    dataset = FrameDataset(**frames.dataset_arrays(), energy=frames.energy_eV, forces=frames.forces_eV_per_A,
                           fidelity="evaluation")
    energy, forces = predict(model, dataset, BATCH_SIZE)
    metrics = error_metrics(dataset, energy, forces)
    split = molecule_metrics(dataset, energy, forces)
    molecules = None if len(split) < 2 else {
        name: {"n_frames": float(m["n_frames"]), **{column: float(m[key]) for column, key in SCORES.items()}}
        for name, m in split.items()}
    return {column: float(metrics[key]) for column, key in SCORES.items()}, molecules


def coverage_scores(model: Any, uq: Any, frames: EvaluationFrames) -> dict[str, float]:
    """How much of the evaluation set the model knows: the share of frames whose Q-residual score under ``uq`` (the
    uncertainty model fitted with ``model``; flagged when > 1, as in the explore phase) is within the limit, and the
    median score."""
    from alloop.potentials.inference import predict_features
    from alloop.training.data import FrameDataset

    dataset = FrameDataset(**frames.dataset_arrays(), fidelity="evaluation")
    q = uq.frame_scores(frames.numbers, predict_features(model, dataset), frames.offsets).q
    return {"covered_fraction": float(np.mean(q <= 1.0)), "median_q": float(np.median(q))}


def predicted_error_scores(model_blob: bytes, frames: EvaluationFrames) -> dict[str, float] | None:
    """The checkpoint's own predicted force error on the set and how it ranks and bounds the true per-frame errors
    (:func:`alloop.training.error_fit.predicted_error_metrics`); None for a model without a calibrated error
    model."""
    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.training.data import FrameDataset
    from alloop.training.error_fit import predicted_error_metrics

    model, metadata = model_from_bytes(model_blob)
    dataset = FrameDataset(**frames.dataset_arrays(), energy=frames.energy_eV, forces=frames.forces_eV_per_A,
                           fidelity="evaluation")
    return predicted_error_metrics(model, metadata, dataset)
