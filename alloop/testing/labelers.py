"""Conformance checks for any Labeler (``alloop.labeling.base.Labeler``), usable from users' tests, and a labeller
of fixed cost and ~0 CPU for scheduling tests and benchmarks (:class:`WaitLabeler`, :func:`wait_labeler`).

``check_labeler(labeler, atoms)`` labels ``atoms`` and raises AssertionError
naming the first broken promise:

- the result is a LabelResult with a LabelStatus, forces of shape (n_atoms, 3),
  fidelity name and hash recorded, non-negative costs;
- an ``ok`` result is finite, and its forces are the negative gradient of its
  energy in the same units (eV and eV/Angstrom): a central difference of two
  extra labels along the force direction must match |F| (this catches Hartree,
  Bohr or sign mistakes, which a magnitude check cannot);
- labelling is deterministic (a second label agrees to ``atol_eV``) and does not
  modify the input structure;
- for ``failing_atoms`` (a structure the labeller cannot compute, e.g. two atoms
  on top of each other) it returns a non-ok result with NaN energy and a
  reason, instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from alloop.labeling.result import LabelResult, LabelStatus

if TYPE_CHECKING:
    from alloop.fidelity import Fidelity

#: a labeler's ``label`` method, as found on the object under test (its results are checked, not assumed)
LabelFn = Callable[[Atoms], Any]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_result_shape(result: object, n_atoms: int) -> LabelResult:
    """The structural promises every LabelResult makes, ok or not."""
    _require(isinstance(result, LabelResult), f"label() returned {type(result).__name__}, not LabelResult")
    assert isinstance(result, LabelResult)
    _require(isinstance(result.status, LabelStatus), f"status {result.status!r} is not a LabelStatus")
    forces = np.asarray(result.forces_eV_per_A)
    _require(forces.shape == (n_atoms, 3), f"forces have shape {forces.shape}, expected ({n_atoms}, 3)")
    _require(result.cpu_seconds >= 0 and result.wall_seconds >= 0, "negative cost")
    _require(bool(result.fidelity_name) and bool(result.fidelity_hash), "fidelity name/hash not recorded")
    if result.ok:
        _require(np.isfinite(result.energy_eV), f"ok result with energy {result.energy_eV}")
        _require(bool(np.all(np.isfinite(forces))), "ok result with non-finite forces")
    else:
        _require(bool(result.reason), f"status {result.status.value} without a reason")
        _require(np.isnan(result.energy_eV), "a failed label must carry NaN energy")
    return result


def check_labeler(
    labeler: object,
    atoms: Atoms,
    *,
    failing_atoms: Atoms | None = None,
    step_A: float = 1e-3,
    gradient_rtol: float = 0.02,
    atol_eV: float = 1e-8,
    atol_force_eV_per_A: float = 1e-6,
) -> LabelResult:
    """Assert the Labeler protocol on ``atoms`` (which must label ``ok``); return that result."""
    label = getattr(labeler, "label", None)
    if not callable(label):
        raise AssertionError("labeler has no label() method")
    before = atoms.copy()
    result = check_result_shape(label(atoms), len(atoms))
    _require(
        np.array_equal(atoms.positions, before.positions) and np.array_equal(atoms.numbers, before.numbers),
        "label() modified its input structure",
    )
    _require(result.ok, f"expected an ok label for this structure, got {result.status.value}: {result.reason}")
    _check_gradient(label, atoms, result, step_A, gradient_rtol)
    again = check_result_shape(label(atoms.copy()), len(atoms))
    _require(again.ok, f"second label not ok: {again.reason}")
    _require(
        abs(again.energy_eV - result.energy_eV) <= atol_eV,
        f"not deterministic: energies differ by {again.energy_eV - result.energy_eV:.3e} eV",
    )
    diff = float(np.abs(again.forces_eV_per_A - result.forces_eV_per_A).max())
    _require(diff <= atol_force_eV_per_A, f"not deterministic: forces differ by {diff:.3e} eV/A")
    if failing_atoms is not None:
        _check_failure_is_data(label, failing_atoms)
    return result


def _check_gradient(label: LabelFn, atoms: Atoms, result: LabelResult, step_A: float, rtol: float) -> None:
    """-dE/dx along the force direction equals |F| (same units, right sign)."""
    forces = np.asarray(result.forces_eV_per_A)
    norm = float(np.linalg.norm(forces))
    _require(norm > 1e-3, "forces too small to check the gradient: use a structure away from a minimum")
    direction = forces / norm
    energies = []
    for sign in (1.0, -1.0):
        moved = atoms.copy()
        moved.positions = atoms.positions + sign * step_A * direction
        res = label(moved)
        _require(res.ok, f"displaced structure did not label ok: {res.reason}")
        energies.append(res.energy_eV)
    slope = -(energies[0] - energies[1]) / (2 * step_A)  # should equal F . d = |F|
    _require(
        abs(slope - norm) <= rtol * norm,
        f"forces are not -dE/dx in eV/A: |F| = {norm:.6g} but -dE/ds = {slope:.6g} (wrong units or sign?)",
    )


def _check_failure_is_data(label: LabelFn, failing_atoms: Atoms) -> None:
    try:
        failed = label(failing_atoms)
    except Exception as exc:  # the promise under test: physics failures are not raised
        raise AssertionError(f"label() raised {type(exc).__name__} instead of returning a failure: {exc}") from exc
    check_result_shape(failed, len(failing_atoms))
    _require(not failed.ok, "the failing structure was labelled ok")


#: the wait labeller's Morse pair potential, summed over every pair of atoms: well depth (eV), width (1/Angstrom)
#: and minimum (Angstrom); E = sum D ((1 - exp(-a (r - r0)))^2 - 1)
MORSE_D_EV, MORSE_A_PER_A, MORSE_R0_A = 0.5, 1.5, 1.5
#: atoms closer than this (Angstrom) are a failed label, returned as data
MIN_PAIR_DISTANCE_A = 0.1


class WaitLabeler:
    """A labeller of fixed cost and ~0 CPU, for tests and benchmarks of scheduling: waits ``seconds`` (sleeping),
    then labels with a Morse pair potential (:data:`MORSE_D_EV`, ...; minimum image in periodic cells).

    Its energies are not the fidelity's: the fidelity only names the labels (name, hash). Picklable, deterministic,
    forces = -dE/dx in eV/A (it passes :func:`check_labeler`); two atoms closer than :data:`MIN_PAIR_DISTANCE_A`
    give a ``failed`` result. ``wall_seconds`` is the measured wall time, ``cpu_seconds`` the CPU of the calling
    thread (the wait costs none).
    """

    def __init__(self, fidelity: Fidelity, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, not {seconds!r}")
        self._fidelity, self.seconds = fidelity, float(seconds)

    @property
    def fidelity(self) -> Fidelity:
        return self._fidelity

    def label(self, atoms: Atoms) -> LabelResult:
        import time

        wall0, cpu0 = time.perf_counter(), time.thread_time()
        time.sleep(self.seconds)
        energy, forces, reason = morse_energy_forces(atoms)
        wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
        name, hash_ = self._fidelity.name, self._fidelity.hash()
        if reason:
            return LabelResult.failure(len(atoms), LabelStatus.FAILED, reason, wall_seconds=wall, cpu_seconds=cpu,
                                       fidelity_name=name, fidelity_hash=hash_)
        return LabelResult(energy, forces, LabelStatus.OK, wall_seconds=wall, cpu_seconds=cpu, fidelity_name=name,
                           fidelity_hash=hash_)


def morse_energy_forces(atoms: Atoms) -> tuple[float, np.ndarray, str]:
    """(energy eV, forces eV/A, "") of the wait labeller's pair potential, or (nan, nan forces, why) when two atoms
    are closer than :data:`MIN_PAIR_DISTANCE_A`."""
    from ase.geometry import get_distances

    n = len(atoms)
    if n < 2:
        return 0.0, np.zeros((n, 3)), ""
    vectors, dist = get_distances(atoms.positions, cell=atoms.cell, pbc=atoms.pbc)  # vectors[i, j] = x_j - x_i
    i, j = np.triu_indices(n, k=1)
    r = dist[i, j]
    if r.min() < MIN_PAIR_DISTANCE_A:
        k = int(np.argmin(r))
        return float("nan"), np.full((n, 3), np.nan), f"atoms {i[k]} and {j[k]} are {r[k]:.3f} A apart"
    e = np.exp(-MORSE_A_PER_A * (r - MORSE_R0_A))
    energy = float(np.sum(MORSE_D_EV * ((1.0 - e) ** 2 - 1.0)))
    de_dr = 2.0 * MORSE_D_EV * MORSE_A_PER_A * (1.0 - e) * e
    pair = (de_dr / r)[:, None] * vectors[i, j]  # the force on i from j; on j it is the opposite
    forces = np.zeros((n, 3))
    np.add.at(forces, i, pair)
    np.add.at(forces, j, -pair)
    return energy, forces, ""


def wait_labeler(seconds: float) -> Callable[[Fidelity], WaitLabeler]:
    """A labeller factory (``LabelingPool(labeler_factory=...)``, ``Campaign(labeler_factory=...)``): fidelity ->
    :class:`WaitLabeler` waiting ``seconds``."""
    import functools

    if not seconds >= 0:
        raise ValueError(f"seconds must be >= 0, not {seconds!r}")
    return functools.partial(WaitLabeler, seconds=seconds)
