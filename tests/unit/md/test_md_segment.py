"""MD segments: resume bit-identity, batched = single, NVE conservation, Langevin temperature, progress."""

from __future__ import annotations

import numpy as np
import torch

from alloop.md import MDSettings, ReplicaState, StabilityGuards, init_replicas, kinetic_temperature, run_segment
from alloop.potentials.pair import PairPotential

LANGEVIN = MDSettings(temperature_K=500.0, timestep_fs=0.5, friction_per_fs=0.01)


def _concat(results, r, key):
    return np.concatenate([getattr(res.trajectories[r], key) for res in results])


def test_resume_from_bytes_is_bit_identical(ethanol, springs):
    states = init_replicas(ethanol, 3, 500.0, seed=11)
    guards = StabilityGuards.from_atoms(ethanol, temperature_K=500.0)
    full = run_segment(springs, ethanol, states, 40, LANGEVIN, record_every=5, guards=guards)
    first = run_segment(springs, ethanol, states, 15, LANGEVIN, record_every=5, guards=guards)
    saved = [ReplicaState.from_bytes(s.to_bytes()) for s in first.final_states]
    second = run_segment(springs, ethanol, saved, 25, LANGEVIN, record_every=5, guards=guards)
    for r in range(3):
        assert np.array_equal(full.final_states[r].positions, second.final_states[r].positions)
        assert np.array_equal(full.final_states[r].velocities, second.final_states[r].velocities)
        assert full.final_states[r].rng_state == second.final_states[r].rng_state
        assert full.final_states[r].temperature_avg_K == second.final_states[r].temperature_avg_K
        assert np.array_equal(full.trajectories[r].positions, _concat([first, second], r, "positions"))
        assert np.array_equal(full.trajectories[r].steps, np.arange(5, 41, 5))
    # the stream really is random: replicas differ
    assert not np.allclose(full.final_states[0].positions, full.final_states[1].positions)


def test_resume_with_float32_learned_model(ethanol):
    model = PairPotential([1, 6, 8], seed=0)  # float32 model, float64 integrator
    states = init_replicas(ethanol, 2, 300.0, seed=2)
    full = run_segment(model, ethanol, states, 20, LANGEVIN, record_every=4)
    a = run_segment(model, ethanol, states, 8, LANGEVIN, record_every=4)
    b = run_segment(model, ethanol, [ReplicaState.from_bytes(s.to_bytes()) for s in a.final_states], 12, LANGEVIN, 4)
    assert full.final_states[0].positions.dtype == np.float64
    for r in range(2):
        assert np.array_equal(full.final_states[r].positions, b.final_states[r].positions)
    assert full.trajectories[0].features.shape == (5, 9, model.feature_dim)


def test_batched_replicas_equal_one_at_a_time(ethanol, springs):
    states = init_replicas(ethanol, 3, 500.0, seed=5)
    batched = run_segment(springs, ethanol, states, 30, LANGEVIN, record_every=10)
    assert batched.n_model_calls == 31  # one call for all replicas per step, plus the initial forces
    for r in range(3):
        single = run_segment(springs, ethanol, [states[r]], 30, LANGEVIN, record_every=10)
        assert np.array_equal(batched.trajectories[r].positions, single.trajectories[0].positions)
        assert np.array_equal(batched.trajectories[r].forces, single.trajectories[0].forces)
        assert np.array_equal(batched.final_states[r].velocities, single.final_states[0].velocities)


def test_nve_conserves_energy(ethanol, springs):
    states = init_replicas(ethanol, 2, 300.0, seed=3)
    nve = MDSettings(timestep_fs=0.5, integrator="verlet")
    res = run_segment(springs, ethanol, states, 600, nve, record_every=5)
    for r in range(2):
        traj = res.trajectories[r]
        total = traj.energies + traj.kinetic_energies
        assert np.std(traj.kinetic_energies) > 0.02  # the system really moves
        ke_spread = np.std(traj.kinetic_energies)
        assert np.ptp(total) < 0.2 * ke_spread  # bounded shadow-energy fluctuation
        q = total.size // 4
        assert abs(total[:q].mean() - total[-q:].mean()) < 0.01 * ke_spread  # no drift


