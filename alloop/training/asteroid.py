"""ASTEROID: bias-aware pretraining on cheap labels, fine-tuning on expensive labels.

Methods (those of the registry :mod:`alloop.training.methods` whose trainer is ``asteroid``), all behind
:func:`train_asteroid`:

- ``standard``: a fresh model (or a copy of ``initial_model``) trained on the
  expensive labels only (= stage 1).
- ``asteroid``: stage 1, theta_0 on expensive labels; bias ``B_j`` of every cheap
  frame against theta_0; stage 2, bias-aware training on cheap labels with
  ``w_j = exp(-B_j / gamma)`` and cheap-fidelity references; stage 3, fine-tuning
  from the stage-2 weights on expensive labels (expensive references, lower lr),
  keeping the best validation force MAE.
- ``asteroid-no-weights``: stages 2-3 with w = 1 (no stage 1).
- ``score-matching``: sliced score matching on unlabelled frames replaces stages
  1-2, then stage 3.

Splits: the expensive set is split once into training and validation frames,
used by stages 1 and 3; the cheap set likewise for stage 2. A frame's side is
a hash of its geometry and ``split_seed`` (:meth:`FrameDataset.split`), which a
campaign keeps at its own seed in every cycle while ``seed`` (initialisation,
batch order) changes per cycle: a frame once in training stays there, a frame
once in validation stays there (but for the frame forced to a side that no
frame drew, see :meth:`FrameDataset.split`). The validation splits only guard
the runs (early stopping on divergence or a long plateau, see :mod:`trainer`); the reported ``metrics`` are the final model's
errors on the expensive validation split, which chose nothing when gamma is
fixed.

Choosing gamma: with a one-element ``gamma_grid`` (the default, 1 x median B)
gamma is fixed: with the few expensive frames of an active-learning cycle, a
search scores candidates on a handful of validation frames, i.e. on noise.
With several factors, each candidate runs the full stage 2 and stage 3 on a
*selection* split carved out of the expensive training frames and is scored by
its expensive force MAE there (``gamma_selection="finetune"``; ``"pretrain"``
scores the stage-2 model directly, cheaper); the expensive validation split is
not used, so the reported error stays honest. The weighted cheap loss cannot
compare gammas (a smaller gamma down-weights the hard frames and lowers it by
construction). ``gamma_epochs``/``gamma_finetune_epochs`` shorten the
candidates' runs (default: full length).

Replay (``replay``: frames labelled by the original model, used when the
stage settings' ``replay_fraction`` is > 0, see :mod:`replay`): every supervised
run uses it: ``standard``, stages 1, 2 and 3, and the gamma candidates' runs;
score matching does not (it has no labels).

Warm start (:class:`~alloop.training.stages.WarmStart`): a campaign's cycle k+1 starts stage 1 from
cycle k's theta_0, stage 2 from cycle k's stage-2 model (``standard`` from cycle
k's model), with the (shorter) budgets of the settings it passes; stage 3
always starts from the new stage-2 weights.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import torch

from alloop.errors import AlloopError
from alloop.evaluation.metrics import evaluate_model
from alloop.potentials.base import Potential
from alloop.training.bias_weights import bias_weights, dataset_bias
from alloop.training.data import FrameDataset
from alloop.training.gamma_search import select_gamma
from alloop.training.methods import ASTEROID, SCORE_MATCHING, STANDARD, check_labels
from alloop.training.restarts import RESTART_SEED_STEP, train_fresh
from alloop.training.score_matching import ScoreMatchingResult, train_score_matching
from alloop.training.stages import AsteroidResult, AsteroidSettings, MapFn, ModelFactory, StartModel, WarmStart
from alloop.training.trainer import Logger, TrainResult, TrainSettings, fit_output_scale, parameter_fingerprint, train


def _takes_restart(factory: ModelFactory) -> bool:
    try:
        return "restart" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a callable without a signature
        return False


def _fresh(factory: ModelFactory, seed: int, data: FrameDataset, restart: int = 0) -> Potential:
    """A new model from ``factory`` (seeded; ``restart`` > 0: another initialisation, if the factory can make
    one), its output scale set from the data it will first train on."""
    torch.manual_seed(seed)
    model = factory(restart=restart) if restart and _takes_restart(factory) else factory()
    fit_output_scale(model, data)
    return model


def _start_from(model: Potential) -> Potential:
    """An independent copy of ``model`` to continue training from (the 'load' of stage 3)."""
    return copy.deepcopy(model)


def finetune(
    start: Potential, train_set: FrameDataset, val_set: FrameDataset, settings: TrainSettings,
    log: Logger | None = None, tag: str = "stage3", replay: FrameDataset | None = None,
) -> tuple[Potential, TrainResult]:
    """Stage 3: train a copy of ``start`` on expensive labels; checks it really started from ``start``."""
    expected = parameter_fingerprint(start)
    model = _start_from(start)
    result = train(model, train_set, val_set, settings, log=log, tag=tag, replay=replay)
    if result.initial_fingerprint != expected:
        raise RuntimeError("fine-tuning did not start from the given weights (stage-2 weights were not loaded)")
    return model, result


def _check_inputs(method: str, expensive: FrameDataset, cheap: FrameDataset | None, unlabelled: FrameDataset | None) -> None:
    """The method's label sets are given (:func:`~alloop.training.methods.check_labels`) and fit together."""
    given = {"expensive": expensive, "cheap": cheap, "unlabelled": unlabelled}
    spec = check_labels(method, [kind for kind, data in given.items() if data is not None and len(data)])
    if spec.trainer != "asteroid":
        raise AlloopError(f"method '{method}' is not a stage plan of train_asteroid: train it with "
                          "alloop.training.fit.fit")
    if not expensive.labelled:
        raise AlloopError("the expensive set needs energies and forces")
    if cheap is not None and "cheap" in spec.labels:
        if not cheap.labelled:
            raise AlloopError("the cheap set needs energies and forces")
        extra = set(cheap.elements) - set(expensive.elements)
        if extra:
            raise AlloopError(f"cheap frames contain elements {sorted(extra)} absent from the expensive set")




