"""MD segments: R replicas of one topology (same atoms, same order) advanced together, one batched model call per step.

``run_segment`` integrates every active replica for ``n_steps`` steps,
records a frame (positions, potential energy, forces, per-atom latent
features, kinetic energy) whenever a replica's absolute step is a multiple of
``record_every``, and checks the stability guards after every step. A bond
that broke while one of its atoms found a new partner is a reaction event
(guards with ``reactions: events``): recorded per replica, the replica goes on
with its new bonds, which its states carry. A replica
that fails a guard is stopped: its failing frame is recorded with
``unstable=True`` (whatever its step), the others continue. Each replica
keeps its last stable state (the state at its last recorded frame that passed
the guards, or its starting state); :func:`restart_replica` turns it into a
new starting state.

Positions and velocities are float64 in the integrator whatever the model's
dtype. The model sees only positions, and every replica has its own random
stream, so a segment resumed from saved states reproduces the uninterrupted
trajectory bit for bit, provided the model itself is deterministic for a
given batch (CPU kernels are). Batched replicas follow the same trajectories
as single ones exactly when the model's arithmetic does not depend on the
batch size (true of PairPotential); dense layers (EGNN) may pick a different
matmul kernel per batch size, which changes results at the 1e-16 level, so
there batched = single holds to rounding and resume must keep the replica set.

A structure periodic in all three directions runs in its cell: the model sees
the periodic images, positions are wrapped into the cell after every drift
(the stored frames and states are wrapped; nothing the model or the
minimum-image guards compute changes), and the cell is fixed (NVT or NVE).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from ase import Atoms

from alloop.errors import AlloopError
from alloop.md.events import BondSet, ReactionEvent
from alloop.md.guards import GuardFailure, ReplicaGuards, StabilityGuards
from alloop.md.integrators import Integrator, LangevinBAOAB, VelocityVerlet, kinetic_energy, kinetic_temperature
from alloop.md.state import ReplicaState, redraw_velocities
from alloop.md.uncertainty_bias import QResidualBias, biased_forces
from alloop.potentials.base import AtomsBatch, Potential, model_dtype
from alloop.potentials.baseline import baseline_seconds, baseline_slots_from, warm_baseline
from alloop.potentials.inference import batch_bounds
from alloop.system.structures import periodic_cell
from alloop.units import FS


@dataclass(frozen=True)
class MDSettings:
    """Integrator settings. ``friction_per_fs`` is the Langevin gamma (ignored by ``verlet``)."""

    temperature_K: float = 500.0
    timestep_fs: float = 0.5
    friction_per_fs: float = 0.01
    integrator: Literal["langevin", "verlet"] = "langevin"

    def __post_init__(self) -> None:
        if self.integrator not in ("langevin", "verlet"):
            raise AlloopError(f"unknown integrator '{self.integrator}': use 'langevin' or 'verlet'")
        if not self.timestep_fs > 0:
            raise AlloopError(f"timestep_fs must be positive, got {self.timestep_fs}")

    def make_integrator(self) -> Integrator:
        dt = self.timestep_fs * FS
        if self.integrator == "verlet":
            return VelocityVerlet(dt)
        return LangevinBAOAB(dt, self.temperature_K, self.friction_per_fs / FS)


@dataclass
class ReplicaTrajectory:
    """Frames recorded for one replica in one segment (n_rec frames of n atoms, F features)."""

    steps: np.ndarray  # [n_rec] int64, absolute step numbers
    positions: np.ndarray  # [n_rec, n, 3] Angstrom
    energies: np.ndarray  # [n_rec] eV, potential energy of the model
    forces: np.ndarray  # [n_rec, n, 3] eV/Angstrom
    features: np.ndarray  # [n_rec, n, F]
    kinetic_energies: np.ndarray  # [n_rec] eV
    unstable: np.ndarray  # [n_rec] bool, True for the frame that failed a guard
    bias_energies: np.ndarray  # [n_rec] eV, the uncertainty bias at the frame (0 without a bias)

    def __len__(self) -> int:
        return int(self.steps.size)

    def to_atoms(self, numbers: np.ndarray) -> list[Atoms]:
        return [Atoms(numbers=numbers, positions=p) for p in self.positions]


@dataclass
class SegmentResult:
    """Per-replica frames, states, stop reasons (None = ran to the end), reaction events and timing.

    ``final_states[r]`` is the state after replica r's last step (for a stopped
    replica, the failing state: do not continue from it); ``last_stable_states[r]``
    is where :func:`restart_replica` starts. ``model_seconds`` is the time inside
    the model calls, ``baseline_seconds`` the part of it a Delta model's GFN-xTB baseline took, ``total_seconds``
    the whole segment.
    """

    trajectories: list[ReplicaTrajectory]
    final_states: list[ReplicaState]
    last_stable_states: list[ReplicaState]
    stop_reasons: list[GuardFailure | None]
    events: list[list[ReactionEvent]] = field(default_factory=list)  # per replica, in step order
    n_model_calls: int = 0
    model_seconds: float = 0.0
    total_seconds: float = 0.0
    baseline_seconds: float = 0.0

    @property
    def stopped(self) -> list[int]:
        return [r for r, reason in enumerate(self.stop_reasons) if reason is not None]

    def stacked(self) -> dict[str, np.ndarray]:
        """All recorded frames of all replicas, replica by replica: ``replica``, ``step``, ``unstable``,
        ``energies``, ``kinetic_energies`` [M] and ``positions``, ``forces`` [M, n, 3], ``features`` [M, n, F].

        For scoring, per-atom rows are ``features.reshape(-1, F)`` with frame offsets ``arange(M + 1) * n``.
        """
        trajs = self.trajectories
        out = {
            "replica": np.concatenate([np.full(len(t), r, dtype=np.int64) for r, t in enumerate(trajs)]),
            "step": np.concatenate([t.steps for t in trajs]),
            "unstable": np.concatenate([t.unstable for t in trajs]),
        }
        for key in ("energies", "kinetic_energies", "bias_energies", "positions", "forces", "features"):
            out[key] = np.concatenate([getattr(t, key) for t in trajs])
        return out


@dataclass(frozen=True)
class MDProgress:
    """Passed to the progress callback after every step."""

    step: int  # steps done in this segment
    n_steps: int
    n_active: int
    n_recorded: int


@dataclass
class _Recorder:
    frames: list[list[tuple]] = field(default_factory=list)

    def add(self, r: int, *frame) -> None:
        self.frames[r].append(frame)

    def trajectory(self, r: int, n: int, n_features: int) -> ReplicaTrajectory:
        rows = self.frames[r]
        if not rows:
            return ReplicaTrajectory(
                np.zeros(0, np.int64), np.zeros((0, n, 3)), np.zeros(0), np.zeros((0, n, 3)),
                np.zeros((0, n, n_features)), np.zeros(0), np.zeros(0, bool), np.zeros(0),
            )  # fmt: skip
        cols = list(zip(*rows, strict=True))
        return ReplicaTrajectory(
            np.array(cols[0], np.int64), np.stack(cols[1]), np.array(cols[2]), np.stack(cols[3]),
            np.stack(cols[4]), np.array(cols[5]), np.array(cols[6], bool), np.array(cols[7]),
        )  # fmt: skip



class _Evaluator:
    """One batched model call for any subset of the replicas; keeps time spent in the model.

    With an uncertainty ``bias`` the forces are those of E_model + E_bias; energies stay the model's and the
    bias energies are returned beside them (zeros without a bias)."""

    def __init__(self, model: Potential, numbers: np.ndarray, dtype: torch.dtype,
                 bias: QResidualBias | None = None, cell: np.ndarray | None = None) -> None:
        self.model, self.numbers, self.dtype, self.bias, self.cell = model, numbers, dtype, bias, cell
        self.calls, self.seconds = 0, 0.0

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Energies, forces, features and bias energies of the replicas ``x`` [R, n, 3], in groups of at most
        :data:`~alloop.potentials.inference.MAX_BATCH_PAIRS` estimated pairs (big periodic boxes: one or two)."""
        r, n = x.shape[:2]
        periodic = None if self.cell is None else np.ones(r, dtype=bool)
        groups = batch_bounds(np.arange(r + 1) * n, periodic, r)
        if len(groups) == 1:
            return self._group(x)
        parts = []
        for a, b in groups:
            with baseline_slots_from(self.model, a):  # a replica keeps its baseline wavefunction slot
                parts.append(self._group(x[a:b]))
        return tuple(np.concatenate([part[k] for part in parts]) for k in range(4))  # type: ignore[return-value]

    def _group(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        r, n = x.shape[:2]
        t0 = time.perf_counter()
        cell = pbc = None
        if self.cell is not None:
            cell, pbc = np.repeat(self.cell[None], r, axis=0), np.ones((r, 3), dtype=bool)
        batch = AtomsBatch.from_arrays(
            np.tile(self.numbers, r), torch.from_numpy(x.reshape(r * n, 3)), np.full(r, n), dtype=self.dtype,
            cell=cell, pbc=pbc,
        )
        out = self.model(batch, compute_forces=True) if self.bias is None else biased_forces(self.model, self.bias, batch)
        energy = out.energy.detach().to(torch.float64).numpy()
        forces = out.forces.detach().to(torch.float64).numpy().reshape(r, n, 3)
        features = out.features.detach().to(torch.float64).numpy().reshape(r, n, -1)
        e_bias = np.zeros(r) if self.bias is None else out.bias_energy.to(torch.float64).numpy()
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return energy, forces, features, e_bias


def wrap_positions(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Positions [..., 3] moved by lattice vectors into the cell (fractional coordinates in [0, 1))."""
    frac = positions @ np.linalg.inv(cell)
    return (frac - np.floor(frac)) @ cell


class _Replicas:
    """The replicas of one segment while they run: positions, velocities and forces [R, n, 3], absolute steps,
    running-average temperatures and random streams per replica, which are still active, why the others stopped,
    each one's last stable state, and the frames recorded so far. The starting states are never modified."""

    def __init__(self, states: Sequence[ReplicaState], masses: np.ndarray,
                 guards: StabilityGuards | Sequence[StabilityGuards] | None, record_every: int) -> None:
        self.states, self.masses, self.record_every = states, masses, record_every
        self.guards = None if guards is None else ReplicaGuards(guards, len(states))
        self.inv_mass = (1.0 / masses)[:, None]
        n_rep = len(states)
        self.x = np.stack([s.positions for s in states])
        self.v = np.stack([s.velocities for s in states])
        self.forces = np.zeros_like(self.x)
        self.steps = np.array([s.step for s in states], dtype=np.int64)
        self.t_avg = np.array([s.temperature_avg_K for s in states], dtype=np.float64)
        self.rngs = [s.generator() for s in states]
        self.bonds: list[BondSet | None] = [s.bonds for s in states]
        self.events: list[list[ReactionEvent]] = [[] for _ in range(n_rep)]
        self.last_stable = [s.copy() for s in states]
        self.reasons: list[GuardFailure | None] = [None] * n_rep
        self.active = np.ones(n_rep, dtype=bool)
        self.rec = _Recorder([[] for _ in range(n_rep)])

    @property
    def n_recorded(self) -> int:
        return sum(len(frames) for frames in self.rec.frames)

    def snapshot(self, r: int) -> ReplicaState:
        """Replica ``r``'s current state."""
        s = self.states[r]
        return ReplicaState(self.x[r].copy(), self.v[r].copy(), int(self.steps[r]), self.rngs[r].bit_generator.state,
                            float(self.t_avg[r]), s.restarts, dict(s.extra), self.bonds[r])

    def start(self, evaluate: _Evaluator) -> int:
        """Evaluate the starting states and check them (a failing one is recorded and stopped); returns the number
        of features per atom."""
        e, f, feat, eb = evaluate(self.x)
        self.forces = f.copy()
        self.check_and_record(np.arange(len(self.states)), e, f, feat, eb, None)
        return int(feat.shape[-1])

    def step(self, integrator: Integrator, evaluate: _Evaluator, cell: np.ndarray | None) -> bool:
        """Advance every active replica by one step (drift, model call, kick), then check and record them; False
        (nothing done) when no replica is active."""
        idx = np.flatnonzero(self.active)
        if idx.size == 0:
            return False
        xa, va = self.x[idx], self.v[idx]
        integrator.drift(xa, va, self.forces[idx], self.inv_mass, [self.rngs[r] for r in idx])
        if cell is not None:
            xa = wrap_positions(xa, cell)
        e, f, feat, eb = evaluate(xa)
        integrator.kick(va, f, self.inv_mass)
        self.x[idx], self.v[idx], self.forces[idx] = xa, va, f
        self.steps[idx] += 1
        if self.guards is not None:
            self.t_avg[idx] = self.guards.update_temperature(idx, self.t_avg[idx], kinetic_temperature(va, self.masses))
        else:
            self.t_avg[idx] = np.nan
        self.check_and_record(idx, e, f, feat, eb, self.t_avg[idx])
        return True

    def check_and_record(self, idx: np.ndarray, e: np.ndarray, f: np.ndarray, feat: np.ndarray, eb: np.ndarray,
                         t: np.ndarray | None) -> None:
        """Check replicas ``idx`` against the guards (``t``: their running-average temperatures; None at the start,
        when only failing frames are recorded); keep their reactions and new bonds; record the frames due and the
        failing ones, stop those."""
        failures: list[GuardFailure | None] = [None] * idx.size
        if self.guards is not None:
            reports = self.guards.inspect(idx, self.x[idx], f, t, [self.bonds[r] for r in idx], self.steps[idx])
            for k, (r, report) in enumerate(zip(idx, reports, strict=True)):
                failures[k], self.bonds[r] = report.failure, report.bonds
                self.events[r].extend(report.events)
        ke = kinetic_energy(self.v[idx], self.masses)
        for k, r in enumerate(idx):
            failed = failures[k] is not None
            due = self.steps[r] % self.record_every == 0 and t is not None
            if failed or due:
                self.rec.add(r, int(self.steps[r]), self.x[r].copy(), float(e[k]), f[k].copy(), feat[k].copy(),
                             float(ke[k]), failed, float(eb[k]))
            if failed:
                self.reasons[r], self.active[r] = failures[k], False
            elif due:
                self.last_stable[r] = self.snapshot(r)

    def result(self, evaluate: _Evaluator, n_features: int, t_start: float, baseline_s: float) -> SegmentResult:
        n_rep, n = self.x.shape[:2]
        return SegmentResult(
            trajectories=[self.rec.trajectory(r, n, n_features) for r in range(n_rep)],
            final_states=[self.snapshot(r) for r in range(n_rep)],
            last_stable_states=self.last_stable,
            stop_reasons=self.reasons,
            events=self.events,
            n_model_calls=evaluate.calls,
            model_seconds=evaluate.seconds,
            total_seconds=time.perf_counter() - t_start,
            baseline_seconds=baseline_s,
        )


def _check_segment_inputs(atoms: Atoms, states: Sequence[ReplicaState], n_steps: int, record_every: int) -> None:
    if n_steps < 0 or record_every < 1:
        raise AlloopError(f"need n_steps >= 0 and record_every >= 1, got {n_steps} and {record_every}")
    if not states:
        raise AlloopError("run_segment needs at least one replica state")
    n = len(atoms)
    if any(s.positions.shape != (n, 3) for s in states):
        raise AlloopError(f"every replica state must hold {n} atoms like the molecule")


def run_segment(
    model: Potential,
    atoms: Atoms,
    states: Sequence[ReplicaState],
    n_steps: int,
    settings: MDSettings,
    record_every: int,
    guards: StabilityGuards | Sequence[StabilityGuards] | None = None,
    progress: Callable[[MDProgress], None] | None = None,
    dtype: torch.dtype | None = None,
    bias: QResidualBias | None = None,
) -> SegmentResult:
    """Advance every replica in ``states`` (all of ``atoms``) by up to ``n_steps`` steps.

    ``atoms`` gives the numbers and masses; the states give positions,
    velocities, steps and random streams (they are not modified). ``guards``: one
    set for every replica, or one per replica (each against its own reference). ``dtype`` is
    the dtype of the model's input (default: the model's parameter dtype).
    ``bias`` adds the uncertainty bias's forces (:mod:`alloop.md.uncertainty_bias`) and records its energy per frame.
    """
    _check_segment_inputs(atoms, states, n_steps, record_every)
    t_start = time.perf_counter()
    integrator = settings.make_integrator()
    cell = periodic_cell(atoms)
    evaluate = _Evaluator(model, atoms.numbers.copy(), dtype or model_dtype(model), bias, cell)
    replicas = _Replicas(states, atoms.get_masses().astype(np.float64), guards, record_every)
    baseline_start = baseline_seconds(model)
    with warm_baseline(model):  # a Delta model's GFN-xTB steps continue each replica's wavefunction
        n_features = replicas.start(evaluate)
        for it in range(n_steps):
            if not replicas.step(integrator, evaluate, cell):
                break
            if progress is not None:
                progress(MDProgress(it + 1, n_steps, int(replicas.active.sum()), replicas.n_recorded))
    return replicas.result(evaluate, n_features, t_start, baseline_seconds(model) - baseline_start)


def restart_replica(
    result: SegmentResult,
    replica: int,
    atoms: Atoms,
    *,
    temperature_K: float | None = None,
    seed: int | None = None,
) -> ReplicaState:
    """A starting state for a stopped replica: its last stable state.

    With ``seed`` (and ``temperature_K``) the velocities are re-drawn from a
    Maxwell-Boltzmann distribution with a fresh random stream: use this when
    the model has not changed, since the unchanged state would replay the same
    trajectory into the same failure. Without a seed the last stable state is
    returned unchanged (right after a retrain, when the new model will take a
    different path).
    """
    if not 0 <= replica < len(result.last_stable_states):
        raise AlloopError(f"replica {replica} is not in this segment ({len(result.last_stable_states)} replicas)")
    state = result.last_stable_states[replica].copy()
    if seed is None:
        return state
    if temperature_K is None:
        raise AlloopError("re-drawing velocities needs temperature_K")
    return redraw_velocities(state, atoms.get_masses(), temperature_K, seed)
