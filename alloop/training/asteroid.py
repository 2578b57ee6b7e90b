"""ASTEROID: bias-aware pretraining on cheap labels, fine-tuning on expensive labels.

Methods (:data:`METHODS`), all behind :func:`train_asteroid`:

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

Warm start (:class:`WarmStart`): a campaign's cycle k+1 starts stage 1 from
cycle k's theta_0, stage 2 from cycle k's stage-2 model (``standard`` from cycle
k's model), with the (shorter) budgets of the settings it passes; stage 3
always starts from the new stage-2 weights.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch

from alloop.errors import AlloopError
from alloop.evaluation.metrics import evaluate_model
from alloop.potentials.base import Potential
from alloop.training.bias_weights import bias_weights, dataset_bias
from alloop.training.data import FrameDataset
from alloop.training.gamma_search import select_gamma
from alloop.training.restarts import RESTART_SEED_STEP, train_fresh
from alloop.training.score_matching import ScoreMatchingResult, ScoreMatchingSettings, train_score_matching
from alloop.training.settings import RECIPE
from alloop.training.trainer import Logger, TrainResult, TrainSettings, fit_output_scale, parameter_fingerprint, train

METHODS = ("standard", "asteroid", "asteroid-no-weights", "score-matching")
#: a fresh model; a factory that also takes ``restart=k`` (k >= 1) gives another initialisation for the k-th
#: restart of a stalled run (:func:`model_factory`); one that does not is restarted with its one initialisation
ModelFactory = Callable[..., Potential]
MapFn = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]


@dataclass(frozen=True)
class AsteroidSettings:
    """Per-stage settings; stage seeds are derived from ``seed`` (stage k uses seed + k), the validation splits
    from ``split_seed`` (None: ``seed``). The stages have no default (their budgets depend on the recipe:
    :func:`alloop.training.recipe.asteroid_settings` maps a ``training`` section to them); the defaults of the other
    values the section holds are the section's (:data:`~alloop.training.settings.RECIPE`)."""

    stage1: TrainSettings
    stage2: TrainSettings
    stage3: TrainSettings
    score: ScoreMatchingSettings = ScoreMatchingSettings()
    gamma_grid: tuple[float, ...] = RECIPE.gamma_grid
    gamma_selection: str = "finetune"
    gamma_epochs: int | None = None
    gamma_finetune_epochs: int | None = None
    val_fraction: float = RECIPE.validation_fraction
    min_val_frames: int = RECIPE.min_validation_frames  # of the expensive labels (an error calibration needs a few)
    seed: int = 0
    split_seed: int | None = None  # a campaign's seed: the same split in every cycle
    refit: bool = False  # train on every frame, no holdout (the guards watch the training frames): see split()

    @property
    def split_key(self) -> int:
        """The seed of every validation split (``split_seed``, else ``seed``)."""
        return self.seed if self.split_seed is None else self.split_seed

    def split(self, data: FrameDataset, min_val: int = 1) -> tuple[FrameDataset, FrameDataset, np.ndarray, np.ndarray]:
        """(train, val, train indices, val indices) of ``data``: the seeded split by frame content (at least
        ``min(min_val, n // 2)`` frames held out), or with ``refit`` every frame on both sides (no holdout: the
        rollback and early-stop guards then watch the training error, and the "validation" metrics of the run are
        training errors)."""
        if self.refit:
            every = np.arange(len(data))
            return data, data, every, every
        return data.split(self.val_fraction, self.split_key, min_val)

    def with_threads(self, threads: int) -> AsteroidSettings:
        """These settings with every stage (and score matching) on ``threads`` torch threads."""
        return replace(self, stage1=replace(self.stage1, threads=threads), stage2=replace(self.stage2, threads=threads),
                       stage3=replace(self.stage3, threads=threads), score=replace(self.score, threads=threads))

    def split_expensive(self, data: FrameDataset) -> tuple[FrameDataset, FrameDataset, np.ndarray, np.ndarray]:
        """:meth:`split` of the expensive labels: at least ``min_val_frames`` held out (up to half)."""
        return self.split(data, self.min_val_frames)

    def __post_init__(self) -> None:
        if self.gamma_selection not in ("finetune", "pretrain"):
            raise AlloopError(f"unknown gamma_selection '{self.gamma_selection}' (use finetune or pretrain)")
        if not self.gamma_grid or any(g <= 0 for g in self.gamma_grid):
            raise AlloopError("gamma_grid needs at least one positive factor")


@dataclass
class WarmStart:
    """Models of the previous cycle to continue from (None: that stage starts fresh or from ``initial_model``)."""

    stage1: Potential | None = None  # theta_0
    stage2: Potential | None = None  # the bias-aware cheap model
    model: Potential | None = None  # the final model (start of ``standard``)


@dataclass
class AsteroidResult:
    method: str
    model: Potential
    metrics: dict[str, Any]  # final model on the expensive validation split (eV, eV/A)
    stages: dict[str, TrainResult | ScoreMatchingResult]
    bias_model: Potential | None = None  # theta_0 (expensive only), for bias estimates of new frames
    pretrained: Potential | None = None  # the stage-2 (or score-matching) model, for a warm start
    bias: np.ndarray | None = None  # B per cheap frame (eV/A), cheap dataset order
    weights: np.ndarray | None = None  # w per cheap frame
    gamma: float | None = None  # eV/A
    gamma_scores: dict[float, float] = field(default_factory=dict)
    references: dict[str, dict[int, float]] = field(default_factory=dict)  # fidelity -> {Z: eV}
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)


def model_factory(architecture: str, elements: Sequence[int], **hparams: Any) -> ModelFactory:
    """Fresh models of a registered architecture; ``factory(restart=k)`` shifts the ``seed`` hyperparameter (the
    model's own initialisation seed) by ``RESTART_SEED_STEP * k``."""
    from alloop.potentials.registry import build_model

    def factory(restart: int = 0) -> Potential:
        params = dict(hparams)
        if restart:
            params["seed"] = int(params.get("seed", 0)) + RESTART_SEED_STEP * restart
        return build_model(architecture, elements, **params)

    return factory


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
    if method not in METHODS:
        raise AlloopError(f"unknown method '{method}' (use one of {', '.join(METHODS)})")
    if not expensive.labelled:
        raise AlloopError("the expensive set needs energies and forces")
    if method in ("asteroid", "asteroid-no-weights"):
        if cheap is None:
            raise AlloopError(f"method '{method}' needs a cheap (inaccurate) labelled set")
        if not cheap.labelled:
            raise AlloopError("the cheap set needs energies and forces")
        extra = set(cheap.elements) - set(expensive.elements)
        if extra:
            raise AlloopError(f"cheap frames contain elements {sorted(extra)} absent from the expensive set")
    if method == "score-matching" and unlabelled is None:
        raise AlloopError("method 'score-matching' needs a set of unlabelled frames")


StartModel = Callable[[int, FrameDataset], Potential]


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
        model, stage1 = self.run_stage(starts, s.seed + 1, self.exp_train, self.exp_val, s.stage1, "standard")
        return AsteroidResult("standard", model, evaluate_model(model, self.exp_val), {"stage1": stage1},
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
        if method == "asteroid":
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
    """Run one of :data:`METHODS`; see the module docstring.

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
    if method == "standard":
        return stages.standard()
    if method == "score-matching":
        assert unlabelled is not None  # _check_inputs
        return stages.finetuned(method, stages.score_matching(unlabelled))
    assert cheap is not None  # _check_inputs: the asteroid methods have cheap frames
    return stages.finetuned(method, stages.pretrain_on_cheap(method, cheap))
