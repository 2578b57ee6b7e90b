"""Stability guards, broken replicas, restarts, replica state and initial velocities."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.md import (
    MDSettings,
    ReplicaGuards,
    ReplicaState,
    StabilityGuards,
    detect_bonds,
    init_replicas,
    kinetic_temperature,
    maxwell_boltzmann_velocities,
    restart_replica,
    run_segment,
)

LANGEVIN = MDSettings(temperature_K=500.0, timestep_fs=0.5, friction_per_fs=0.01)


def test_detect_bonds_of_ethanol(ethanol):
    bonds, lengths = detect_bonds(ethanol.numbers, ethanol.positions)
    assert len(bonds) == 8  # C-C, C-O, O-H, 5 C-H
    assert np.all((lengths > 0.9) & (lengths < 1.6))
    symbols = sorted("".join(sorted(ethanol.get_chemical_symbols()[k] for k in b)) for b in bonds)
    assert symbols.count("CH") == 5 and symbols.count("CC") == 1 and symbols.count("CO") == 1


def test_guard_reasons(ethanol):
    guards = StabilityGuards.from_atoms(ethanol, max_bond_stretch=1.5, min_distance_A=0.6, max_temperature_K=900.0)
    pos = np.stack([ethanol.positions] * 4)
    forces = np.zeros_like(pos)
    forces[0, 2, 1] = np.nan
    bonds = guards.bonds
    i, j = bonds[0]
    pos[1, j] = pos[1, i] + 1.6 * (pos[1, j] - pos[1, i])  # stretch one bond by 1.6
    pos[2, 5] = pos[2, 4] + [0.3, 0.0, 0.0]  # two atoms 0.3 A apart
    t_avg = np.array([500.0, 500.0, 500.0, 1200.0])
    reasons = guards.check(pos, forces, t_avg)
    assert [r.code for r in reasons] == ["non_finite_forces", "bond_stretched", "atoms_too_close",
                                         "temperature_out_of_range"]
    assert guards.check(np.stack([ethanol.positions]), np.zeros((1, 9, 3)), np.array([600.0])) == [None]


def test_running_temperature_average(ethanol):
    guards = StabilityGuards.from_atoms(ethanol, temperature_window_steps=10)
    t = guards.update_temperature(np.array([np.nan, 100.0]), np.array([300.0, 200.0]))
    assert t[0] == 300.0 and t[1] == pytest.approx(110.0)


def test_bad_thresholds_raise(ethanol):
    with pytest.raises(AlloopError, match="max_bond_stretch"):
        StabilityGuards.from_atoms(ethanol, max_bond_stretch=0.9)
    with pytest.raises(AlloopError, match="unknown integrator"):
        MDSettings(integrator="leapfrog")


def _clean_and_broken(ethanol, springs, broken_factory, mode):
    states = init_replicas(ethanol, 3, 500.0, seed=21)
    guards = StabilityGuards.from_atoms(ethanol, temperature_K=500.0)
    clean = run_segment(springs, ethanol, states, 40, LANGEVIN, record_every=4, guards=guards)
    broken_model = broken_factory(springs, at_call=15, graph=1, mode=mode)  # call 15 = step 14
    broken = run_segment(broken_model, ethanol, states, 40, LANGEVIN, record_every=4, guards=guards)
    return states, guards, clean, broken


def test_nan_forces_stop_one_replica_only(ethanol, springs, broken_factory):
    _, _, clean, broken = _clean_and_broken(ethanol, springs, broken_factory, "nan")
    assert broken.stopped == [1]
    assert broken.stop_reasons[1].code == "non_finite_forces"
    traj = broken.trajectories[1]
    assert traj.steps[-1] == 14 and traj.unstable[-1] and not traj.unstable[:-1].any()
    assert np.array_equal(traj.positions[:-1], clean.trajectories[1].positions[:3])  # frames before the failure kept
    for r in (0, 2):  # the other replicas are untouched, bit for bit
        assert np.array_equal(broken.trajectories[r].positions, clean.trajectories[r].positions)
        assert np.array_equal(broken.final_states[r].positions, clean.final_states[r].positions)
    assert broken.last_stable_states[1].step == 12


def test_exploding_forces_stop_on_the_next_step(ethanol, springs, broken_factory):
    _, _, clean, broken = _clean_and_broken(ethanol, springs, broken_factory, "huge")
    assert broken.stopped == [1]
    # the huge kick heats the replica at once: the running temperature leaves its range on the same step
    assert broken.stop_reasons[1].code == "temperature_out_of_range"
    assert broken.trajectories[1].steps[-1] == 14 and broken.trajectories[1].unstable[-1]
    assert np.array_equal(broken.trajectories[2].positions, clean.trajectories[2].positions)


def test_exploding_forces_without_temperature_guard_stretch_a_bond(ethanol, springs, broken_factory):
    states = init_replicas(ethanol, 2, 500.0, seed=3)
    guards = StabilityGuards.from_atoms(ethanol, max_temperature_K=1e12)
    model = broken_factory(springs, at_call=5, graph=0, mode="huge")
    res = run_segment(model, ethanol, states, 10, LANGEVIN, record_every=2, guards=guards)
    assert res.stopped == [0] and res.stop_reasons[0].code in ("bond_stretched", "atoms_too_close")
    assert res.trajectories[0].steps[-1] == 5  # positions move one step after the huge kick
    assert len(res.trajectories[1]) == 5


def test_restart_from_last_stable_state(ethanol, springs, broken_factory):
    states, guards, clean, broken = _clean_and_broken(ethanol, springs, broken_factory, "nan")
    same = restart_replica(broken, 1, ethanol)
    assert same.step == 12
    resumed = run_segment(springs, ethanol, [same], 40 - 12, LANGEVIN, record_every=4, guards=guards)
    # with the working model, the last stable state replays the clean trajectory exactly
    assert np.array_equal(resumed.final_states[0].positions, clean.final_states[1].positions)
    fresh = restart_replica(broken, 1, ethanol, temperature_K=500.0, seed=7)
    assert fresh.step == 12 and fresh.restarts == 1
    assert np.array_equal(fresh.positions, same.positions) and not np.array_equal(fresh.velocities, same.velocities)
    again = run_segment(springs, ethanol, [fresh], 20, LANGEVIN, record_every=4, guards=guards)
    assert again.stop_reasons == [None] and again.trajectories[0].steps[0] == 16
    with pytest.raises(AlloopError, match="temperature_K"):
        restart_replica(broken, 1, ethanol, seed=7)


def test_failure_at_the_starting_frame(ethanol, springs, broken_factory):
    states = init_replicas(ethanol, 2, 300.0, seed=0)
    model = broken_factory(springs, at_call=1, graph=0, mode="nan")
    res = run_segment(model, ethanol, states, 5, LANGEVIN, 1, guards=StabilityGuards.from_atoms(ethanol))
    assert res.stopped == [0] and res.trajectories[0].steps.tolist() == [0]
    assert len(res.trajectories[1]) == 5


def test_state_round_trip(ethanol):
    state = init_replicas(ethanol, 1, 300.0, seed=4)[0]
    state.temperature_avg_K = 312.5
    back = ReplicaState.from_bytes(state.to_bytes())
    assert np.array_equal(back.positions, state.positions) and np.array_equal(back.velocities, state.velocities)
    assert back.rng_state == state.rng_state and back.temperature_avg_K == 312.5
    assert back.generator().standard_normal() == state.generator().standard_normal()
    nan_state = ReplicaState.from_arrays(init_replicas(ethanol, 1, 300.0, seed=4)[0].to_arrays())
    assert np.isnan(nan_state.temperature_avg_K)
    with pytest.raises(AlloopError):
        ReplicaState.from_bytes(b"not a state")


def test_maxwell_boltzmann_velocities(ethanol):
    masses = ethanol.get_masses()
    rng = np.random.default_rng(0)
    v = np.stack([maxwell_boltzmann_velocities(masses, 400.0, rng) for _ in range(400)])
    momentum = np.einsum("rni,n->ri", v, masses)
    assert np.abs(momentum).max() < 1e-12
    # 3n - 3 degrees of freedom after removing the centre-of-mass motion
    mean_t = kinetic_temperature(v, masses).mean() * 3 * len(masses) / (3 * len(masses) - 3)
    assert abs(mean_t - 400.0) < 20.0
    a, b = init_replicas(ethanol, 2, 400.0, seed=1), init_replicas(ethanol, 2, 400.0, seed=1)
    assert np.array_equal(a[1].velocities, b[1].velocities) and not np.array_equal(a[0].velocities, a[1].velocities)


def test_each_replica_is_checked_by_its_own_guards(ethanol):
    """A stretched bond fails against one reference and passes against another in which it is longer."""
    guards = StabilityGuards.from_atoms(ethanol, max_bond_stretch=1.5)
    i, j = guards.bonds[0]
    longer = ethanol.copy()
    longer.positions[j] = ethanol.positions[i] + 1.15 * (ethanol.positions[j] - ethanol.positions[i])
    other = StabilityGuards.from_atoms(longer, max_bond_stretch=1.5)
    pos = np.stack([ethanol.positions] * 3)
    pos[:, j] = pos[:, i] + 1.6 * (pos[:, j] - pos[:, i])  # 1.6 x the first reference's bond, 1.39 x the other's
    each = ReplicaGuards([guards, other, guards], 3)
    found = each.check(np.array([0, 1, 2]), pos, np.zeros_like(pos))
    assert [None if f is None else f.code for f in found] == ["bond_stretched", None, "bond_stretched"]
    assert each.check(np.array([1]), pos[1:2], np.zeros((1, 9, 3))) == [None]  # by replica index, not by row
    with pytest.raises(AlloopError, match="one per replica"):
        ReplicaGuards([guards, other], 3)


def test_a_segment_takes_one_set_of_guards_per_replica(ethanol, springs):
    states = init_replicas(ethanol, 2, 500.0, seed=5)
    loose = StabilityGuards.from_atoms(ethanol, temperature_K=500.0)
    tight = StabilityGuards.from_atoms(ethanol, temperature_K=500.0, max_bond_stretch=1.0001)
    shared = run_segment(springs, ethanol, states, 20, LANGEVIN, record_every=4, guards=loose)
    same = run_segment(springs, ethanol, states, 20, LANGEVIN, record_every=4, guards=[loose, loose])
    assert np.array_equal(shared.final_states[1].positions, same.final_states[1].positions)
    mixed = run_segment(springs, ethanol, states, 20, LANGEVIN, record_every=4, guards=[loose, tight])
    assert mixed.stop_reasons[0] is None and mixed.stop_reasons[1].code == "bond_stretched"
    assert np.array_equal(mixed.final_states[0].positions, shared.final_states[0].positions)
