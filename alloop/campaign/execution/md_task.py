"""The MD task: a group of replicas advanced for one segment on a worker, its recorded frames scored.

A pure, top-level function of plain data (bytes, arrays, dataclasses) so it pickles cleanly and is a deterministic
function of its inputs (Dask may run a task twice). It never touches the store: it returns its result to the driver
(the explore phase, :mod:`alloop.campaign.phases.explore`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from ase import Atoms

from alloop.campaign.execution.worker import pin_threads
from alloop.errors import AlloopError
from alloop.md.events import ReactionEvent
from alloop.md.guards import StabilityGuards
from alloop.md.segment import MDSettings, run_segment
from alloop.md.state import ReplicaState
from alloop.md.uncertainty_bias import BiasSettings, QResidualBias
from alloop.potentials.base import Potential
from alloop.potentials.checkpoint import model_from_bytes
from alloop.potentials.inference import predict_features
from alloop.uncertainty.error_model import ErrorModel
from alloop.uncertainty.qresidual import QResidualModel
from alloop.uncertainty.selection import frame_descriptors


@dataclass(frozen=True)
class GuardSettings:
    """Thresholds of the MD stability guards (:class:`alloop.md.guards.StabilityGuards`)."""

    max_bond_stretch: float
    min_distance_A: float
    min_temperature_K: float
    max_temperature_K: float
    reactions: Literal["events", "stop"] = "events"  # md.reactions

    def thresholds(self) -> dict[str, Any]:
        """The keyword arguments of ``StabilityGuards.from_atoms``."""
        return asdict(self)


@dataclass
class MDTaskResult:
    """What one MD task returns: recorded frames with scores, final and last stable states."""

    replicas: np.ndarray  # [M] replica index (global)
    steps: np.ndarray  # [M]
    positions: np.ndarray  # [M, n, 3]
    unstable: np.ndarray  # [M] bool
    q_score: np.ndarray  # [M], normalised by the limit (flagged when > 1)
    t2_score: np.ndarray  # [M]
    descriptors: np.ndarray  # [M, D] for farthest-point selection
    bias_energy: np.ndarray  # [M] eV, the uncertainty bias at each frame (0 without one)
    predicted_error: np.ndarray  # [M] eV/A, the model's predicted force error (NaN: no calibrated error model)
    upper_error: np.ndarray  # [M] eV/A, its upper bound at the error model's coverage (NaN as above)
    final_states: dict[int, bytes]
    last_stable_states: dict[int, bytes]
    stop_reasons: dict[int, str | None]
    model_seconds: float
    total_seconds: float
    labelled_descriptors: np.ndarray | None = None  # [K, D] of request.labelled (None when it had none)
    reservoir_descriptors: np.ndarray | None = None  # [R, D] of request.reservoir (None when it had none)
    events: list[tuple[int, ReactionEvent]] = field(default_factory=list)  # (global replica, reaction), in order
    replica_steps: int = 0  # MD steps advanced, summed over the replicas
    baseline_seconds: float = 0.0  # of model_seconds, a Delta model's GFN-xTB baseline
    scoring_seconds: float = 0.0  # Q-residual, descriptors and predicted errors of the recorded frames


@dataclass
class MDRequest:
    """Everything one MD task needs, as plain data: models, replicas, segment and guard settings."""

    model_blob: bytes
    uq_blob: bytes  # the Q-residual model that scores the recorded frames
    atoms: Atoms  # the replicas' topology (numbers, masses, cell): every replica of a task has it
    references: dict[int, Atoms]  # replica index -> the reference structure of its guards (bonds): its start
    states: dict[int, bytes]  # replica index -> ReplicaState bytes
    n_steps: int
    md: MDSettings
    record_every: int
    guards: GuardSettings
    threads: int = 1
    bias: BiasSettings = BiasSettings()  # uncertainty-driven MD (off by default)
    labelled: list[Atoms] = field(default_factory=list)  # frames labelled already: their descriptors come back too
    reservoir: list[Atoms] = field(default_factory=list)  # herding's campaign target: described under the model too
    elements: tuple[int, ...] = ()  # the campaign's elements, the columns of the descriptors (empty: the atoms')

    def descriptor_elements(self) -> list[int]:
        """The elements whose mean features make a frame's descriptor: the same in every task of a campaign, so
        frames of different molecules are compared column by column."""
        return list(self.elements) if self.elements else sorted(set(self.atoms.numbers.tolist()))

    def replica_guards(self, order: list[int]) -> list[StabilityGuards]:
        """Each replica's guards (in ``order``), built once per distinct reference structure."""
        built: dict[bytes, StabilityGuards] = {}
        out = []
        for r in order:
            ref = self.references[r]
            if not np.array_equal(ref.numbers, self.atoms.numbers):
                raise AlloopError(f"replica {r}'s reference structure ({ref.get_chemical_formula()}) is not of the "
                                  f"task's topology ({self.atoms.get_chemical_formula()}, atoms in the same order)")
            key = ref.numbers.tobytes() + ref.positions.tobytes()
            if key not in built:
                built[key] = StabilityGuards.from_atoms(ref, **self.guards.thresholds())
            out.append(built[key])
        return out


