"""What a training task receives and returns, as plain data (arrays, bytes, settings): the request the train phase
builds (:mod:`alloop.campaign.phases.train`) and the result the task (:mod:`alloop.campaign.execution.train_task`)
returns, with the Dask topic its log lines are published on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alloop.training.data import FrameDataset
from alloop.training.stages import AsteroidSettings
from alloop.uncertainty.qresidual import QResidualSettings

#: Dask event topic on which training tasks publish their per-epoch progress lines
TRAIN_TOPIC = "alloop-training"


@dataclass
class LabelledArrays:
    """Frames of one fidelity as plain arrays (what a training task receives)."""

    frame_ids: np.ndarray
    numbers: list[np.ndarray]
    positions: list[np.ndarray]
    energy: np.ndarray | None = None
    forces: list[np.ndarray] | None = None
    fidelity: str = ""
    cells: list[np.ndarray] | None = None  # [3, 3] per frame, periodic campaigns only
    pbc: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.numbers)

    def dataset(self) -> FrameDataset:
        return FrameDataset.from_arrays(
            self.numbers, self.positions, energy=self.energy, forces=self.forces, fidelity=self.fidelity,
            cells=self.cells, pbc=self.pbc,
        )


@dataclass
class TrainRequest:
    """Everything a training task needs, as plain data."""

    method: str
    architecture: str
    elements: list[int]
    hyperparameters: dict[str, Any]
    expensive: LabelledArrays
    cheap: LabelledArrays | None
    unlabelled: LabelledArrays | None
    settings: AsteroidSettings
    uq_settings: QResidualSettings
    initial_model: bytes | None = None
    warm: dict[str, bytes] = field(default_factory=dict)  # previous cycle's checkpoints by role: theta0, stage2, model
    replay: LabelledArrays | None = None  # outside frames labelled by the original model (replay_fraction > 0)
    threads: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)
    evaluation: bytes | None = None  # the campaign's evaluation set (EvaluationFrames bytes): the model is scored on it
    incumbent: bytes | None = None  # the model a final retrain would replace: kept if it is better on validation
    incumbent_version: int | None = None
    baseline: dict[str, Any] | None = None  # Delta learning: the baseline's fidelity (models are trained on label - it)
    committee: int = 1  # models in the committee of selection.expensive_pick: committee (1: none besides the model)
    committee_warm: list[bytes] = field(default_factory=list)  # the previous cycle's other committee members
    refit: bool = False  # training.final_refit: once the retrain passed its guard, train it again on every label
    calibration_folds: int = 1  # with refit: folds of held-out frames calibrating the refit's error model
    calibration_temperature_K: float | None = None  # the MD temperature of the labelled frames (None: a ladder)
    error_exponent: float | None = None  # training.error_exponent: the error model's power fixed (None: fitted)


@dataclass
class TrainTaskResult:
    model_blob: bytes
    bias_model_blob: bytes | None
    pretrained_blob: bytes | None  # the stage-2 (cheap, bias-aware) model, for the next cycle's warm start
    uq_blob: bytes
    metrics: dict[str, Any]
    bias: np.ndarray | None  # per cheap frame (request.cheap order)
    weights: np.ndarray | None
    gamma: float | None
    seconds: float
    log: list[str]
    evaluation: dict[str, float] | None = None  # the model's eval_* scores (request.evaluation)
    coverage: dict[str, float] | None = None  # the evaluation set's Q-residual coverage (scoring.coverage_scores)
    predicted: dict[str, float] | None = None  # the model's predicted error there (scoring.predicted_error_scores)
    molecules: dict[str, dict[str, float]] | None = None  # its eval_* scores per molecule (a set of several)
    split_frames: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # kind -> train/val -> frame ids
    rejected_blob: bytes | None = None  # a final retrain worse than the model it would have replaced
    committee_blobs: list[bytes] = field(default_factory=list)  # the other committee members, in member order
    validated_blob: bytes | None = None  # with a refit: the model that passed the guard (the refit is model_blob)