def _start_model(factory: ModelFactory, initial: Potential | None, seed: int, data: FrameDataset,
                 previous: Potential | None = None) -> Potential:
    """A copy of ``previous`` or else of ``initial``, else a fresh model (seeded, output scale from ``data``). Module
    level, so that a partial of it travels to the workers that score gamma candidates."""
    for start in (previous, initial):
        if start is not None:
            return _start_from(start)
    return _fresh(factory, seed, data)


@dataclass
class _Pretraining:
    """What precedes stage 3: the pretrained model (stage 2 or score matching), its stages, references and splits,
    and for ASTEROID theta_0 with the bias, the weights and gamma."""

    model: Potential
    stages: dict[str, TrainResult | ScoreMatchingResult]
    splits: dict[str, np.ndarray]
    references: dict[str, dict[int, float]] = field(default_factory=dict)
    bias_model: Potential | None = None
    bias: np.ndarray | None = None
    weights: np.ndarray | None = None
    gamma: float | None = None
    gamma_scores: dict[float, float] = field(default_factory=dict)


class _Stages:
    """One call of :func:`train_asteroid`: its settings, the expensive split and the models each stage starts from."""

    def __init__(self, settings: AsteroidSettings, expensive: FrameDataset, factory: ModelFactory,
                 initial: Potential | None, warm: WarmStart, log: Logger | None, map_fn: MapFn,
                 replay: FrameDataset | None) -> None:
        self.s, self.expensive, self.factory, self.initial, self.warm = settings, expensive, factory, initial, warm
        self.log, self.map_fn, self.replay = log, map_fn, replay
        self.exp_train, self.exp_val, exp_tr_idx, exp_va_idx = settings.split_expensive(expensive)
        self.splits = {"expensive_train": exp_tr_idx, "expensive_val": exp_va_idx}
        #: the start of stage 2 and of score matching (and of every gamma candidate's stage 2)
        self.stage2_start: StartModel = partial(_start_model, factory, initial, previous=warm.stage2)

    def run_stage(self, starts: tuple[Potential | None, ...], seed: int, train_set: FrameDataset,
                  val_set: FrameDataset, stage: TrainSettings, tag: str,
                  scale_data: FrameDataset | None = None) -> tuple[Potential, TrainResult]:
        """Train a copy of the first of ``starts`` that is given, else a fresh model (output scale from
        ``scale_data``, default ``train_set``; restarted if it stalls)."""
        stage = replace(stage, seed=seed)
        for start in starts:
            if start is not None:
                model = _start_from(start)
                return model, train(model, train_set, val_set, stage, log=self.log, tag=tag, replay=self.replay)
        scale = train_set if scale_data is None else scale_data
        return train_fresh(lambda attempt: _fresh(self.factory, seed + RESTART_SEED_STEP * attempt, scale, attempt),
                           train_set, val_set, stage, log=self.log, tag=tag, replay=self.replay)

    def standard(self) -> AsteroidResult:
        """A fresh model, or a copy of the warm or initial one, trained on the expensive labels (stage 1)."""
        s, starts = self.s, (self.warm.model, self.initial)
        model, stage1 = self.run_stage(starts, s.seed + 1, self.exp_train, self.exp_val, s.stage1, STANDARD)
        return AsteroidResult(STANDARD, model, evaluate_model(model, self.exp_val), {"stage1": stage1},
                              bias_model=model, references={self.expensive.fidelity: stage1.references},
                              splits=self.splits)

    def score_matching(self, unlabelled: FrameDataset) -> _Pretraining:
        """Sliced score matching on the unlabelled frames, in place of stages 1-2."""
        s = self.s
        un_train, un_val, un_tr_idx, un_va_idx = s.split(unlabelled)
        model = self.stage2_start(s.seed + 2, self.exp_train)
        score = train_score_matching(model, un_train, un_val, replace(s.score, seed=s.seed + 2), log=self.log)
        return _Pretraining(model, {"score": score}, {"unlabelled_train": un_tr_idx, "unlabelled_val": un_va_idx})

    def pretrain_on_cheap(self, method: str, cheap: FrameDataset) -> _Pretraining:
        """Stage 2 on the cheap labels: weighted by the bias against theta_0 (stage 1) with ``asteroid``, by 1 with
        ``asteroid-no-weights``."""
        s = self.s
        cheap_train, cheap_val, ch_tr_idx, ch_va_idx = s.split(cheap)
        stages: dict[str, TrainResult | ScoreMatchingResult] = {}
        bias_model = bias = gamma = None
        gamma_scores: dict[float, float] = {}
        if method == ASTEROID:
            bias_model, stages["stage1"] = self.run_stage((self.warm.stage1,), s.seed + 1, self.exp_train,
                                                          self.exp_val, s.stage1, "stage1")
            bias = dataset_bias(bias_model, cheap)
            gamma, gamma_scores = select_gamma(bias, ch_tr_idx, ch_va_idx, cheap, self.exp_train, self.stage2_start,
                                               s, self.log, map_fn=self.map_fn, replay=self.replay)
            weights = bias_weights(bias, gamma)
        else:
            weights = np.ones(len(cheap))
        model, stage2 = self.run_stage(
            (self.warm.stage2, self.initial), s.seed + 2, cheap_train.with_weights(weights[ch_tr_idx]),
            cheap_val.with_weights(weights[ch_va_idx]), s.stage2, "stage2", scale_data=cheap_train,
        )
        stages["stage2"] = stage2
        return _Pretraining(model, stages, {"cheap_train": ch_tr_idx, "cheap_val": ch_va_idx},
                            {cheap.fidelity: stage2.references}, bias_model, bias, weights, gamma, gamma_scores)

    def finetuned(self, method: str, pre: _Pretraining) -> AsteroidResult:
        """Stage 3 from the pretrained weights on the expensive labels, and the result of the whole method."""
        s = self.s
        fingerprints = {"stage2": parameter_fingerprint(pre.model)}
        model, stage3 = finetune(pre.model, self.exp_train, self.exp_val, replace(s.stage3, seed=s.seed + 3),
                                 log=self.log, replay=self.replay)
        fingerprints["stage3_start"] = stage3.initial_fingerprint
        return AsteroidResult(
            method, model, evaluate_model(model, self.exp_val), {**pre.stages, "stage3": stage3},
            bias_model=pre.bias_model, pretrained=pre.model, bias=pre.bias, weights=pre.weights, gamma=pre.gamma,
            gamma_scores=pre.gamma_scores, references={**pre.references, self.expensive.fidelity: stage3.references},
            splits={**self.splits, **pre.splits}, fingerprints=fingerprints,
        )


