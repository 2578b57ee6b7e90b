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
from alloop.potentials.base import Potential
from alloop.training.bias_weights import bias_weights, dataset_bias, gamma_candidates
from alloop.training.data import FrameDataset
from alloop.training.metrics import evaluate_model
from alloop.training.score_matching import ScoreMatchingResult, ScoreMatchingSettings, train_score_matching
from alloop.training.settings import RECIPE
from alloop.training.trainer import (
    RESTART_SEED_STEP,
    Logger,
    TrainResult,
    TrainSettings,
    fit_output_scale,
    parameter_fingerprint,
    train,
    train_fresh,
)

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
    seed: int = 0
    split_seed: int | None = None  # a campaign's seed: the same split in every cycle
    refit: bool = False  # train on every frame, no holdout (the guards watch the training frames): see split()

    @property
    def split_key(self) -> int:
        """The seed of every validation split (``split_seed``, else ``seed``)."""
        return self.seed if self.split_seed is None else self.split_seed

    def split(self, data: FrameDataset) -> tuple[FrameDataset, FrameDataset, np.ndarray, np.ndarray]:
        """(train, val, train indices, val indices) of ``data``: the seeded split by frame content, or with
        ``refit`` every frame on both sides (no holdout: the rollback and early-stop guards then watch the
        training error, and the "validation" metrics of the run are training errors)."""
        if self.refit:
            every = np.arange(len(data))
            return data, data, every, every
        return data.split(self.val_fraction, self.split_key)

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
    s = settings
    warm = warm or WarmStart()
    exp_train, exp_val, exp_tr_idx, exp_va_idx = s.split(expensive)
    splits = {"expensive_train": exp_tr_idx, "expensive_val": exp_va_idx}
    stages: dict[str, TrainResult | ScoreMatchingResult] = {}
    references: dict[str, dict[int, float]] = {}
    fingerprints: dict[str, str] = {}

    def start_model(seed: int, data: FrameDataset, previous: Potential | None = None) -> Potential:
        for start in (previous, initial_model):
            if start is not None:
                return _start_from(start)
        return _fresh(model_factory, seed, data)

    def run_stage(starts: tuple[Potential | None, ...], seed: int, train_set: FrameDataset, val_set: FrameDataset,
                  stage: TrainSettings, tag: str, scale_data: FrameDataset | None = None) -> tuple[Potential, TrainResult]:
        """Train a copy of the first of ``starts`` that is given, else a fresh model (output scale from
        ``scale_data``, default ``train_set``; restarted if it stalls)."""
        stage = replace(stage, seed=seed)
        for start in starts:
            if start is not None:
                model = _start_from(start)
                return model, train(model, train_set, val_set, stage, log=log, tag=tag, replay=replay)
        scale = train_set if scale_data is None else scale_data
        return train_fresh(lambda attempt: _fresh(model_factory, seed + RESTART_SEED_STEP * attempt, scale, attempt),
                           train_set, val_set, stage, log=log, tag=tag, replay=replay)

    if method == "standard":
        model, stage1 = run_stage((warm.model, initial_model), s.seed + 1, exp_train, exp_val, s.stage1, "standard")
        stages["stage1"] = stage1
        references[expensive.fidelity] = stage1.references
        return AsteroidResult(method, model, evaluate_model(model, exp_val), stages, bias_model=model,
                              references=references, splits=splits)

    bias = weights = gamma = bias_model = None
    gamma_scores: dict[float, float] = {}
    if method == "score-matching":
        assert unlabelled is not None  # _check_inputs
        un_train, un_val, un_tr_idx, un_va_idx = s.split(unlabelled)
        splits.update(unlabelled_train=un_tr_idx, unlabelled_val=un_va_idx)
        pretrained = start_model(s.seed + 2, exp_train, warm.stage2)
        stages["score"] = train_score_matching(pretrained, un_train, un_val, replace(s.score, seed=s.seed + 2), log=log)
    else:
        assert cheap is not None  # _check_inputs: the asteroid methods have cheap frames
        cheap_train, cheap_val, ch_tr_idx, ch_va_idx = s.split(cheap)
        splits.update(cheap_train=ch_tr_idx, cheap_val=ch_va_idx)
        if method == "asteroid":
            bias_model, stages["stage1"] = run_stage((warm.stage1,), s.seed + 1, exp_train, exp_val, s.stage1, "stage1")
            bias = dataset_bias(bias_model, cheap)
            stage2_start = partial(start_model, previous=warm.stage2)
            gamma, gamma_scores = select_gamma(bias, ch_tr_idx, ch_va_idx, cheap, exp_train, stage2_start, s, log,
                                               map_fn=map_fn, replay=replay)
            weights = bias_weights(bias, gamma)
        else:
            weights = np.ones(len(cheap))
        pretrained, stage2 = run_stage(
            (warm.stage2, initial_model), s.seed + 2, cheap_train.with_weights(weights[ch_tr_idx]),
            cheap_val.with_weights(weights[ch_va_idx]), s.stage2, "stage2", scale_data=cheap_train,
        )
        stages["stage2"] = stage2
        references[cheap.fidelity] = stage2.references
    fingerprints["stage2"] = parameter_fingerprint(pretrained)
    model, stage3 = finetune(pretrained, exp_train, exp_val, replace(s.stage3, seed=s.seed + 3), log=log,
                             replay=replay)
    stages["stage3"] = stage3
    fingerprints["stage3_start"] = stage3.initial_fingerprint
    references[expensive.fidelity] = stage3.references
    return AsteroidResult(
        method, model, evaluate_model(model, exp_val), stages, bias_model=bias_model, pretrained=pretrained,
        bias=bias, weights=weights, gamma=gamma, gamma_scores=gamma_scores, references=references, splits=splits,
        fingerprints=fingerprints,
    )


