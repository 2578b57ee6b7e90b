"""Training: the loss of ASTEROID Eq. 1, energy references, ASTEROID stages, score matching.

Entry points: :func:`alloop.training.fit.fit` (the one training path of ``alloop train`` and a campaign: a method
on :class:`LabelSets`, with a Delta baseline and replay), :data:`METHODS` (the method registry: each method's label
sets and trainer, :mod:`alloop.training.methods`), :func:`train` (one supervised run with the recipe
of docs/training.md), :func:`fit_output_scale` (before a fresh model's first run), :func:`train_asteroid`
(standard, ASTEROID, ASTEROID without weights, score matching; :class:`WarmStart` to
continue from a previous cycle's models), :func:`forgetting_scores`
(a model against its original on outside structures), :class:`ReplayMix` (replay batches),
:func:`train_two_head` (a two-head model: cheap and expensive heads on one representation),
:func:`refine_representation` (test-time training of a two-head model on cheap labels),
:func:`refine_radius_predict` (spectral radius refinement: a graph radius per structure). A model's errors on
labelled frames are :mod:`alloop.evaluation.metrics`.

The public names are re-exported lazily (PEP 562), as :mod:`alloop.config`'s: the config reads the method
registry (:mod:`alloop.training.methods`, plain data), and importing it must not load the trainers (torch, and
the recipe, which reads the config back). A function named as its own module (``fit``, ``bias_weights``) is not
re-exported: once its module is imported, the package's attribute of that name is the module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alloop.training.asteroid import finetune, train_asteroid
    from alloop.training.bias_weights import dataset_bias, gamma_candidates, typical_bias
    from alloop.training.data import FrameDataset, LabelledBatch
    from alloop.training.fit import LabelSets
    from alloop.training.forgetting import ForgettingScores, forgetting_scores
    from alloop.training.loss import eq1_loss, per_frame_losses, weighted_loss
    from alloop.training.methods import METHODS, Method
    from alloop.training.metrics import pseudo_labelled
    from alloop.training.references import ReferenceFit, apply_references, fit_references
    from alloop.training.refine import RefineResult, RefineSettings, refine_representation
    from alloop.training.replay import ReplayMix, replay_per_batch
    from alloop.training.score_matching import ScoreMatchingSettings, score_matching_loss, train_score_matching
    from alloop.training.spectral_radius import RadiusRefinement, refine_radius_predict
    from alloop.training.stages import AsteroidResult, AsteroidSettings, WarmStart
    from alloop.training.trainer import TrainResult, TrainSettings, fit_output_scale, parameter_fingerprint, train
    from alloop.training.two_head import TWO_HEAD_MODES, train_two_head

#: public name -> the submodule that defines it
_HOMES = {
    **dict.fromkeys(("finetune", "train_asteroid"), "asteroid"),
    **dict.fromkeys(("AsteroidResult", "AsteroidSettings", "WarmStart"), "stages"),
    **dict.fromkeys(("dataset_bias", "gamma_candidates", "typical_bias"), "bias_weights"),
    **dict.fromkeys(("FrameDataset", "LabelledBatch"), "data"),
    "LabelSets": "fit",
    **dict.fromkeys(("ForgettingScores", "forgetting_scores"), "forgetting"),
    **dict.fromkeys(("eq1_loss", "per_frame_losses", "weighted_loss"), "loss"),
    **dict.fromkeys(("METHODS", "Method"), "methods"),
    "pseudo_labelled": "metrics",
    **dict.fromkeys(("ReferenceFit", "apply_references", "fit_references"), "references"),
    **dict.fromkeys(("RefineResult", "RefineSettings", "refine_representation"), "refine"),
    **dict.fromkeys(("ReplayMix", "replay_per_batch"), "replay"),
    **dict.fromkeys(("ScoreMatchingSettings", "score_matching_loss", "train_score_matching"), "score_matching"),
    **dict.fromkeys(("RadiusRefinement", "refine_radius_predict"), "spectral_radius"),
    **dict.fromkeys(("TrainResult", "TrainSettings", "fit_output_scale", "parameter_fingerprint", "train"), "trainer"),
    **dict.fromkeys(("TWO_HEAD_MODES", "train_two_head"), "two_head"),
}

__all__ = [
    "AsteroidResult",
    "AsteroidSettings",
    "ForgettingScores",
    "FrameDataset",
    "LabelSets",
    "LabelledBatch",
    "METHODS",
    "Method",
    "RadiusRefinement",
    "ReferenceFit",
    "RefineResult",
    "RefineSettings",
    "ReplayMix",
    "ScoreMatchingSettings",
    "TWO_HEAD_MODES",
    "TrainResult",
    "TrainSettings",
    "WarmStart",
    "apply_references",
    "dataset_bias",
    "eq1_loss",
    "finetune",
    "fit_output_scale",
    "fit_references",
    "forgetting_scores",
    "gamma_candidates",
    "parameter_fingerprint",
    "per_frame_losses",
    "pseudo_labelled",
    "refine_radius_predict",
    "refine_representation",
    "replay_per_batch",
    "score_matching_loss",
    "train",
    "train_asteroid",
    "train_score_matching",
    "train_two_head",
    "typical_bias",
    "weighted_loss",
]

assert sorted(_HOMES) == __all__


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'alloop.training' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"alloop.training.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
