"""Training: the loss of ASTEROID Eq. 1, energy references, ASTEROID stages, score matching.

Entry points: :func:`fit` (the one training path of ``alloop train`` and a campaign: a method on
:class:`LabelSets`, with a Delta baseline and replay), :func:`train` (one supervised run with the recipe
of docs/training.md), :func:`fit_output_scale` (before a fresh model's first run), :func:`train_asteroid`
(standard, ASTEROID, ASTEROID without weights, score matching; :class:`WarmStart` to
continue from a previous cycle's models), :func:`forgetting_scores`
(a model against its original on outside structures), :class:`ReplayMix` (replay batches),
:func:`train_two_head` (a two-head model: cheap and expensive heads on one representation),
:func:`refine_representation` (test-time training of a two-head model on cheap labels),
:func:`refine_radius_predict` (spectral radius refinement: a graph radius per structure). A model's errors on
labelled frames are :mod:`alloop.evaluation.metrics`.
"""

from alloop.training.asteroid import METHODS, AsteroidResult, AsteroidSettings, WarmStart, finetune, train_asteroid
from alloop.training.bias_weights import bias_weights, dataset_bias, gamma_candidates, typical_bias
from alloop.training.data import FrameDataset, LabelledBatch
from alloop.training.fit import LabelSets, fit
from alloop.training.forgetting import ForgettingScores, forgetting_scores
from alloop.training.loss import eq1_loss, per_frame_losses, weighted_loss
from alloop.training.metrics import pseudo_labelled
from alloop.training.references import ReferenceFit, apply_references, fit_references
from alloop.training.refine import RefineResult, RefineSettings, refine_representation
from alloop.training.replay import ReplayMix, replay_per_batch
from alloop.training.score_matching import ScoreMatchingSettings, score_matching_loss, train_score_matching
from alloop.training.spectral_radius import RadiusRefinement, refine_radius_predict
from alloop.training.trainer import TrainResult, TrainSettings, fit_output_scale, parameter_fingerprint, train
from alloop.training.two_head import TWO_HEAD_MODES, train_two_head

__all__ = [
    "METHODS", "AsteroidResult", "AsteroidSettings", "WarmStart", "finetune", "train_asteroid",
    "bias_weights", "dataset_bias", "gamma_candidates", "typical_bias",
    "FrameDataset", "LabelledBatch",
    "LabelSets", "fit",
    "ForgettingScores", "forgetting_scores",
    "eq1_loss", "per_frame_losses", "weighted_loss",
    "pseudo_labelled",
    "ReferenceFit", "apply_references", "fit_references",
    "RefineResult", "RefineSettings", "refine_representation",
    "ReplayMix", "replay_per_batch",
    "ScoreMatchingSettings", "score_matching_loss", "train_score_matching",
    "RadiusRefinement", "refine_radius_predict",
    "TrainResult", "TrainSettings", "fit_output_scale", "parameter_fingerprint", "train",
    "TWO_HEAD_MODES", "train_two_head",
]