def select_gamma(
    bias: np.ndarray,
    cheap_train_idx: np.ndarray,
    cheap_val_idx: np.ndarray,
    cheap: FrameDataset,
    exp_train: FrameDataset,
    start_model: StartModel,
    settings: AsteroidSettings,
    log: Logger | None = None,
    map_fn: MapFn = map,
    replay: FrameDataset | None = None,
) -> tuple[float, dict[float, float]]:
    """Gamma from ``gamma_grid x median(B)``: fixed for one factor, else scored on a selection split (module docstring)."""
    s = settings
    candidates = gamma_candidates(bias, s.gamma_grid)
    if len(candidates) == 1:
        if log:
            log(f"gamma fixed at {candidates[0]:.4g} eV/A ({s.gamma_grid[0]:g} x median B)")
        return candidates[0], {}
    if len(exp_train) < 4:
        raise AlloopError(f"a gamma search needs at least 4 expensive training frames, got {len(exp_train)}; "
                          "use a one-element gamma grid")
    sel_train, sel_val, _, _ = exp_train.split(s.val_fraction, s.split_key + 7)
    score = partial(
        score_gamma, bias=bias, cheap_train=cheap.subset(cheap_train_idx), cheap_val=cheap.subset(cheap_val_idx),
        cheap_train_idx=cheap_train_idx, cheap_val_idx=cheap_val_idx, exp_train=sel_train, exp_val=sel_val,
        start_model=start_model, settings=s, replay=replay,
    )
    scores = dict(zip(candidates, (float(x) for x in map_fn(score, candidates)), strict=True))
    if log:
        for k, gamma in enumerate(candidates):
            log(f"gamma {gamma:.4g} eV/A ({s.gamma_grid[k]:g} x median B): selection-split F-MAE {scores[gamma]:.4f} eV/A "
                f"({len(sel_val)} frames)")
    best = min(scores, key=scores.__getitem__)
    if log:
        log(f"chosen gamma {best:.4g} eV/A")
    return best, scores


def score_gamma(
    gamma: float,
    *,
    bias: np.ndarray,
    cheap_train: FrameDataset,
    cheap_val: FrameDataset,
    cheap_train_idx: np.ndarray,
    cheap_val_idx: np.ndarray,
    exp_train: FrameDataset,
    exp_val: FrameDataset,
    start_model: StartModel,
    settings: AsteroidSettings,
    replay: FrameDataset | None = None,
) -> float:
    """One gamma candidate: bias-weighted stage 2 (+ fine-tune), force MAE on the selection split ``exp_val``."""
    s = settings
    w = bias_weights(bias, gamma)
    model = start_model(s.seed + 2, cheap_train)
    stage2 = replace(s.stage2, seed=s.seed + 2)
    if s.gamma_epochs is not None:
        stage2 = replace(stage2, max_epochs=s.gamma_epochs, max_steps=None)
    train(model, cheap_train.with_weights(w[cheap_train_idx]), cheap_val.with_weights(w[cheap_val_idx]), stage2,
          replay=replay)
    if s.gamma_selection == "finetune":
        stage3 = replace(s.stage3, seed=s.seed + 3)
        if s.gamma_finetune_epochs is not None:
            stage3 = replace(stage3, max_epochs=s.gamma_finetune_epochs, max_steps=None)
        train(model, exp_train, exp_val, stage3, replay=replay)
    return evaluate_model(model, exp_val)["force_mae_eV_per_A"]
