"""Replica state: positions, velocities, step, thermostat RNG, current bonds, serialisable as an opaque blob.

Units (ASE): positions in Angstrom, velocities in Angstrom per ASE time unit
(``ase.units.fs`` ASE time units make one femtosecond), masses in amu.
Every replica owns one numpy PCG64 generator; its full state travels with
the replica, so a segment resumed from a saved state continues the exact
random stream of the uninterrupted run. A replica that has reacted carries its
current bonds (:class:`alloop.md.events.BondSet`), so its guards keep measuring
against them after a resume; states written before bonds were carried read
back with none (the guards' reference bonds).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError
from alloop.md.events import BondSet
from alloop.units import KB_EV_PER_K

_FORMAT = 1


@dataclass
class ReplicaState:
    """One replica between MD steps.

    ``temperature_avg_K`` is the running-average kinetic temperature used by
    the temperature guard (NaN until the first step); ``restarts`` counts
    restarts, so re-drawn velocities get a fresh seed; ``bonds`` is the
    replica's current bond set after a reaction (None: the bonds of its guards'
    reference structure).
    """

    positions: np.ndarray  # [n, 3] float64, Angstrom
    velocities: np.ndarray  # [n, 3] float64, Angstrom / ASE time unit
    step: int
    rng_state: Mapping[str, Any]  # numpy's bit_generator.state
    temperature_avg_K: float = float("nan")
    restarts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable, carried along untouched
    bonds: BondSet | None = None

    def __post_init__(self) -> None:
        self.positions = np.array(self.positions, dtype=np.float64)
        self.velocities = np.array(self.velocities, dtype=np.float64)
        if self.positions.ndim != 2 or self.positions.shape[1] != 3:
            raise AlloopError(f"replica positions must have shape [n, 3], got {self.positions.shape}")
        if self.velocities.shape != self.positions.shape:
            raise AlloopError(
                f"replica velocities {self.velocities.shape} do not match positions {self.positions.shape}"
            )
        self.step = int(self.step)

    def generator(self) -> np.random.Generator:
        """A generator positioned at this state's point of the random stream."""
        gen = np.random.Generator(np.random.PCG64())
        gen.bit_generator.state = self.rng_state
        return gen

    def copy(self) -> ReplicaState:
        return replace(
            self,
            positions=self.positions.copy(),
            velocities=self.velocities.copy(),
            rng_state=json.loads(json.dumps(self.rng_state)),
            extra=dict(self.extra),
        )

    def _meta(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "step": self.step,
            "rng_state": self.rng_state,
            "temperature_avg_K": None if np.isnan(self.temperature_avg_K) else self.temperature_avg_K,
            "restarts": self.restarts,
            "extra": self.extra,
            "bonds": None if self.bonds is None else self.bonds.to_json(),
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (positions, velocities, and a JSON ``meta`` as uint8) for a Zarr group."""
        meta = np.frombuffer(json.dumps(self._meta()).encode(), dtype=np.uint8)
        return {"positions": self.positions.copy(), "velocities": self.velocities.copy(), "meta": meta.copy()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ReplicaState:
        try:
            meta = json.loads(np.asarray(arrays["meta"], dtype=np.uint8).tobytes().decode())
            positions, velocities = arrays["positions"], arrays["velocities"]
        except (KeyError, ValueError) as exc:
            raise AlloopError(f"not a replica state: {exc}") from exc
        if meta.get("format") != _FORMAT:
            raise AlloopError(f"unsupported replica state format {meta.get('format')}")
        t_avg = meta["temperature_avg_K"]
        return cls(
            positions=np.asarray(positions, dtype=np.float64),
            velocities=np.asarray(velocities, dtype=np.float64),
            step=meta["step"],
            rng_state=meta["rng_state"],
            temperature_avg_K=float("nan") if t_avg is None else float(t_avg),
            restarts=int(meta["restarts"]),
            extra=dict(meta["extra"]),
            bonds=None if meta.get("bonds") is None else BondSet.from_json(meta["bonds"]),
        )

    def to_bytes(self) -> bytes:
        """An opaque blob (an uncompressed ``.npz``) that :meth:`from_bytes` restores exactly."""
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=True, **self.to_arrays())  # numpy's default, named: mypy then lets **arrays pass
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> ReplicaState:
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (ValueError, OSError) as exc:
            raise AlloopError(f"not a replica state blob: {exc}") from exc
        return cls.from_arrays(arrays)


def maxwell_boltzmann_velocities(masses: np.ndarray, temperature_K: float, rng: np.random.Generator) -> np.ndarray:
    """Velocities [n, 3] drawn at ``temperature_K`` with the centre-of-mass velocity removed.

    Not rescaled to the exact temperature: the kinetic temperature of a small
    molecule scatters around the target, as in ASE's MaxwellBoltzmannDistribution
    followed by Stationary.
    """
    if temperature_K < 0:
        raise AlloopError(f"temperature must be >= 0 K, got {temperature_K}")
    masses = np.asarray(masses, dtype=np.float64)
    sigma = np.sqrt(KB_EV_PER_K * temperature_K / masses)
    v = rng.standard_normal((masses.size, 3)) * sigma[:, None]
    v -= (masses[:, None] * v).sum(axis=0) / masses.sum()
    return v


def init_replicas(atoms: Atoms, n_replicas: int, temperature_K: float, seed: int) -> list[ReplicaState]:
    """``n_replicas`` copies of ``atoms`` with independent seeded Maxwell-Boltzmann velocities.

    Replica r's generator is child r of ``SeedSequence(seed)``: the same seed
    gives the same replicas, and replicas never share a random stream.
    """
    if n_replicas < 1:
        raise AlloopError(f"n_replicas must be >= 1, got {n_replicas}")
    masses = atoms.get_masses()
    states = []
    for child in np.random.SeedSequence(int(seed)).spawn(n_replicas):
        gen = np.random.Generator(np.random.PCG64(child))
        v = maxwell_boltzmann_velocities(masses, temperature_K, gen)
        states.append(ReplicaState(atoms.positions.copy(), v, 0, gen.bit_generator.state))
    return states


def redraw_velocities(state: ReplicaState, masses: np.ndarray, temperature_K: float, seed: int) -> ReplicaState:
    """A copy of ``state`` with fresh velocities and a fresh random stream.

    The new generator is seeded from ``(seed, state.restarts + 1)`` so repeated
    restarts of one replica never reuse a stream; the guard's running
    temperature is reset; the current bonds are kept.
    """
    restarts = state.restarts + 1
    gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), restarts])))
    v = maxwell_boltzmann_velocities(masses, temperature_K, gen)
    return ReplicaState(
        state.positions.copy(), v, state.step, gen.bit_generator.state, float("nan"), restarts, dict(state.extra),
        state.bonds,
    )
