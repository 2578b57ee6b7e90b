"""Integrators for batches of replicas: Langevin (BAOAB) and velocity Verlet (NVE).

Every integrator splits one step at the single force evaluation:

    drift(x, v, f)   everything before the new forces (updates x, v in place)
    <model call: f = F(x)>
    kick(v, f)       the final half kick B

so R replicas share one batched model call per step. Arrays are float64
[R, n, 3]; ``inv_mass`` is [n, 1] (1/amu), ``dt`` in ASE time units.

Langevin uses BAOAB (Leimkuhler & Matthews, Appl. Math. Res. Express 2013):
B = half kick, A = half drift, O = exact Ornstein-Uhlenbeck step
``v <- c1 v + c2 sqrt(kB T / m) xi`` with ``c1 = exp(-gamma dt)``,
``c2 = sqrt(1 - c1^2)``; its configurational sampling error is O(dt^2) and it
reduces to velocity Verlet for gamma = 0. Each replica draws its noise from
its own generator, so a replica's trajectory does not depend on which other
replicas share the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from alloop.errors import AlloopError
from alloop.units import KB_EV_PER_K


class Integrator(Protocol):
    dt: float

    def drift(
        self, x: np.ndarray, v: np.ndarray, f: np.ndarray, inv_mass: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> None: ...

    def kick(self, v: np.ndarray, f: np.ndarray, inv_mass: np.ndarray) -> None: ...


class VelocityVerlet:
    """NVE: B (half kick), A (full drift) | forces | B (half kick)."""

    def __init__(self, dt: float) -> None:
        if not dt > 0:
            raise AlloopError(f"time step must be positive, got {dt}")
        self.dt = float(dt)
        self._half = 0.5 * self.dt

    def drift(self, x, v, f, inv_mass, rngs) -> None:  # noqa: D102 - see module docstring
        v += self._half * (f * inv_mass)
        x += self.dt * v

    def kick(self, v: np.ndarray, f: np.ndarray, inv_mass: np.ndarray) -> None:
        v += self._half * (f * inv_mass)


class LangevinBAOAB:
    """NVT Langevin, BAOAB splitting: B A O A | forces | B.

    ``friction`` gamma in 1/(ASE time unit), ``temperature_K`` the bath.
    """

    def __init__(self, dt: float, temperature_K: float, friction: float) -> None:
        if not dt > 0:
            raise AlloopError(f"time step must be positive, got {dt}")
        if temperature_K < 0:
            raise AlloopError(f"temperature must be >= 0 K, got {temperature_K}")
        if friction < 0:
            raise AlloopError(f"friction must be >= 0, got {friction}")
        self.dt = float(dt)
        self._half = 0.5 * self.dt
        self.kT = KB_EV_PER_K * float(temperature_K)
        self.c1 = math.exp(-float(friction) * self.dt)
        self.c2 = math.sqrt(1.0 - self.c1 * self.c1)

    def drift(self, x, v, f, inv_mass, rngs) -> None:  # noqa: D102 - see module docstring
        v += self._half * (f * inv_mass)
        x += self._half * v
        n = x.shape[1]
        noise = np.stack([g.standard_normal((n, 3)) for g in rngs]) if len(rngs) else np.zeros_like(v)
        sigma = np.sqrt(self.kT * inv_mass)  # [n, 1]
        v *= self.c1
        v += self.c2 * (sigma * noise)
        x += self._half * v

    def kick(self, v: np.ndarray, f: np.ndarray, inv_mass: np.ndarray) -> None:
        v += self._half * (f * inv_mass)


def kinetic_energy(v: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Kinetic energy per replica [R] (eV) of velocities [R, n, 3] and masses [n] (amu)."""
    return 0.5 * np.einsum("rni,n->r", v * v, masses)


def kinetic_temperature(v: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Instantaneous kinetic temperature per replica [R] (K), 3n degrees of freedom.

    3n (not 3n - 3) because the Langevin bath acts on every degree of freedom,
    including the centre of mass; ASE's ``get_temperature`` counts the same way.
    """
    return 2.0 * kinetic_energy(v, masses) / (3 * masses.size * KB_EV_PER_K)