def test_nve_drift_shrinks_with_time_step(ethanol, springs):
    states = init_replicas(ethanol, 1, 300.0, seed=4)
    spread = []
    for dt in (1.0, 0.5):
        res = run_segment(springs, ethanol, states, int(200 / dt), MDSettings(timestep_fs=dt, integrator="verlet"), 1)
        total = res.trajectories[0].energies + res.trajectories[0].kinetic_energies
        spread.append(np.ptp(total))
    assert spread[1] < 0.4 * spread[0]  # second-order integrator: ~1/4


def test_langevin_reaches_target_temperature(ethanol, springs):
    states = init_replicas(ethanol, 4, 50.0, seed=9)  # start cold
    settings = MDSettings(temperature_K=500.0, timestep_fs=1.0, friction_per_fs=0.05)
    res = run_segment(springs, ethanol, states, 1000, settings, record_every=5)
    masses = ethanol.get_masses()
    temps = [2 * t.kinetic_energies / (3 * len(ethanol) * 8.617333262e-5) for t in res.trajectories]
    late = np.concatenate([t[len(t) // 3 :] for t in temps])
    assert abs(late.mean() - 500.0) < 50.0
    assert np.concatenate([t[:2] for t in temps]).mean() < 300.0
    final_t = kinetic_temperature(np.stack([s.velocities for s in res.final_states]), masses)
    assert np.all(final_t > 0)


def test_progress_callback_sees_every_step(ethanol, springs):
    seen = []
    states = init_replicas(ethanol, 2, 300.0, seed=1)
    run_segment(springs, ethanol, states, 12, LANGEVIN, record_every=4, progress=seen.append)
    assert [p.step for p in seen] == list(range(1, 13))
    assert seen[-1].n_recorded == 6 and seen[-1].n_active == 2


def test_model_is_called_in_its_dtype(ethanol):
    model = PairPotential([1, 6, 8], seed=0)
    res = run_segment(model, ethanol, init_replicas(ethanol, 1, 300.0, 0), 2, LANGEVIN, 1, dtype=torch.float64)
    ref = run_segment(model.double(), ethanol, init_replicas(ethanol, 1, 300.0, 0), 2, LANGEVIN, 1)
    assert np.array_equal(res.final_states[0].positions, ref.final_states[0].positions)


def test_stacked_frames_for_scoring(ethanol):
    model = PairPotential([1, 6, 8], seed=0).double()
    res = run_segment(model, ethanol, init_replicas(ethanol, 3, 300.0, seed=0), 10, LANGEVIN, record_every=5)
    table = res.stacked()
    assert table["replica"].tolist() == [0, 0, 1, 1, 2, 2] and table["step"].tolist() == [5, 10] * 3
    assert table["features"].shape == (6, 9, model.feature_dim) and table["positions"].shape == (6, 9, 3)
    assert np.array_equal(table["forces"][3], res.trajectories[1].forces[1])
    assert not table["unstable"].any()


def test_egnn_resume_and_batching_are_bit_identical(ethanol):
    from alloop.potentials.registry import build_model

    model = build_model("egnn", [1, 6, 8], hidden_features=16, n_layers=2, cutoff_A=5.0, dtype="float64")
    states = init_replicas(ethanol, 2, 500.0, seed=0)
    full = run_segment(model, ethanol, states, 12, LANGEVIN, record_every=4)
    first = run_segment(model, ethanol, states, 5, LANGEVIN, record_every=4)
    rest = run_segment(model, ethanol, [ReplicaState.from_bytes(s.to_bytes()) for s in first.final_states], 7, LANGEVIN, 4)
    alone = run_segment(model, ethanol, [states[1]], 12, LANGEVIN, record_every=4)
    for r in range(2):
        assert np.array_equal(full.final_states[r].positions, rest.final_states[r].positions)
    # a dense layer's matmul kernel may depend on the batch size: batched = single to rounding only
    assert np.allclose(full.trajectories[1].positions, alone.trajectories[0].positions, rtol=0, atol=1e-10)
    assert np.allclose(full.trajectories[1].features, alone.trajectories[0].features, rtol=0, atol=1e-10)
