"""What a training's stage plans share: their settings (:class:`AsteroidSettings`), the previous cycle's models to
continue from (:class:`WarmStart`), their result (:class:`AsteroidResult`) and the model factory they start fresh
models from (:func:`model_factory`).

The stage plans themselves are :func:`alloop.training.asteroid.train_asteroid` and
:func:`alloop.training.two_head.train_two_head`; ASTEROID's gamma search (:mod:`alloop.training.gamma_search`)
takes these types too, so they live below all three (no import circle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.training.data import FrameDataset
from alloop.training.restarts import RESTART_SEED_STEP
from alloop.training.score_matching import ScoreMatchingResult, ScoreMatchingSettings
from alloop.training.settings import RECIPE
from alloop.training.trainer import TrainResult, TrainSettings

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
    val_fold: int = 0  # the expensive split holds out fold k (cross-validated calibration): FrameDataset.split

    @property
    def split_key(self) -> int:
        """The seed of every validation split (``split_seed``, else ``seed``)."""
        return self.seed if self.split_seed is None else self.split_seed

    def split(self, data: FrameDataset, min_val: int = 1,
              fold: int = 0) -> tuple[FrameDataset, FrameDataset, np.ndarray, np.ndarray]:
        """(train, val, train indices, val indices) of ``data``: the seeded split by frame content (at least
        ``min(min_val, n // 2)`` frames held out), or with ``refit`` every frame on both sides (no holdout: the
        rollback and early-stop guards then watch the training error, and the "validation" metrics of the run are
        training errors)."""
        if self.refit:
            every = np.arange(len(data))
            return data, data, every, every
        return data.split(self.val_fraction, self.split_key, min_val, fold)

    def with_threads(self, threads: int) -> AsteroidSettings:
        """These settings with every stage (and score matching) on ``threads`` torch threads."""
        return replace(self, stage1=replace(self.stage1, threads=threads), stage2=replace(self.stage2, threads=threads),
                       stage3=replace(self.stage3, threads=threads), score=replace(self.score, threads=threads))

    def split_expensive(self, data: FrameDataset) -> tuple[FrameDataset, FrameDataset, np.ndarray, np.ndarray]:
        """:meth:`split` of the expensive labels: at least ``min_val_frames`` held out (up to half); fold
        ``val_fold`` of them."""
        return self.split(data, self.min_val_frames, self.val_fold)

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


#: a copy of a given model or a fresh one, from (seed, the data that sets its output scale)
StartModel = Callable[[int, FrameDataset], Potential]