def train_asteroid(
    method: str,
    expensive: FrameDataset,
    cheap: FrameDataset | None = None,
    unlabelled: FrameDataset | None = None,
    model_factory: ModelFactory | None = None,
    *,
    settings: AsteroidSettings,
    initial_model: Potential | None = None,
    log: Logger | None = None,
    map_fn: MapFn = map,
    warm: WarmStart | None = None,
    replay: FrameDataset | None = None,
) -> AsteroidResult:
    """Run a method whose trainer is ``asteroid`` (:mod:`alloop.training.methods`); see the module docstring.

    ``map_fn(function, items)`` runs the independent gamma candidates (default: one
    after another; a campaign passes a map over its Dask workers). Results do not
    depend on it.

    ``initial_model`` (e.g. a universal potential; never modified) is the start of
    stage 2, of score matching, or of ``standard`` training; stage 1 starts fresh.
    ``warm`` (never modified) overrides both per stage. ``replay``: the pool of every supervised run.
    """
    _check_inputs(method, expensive, cheap, unlabelled)
    if model_factory is None:
        raise AlloopError("a model_factory is needed")
    stages = _Stages(settings, expensive, model_factory, initial_model, warm or WarmStart(), log, map_fn, replay)
    if method == STANDARD:
        return stages.standard()
    if method == SCORE_MATCHING:
        assert unlabelled is not None  # _check_inputs
        return stages.finetuned(method, stages.score_matching(unlabelled))
    assert cheap is not None  # _check_inputs: the asteroid methods have cheap frames
    return stages.finetuned(method, stages.pretrain_on_cheap(method, cheap))