def md_task(request: MDRequest) -> MDTaskResult:
    """Run the replicas of ``request`` for ``n_steps`` and score the recorded frames."""
    pin_threads(request.threads)
    t0 = time.perf_counter()
    model, metadata = model_from_bytes(request.model_blob)
    model.eval()
    uq = QResidualModel.from_bytes(request.uq_blob)
    atoms, states = request.atoms, request.states
    order = sorted(states)
    replica_states = [ReplicaState.from_bytes(states[r]) for r in order]
    bias = QResidualBias(uq, request.bias) if request.bias.enabled else None
    result = run_segment(model, atoms, replica_states, request.n_steps, request.md, request.record_every,
                         request.replica_guards(order), bias=bias)
    t_scoring = time.perf_counter()
    stacked = result.stacked()
    m = stacked["step"].size
    scored = _score_frames(request, uq, ErrorModel.from_metadata(metadata), stacked)
    labelled = _describe(model, request.labelled, request.descriptor_elements())
    reservoir = _describe(model, request.reservoir, request.descriptor_elements())
    return MDTaskResult(
        replicas=np.asarray(order, dtype=np.int64)[stacked["replica"]] if m else np.zeros(0, dtype=np.int64),
        steps=stacked["step"],
        positions=stacked["positions"],
        unstable=stacked["unstable"].astype(bool),
        bias_energy=np.asarray(stacked["bias_energies"], dtype=np.float64),
        **scored,
        final_states={r: s.to_bytes() for r, s in zip(order, result.final_states, strict=True)},
        last_stable_states={r: s.to_bytes() for r, s in zip(order, result.last_stable_states, strict=True)},
        stop_reasons={r: (None if s is None else str(s)) for r, s in zip(order, result.stop_reasons, strict=True)},
        model_seconds=float(result.model_seconds),
        total_seconds=time.perf_counter() - t0,
        labelled_descriptors=labelled,
        reservoir_descriptors=reservoir,
        events=[(r, e) for r, found in zip(order, result.events, strict=True) for e in found],
        replica_steps=sum(int(f.step) - int(s.step) for f, s in zip(result.final_states, replica_states, strict=True)),
        baseline_seconds=float(result.baseline_seconds),
        scoring_seconds=time.perf_counter() - t_scoring,
    )


def _score_frames(request: MDRequest, uq: QResidualModel, error_model: ErrorModel | None,
                  stacked: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The recorded frames' Q-residual and T^2 scores, descriptors and predicted force errors (NaN without an
    error model), as :class:`MDTaskResult` fields."""
    n = len(request.atoms)
    m = stacked["step"].size
    predicted = upper = np.full(m, np.nan)
    if not m:
        return {"q_score": np.zeros(0), "t2_score": np.zeros(0), "descriptors": np.zeros((0, 1)),
                "predicted_error": predicted, "upper_error": upper}
    numbers = np.tile(request.atoms.numbers, m)
    ptr = np.arange(m + 1, dtype=np.int64) * n
    features = stacked["features"].reshape(m * n, -1)
    scores = uq.frame_scores(numbers, features, ptr)
    descriptors = frame_descriptors(numbers, features, ptr, request.descriptor_elements())
    if error_model is not None:
        errors = error_model.frame_errors(numbers, features, ptr)
        predicted, upper = errors.predicted, errors.upper
    return {"q_score": np.asarray(scores.q, dtype=np.float64), "t2_score": np.asarray(scores.t2, dtype=np.float64),
            "descriptors": np.asarray(descriptors, dtype=np.float64).reshape(m, -1),
            "predicted_error": np.asarray(predicted, dtype=np.float64),
            "upper_error": np.asarray(upper, dtype=np.float64)}


def _describe(model: Potential, frames: list[Atoms], elements: list[int]) -> np.ndarray | None:
    """The :func:`frame_descriptors` of ``frames`` under ``model`` (None for no frames)."""
    if not frames:
        return None
    numbers = np.concatenate([a.numbers for a in frames])
    ptr = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    return frame_descriptors(numbers, predict_features(model, frames), ptr, elements)
