"""Reactions are not failures: a proton moved from one oxygen of malonaldehyde to the other inside a segment is a
reaction event (the replica goes on, its state carries the new bonds), the strict mode still stops it, and a proton
pulled away from the molecule (no new partner) still stops the replica."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from alloop.md import BondSet, MDSettings, ReplicaState, StabilityGuards, init_replicas, run_segment
from alloop.md.events import react
from alloop.potentials.base import AtomsBatch, Potential

COLD = MDSettings(temperature_K=30.0, timestep_fs=0.25, friction_per_fs=0.05)
PATH_CALLS = 200  # model calls (steps) over which the proton is dragged


class DraggedAtom(Potential):
    """A scripted potential: harmonic springs between the atoms other than ``moving`` (every pair closer than
    ``reach`` in ``ref``, at their reference lengths) and a spring that pulls atom ``moving`` to a target moving in a
    straight line from its position in ``ref`` to ``end`` over the first ``n_calls`` model calls, then staying there.
    Features: each atom's distance to the target (one channel)."""

    registry_name = "test-dragged-atom"

    def __init__(self, ref: Atoms, moving: int, end: np.ndarray, n_calls: int, k_eV_A2: float = 20.0,
                 reach: float = 2.6) -> None:
        super().__init__(sorted(set(ref.numbers.tolist())), cutoff=reach)
        d = np.linalg.norm(ref.positions[:, None] - ref.positions[None], axis=-1)
        near = np.triu(d < reach, k=1)
        near[moving, :] = near[:, moving] = False
        i, j = np.nonzero(near)
        self.pairs, self.d0 = torch.tensor(np.stack([i, j])), torch.tensor(d[i, j])
        self.moving, self.n, self.k, self.n_calls, self.calls = moving, len(ref), k_eV_A2, n_calls, 0
        self.start, self.end = torch.tensor(ref.positions[moving]), torch.tensor(np.asarray(end, dtype=float))

    def hyperparameters(self):
        return {}

    @property
    def feature_dim(self) -> int:
        return 1

    def energy_and_features(self, batch: AtomsBatch):
        self.calls += 1
        target = self.start + min(self.calls / self.n_calls, 1.0) * (self.end - self.start)
        pos = batch.positions.reshape(batch.n_graphs, self.n, 3)
        ext = (pos[:, self.pairs[0]] - pos[:, self.pairs[1]]).norm(dim=-1) - self.d0
        pull = ((pos[:, self.moving] - target) ** 2).sum(-1)
        energy = 0.5 * self.k * ((ext**2).sum(-1) + pull)
        return energy, (pos - target).norm(dim=-1).reshape(-1, 1)


def _transfer_end(atoms: Atoms) -> np.ndarray:
    """Where the proton ends: 0.97 A from O0 on the line from O0 through its starting position (H5 on O4)."""
    o0, h = atoms.positions[0], atoms.positions[5]
    return o0 + 0.97 * (h - o0) / np.linalg.norm(h - o0)


def _transfer(atoms, reactions, n_steps=PATH_CALLS + 100, states=None, model=None):
    model = model or DraggedAtom(atoms, 5, _transfer_end(atoms), PATH_CALLS).double()
    guards = StabilityGuards.from_atoms(atoms, max_bond_stretch=1.5, temperature_K=COLD.temperature_K,
                                        max_temperature_K=1000.0, reactions=reactions)
    states = states or init_replicas(atoms, 2, COLD.temperature_K, seed=3)
    return model, guards, run_segment(model, atoms, states, n_steps, COLD, record_every=10, guards=guards)


def test_the_scripted_path_moves_the_proton_to_the_other_oxygen(malonaldehyde):
    guards = StabilityGuards.from_atoms(malonaldehyde)
    assert [4, 5] in guards.bonds.tolist() and [0, 5] not in guards.bonds.tolist()
    end = _transfer_end(malonaldehyde)
    # at the end the old O-H bond is beyond 1.5 x its starting length, the new one within bonding distance
    assert np.linalg.norm(end - malonaldehyde.positions[4]) > 1.5 * malonaldehyde.get_distance(4, 5)


def test_a_proton_transfer_is_an_event_and_the_replica_goes_on(malonaldehyde):
    _, _, res = _transfer(malonaldehyde, "events")
    assert res.stopped == []
    for r in range(2):
        assert [(e.broken, e.formed) for e in res.events[r]] == [((4, 5), (0, 5))]
        event = res.events[r][0]
        assert 0 < event.step < PATH_CALLS and event.formed_A < 1.2 * 0.97 < event.broken_A
        final = res.final_states[r]
        assert final.step == PATH_CALLS + 100 and np.linalg.norm(final.positions[5] - final.positions[0]) < 1.05
        pairs = final.bonds.pairs.tolist()
        assert [0, 5] in pairs and [4, 5] not in pairs and len(pairs) == 8
        assert not res.trajectories[r].unstable.any()


def test_the_strict_mode_stops_the_transfer_as_before(malonaldehyde):
    _, _, res = _transfer(malonaldehyde, "stop")
    assert res.stopped == [0, 1] and res.events == [[], []]
    for r in range(2):
        reason = res.stop_reasons[r]
        assert reason.code == "bond_stretched" and reason.detail.startswith("bond 4-5 at ")
        assert "dissociation" not in reason.detail and res.trajectories[r].unstable[-1]
        assert res.final_states[r].bonds is None


def test_a_proton_pulled_off_the_molecule_still_stops_it(malonaldehyde):
    away = malonaldehyde.positions[5] + np.array([0.0, 0.0, 3.0])  # perpendicular to the molecule's plane
    model = DraggedAtom(malonaldehyde, 5, away, PATH_CALLS).double()
    _, _, res = _transfer(malonaldehyde, "events", model=model)
    assert res.stopped == [0, 1] and res.events == [[], []]
    assert all(res.stop_reasons[r].code == "bond_stretched" and "dissociation" in res.stop_reasons[r].detail
               for r in range(2))


def test_the_new_bonds_survive_a_resume(malonaldehyde):
    model, guards, first = _transfer(malonaldehyde, "events")
    resumed = [ReplicaState.from_bytes(s.to_bytes()) for s in first.final_states]
    assert all(s.bonds.same(f.bonds) for s, f in zip(resumed, first.final_states, strict=True))
    again = run_segment(model, malonaldehyde, resumed, 50, COLD, record_every=10, guards=guards)
    assert again.stopped == [] and again.events == [[], []]  # the transfer is not recorded twice
    assert all(s.bonds.same(f.bonds) for s, f in zip(again.final_states, first.final_states, strict=True))
    # without the carried bonds, the guards would measure against the starting structure and see the transfer again
    forgotten = [ReplicaState(s.positions, s.velocities, s.step, s.rng_state, s.temperature_avg_K) for s in resumed]
    fresh = run_segment(model, malonaldehyde, forgotten, 50, COLD, record_every=10, guards=guards)
    assert [[(e.broken, e.formed) for e in ev] for ev in fresh.events] == [[((4, 5), (0, 5))]] * 2


def test_react_takes_the_closer_new_partner_and_keeps_the_rest():
    radii = np.array([0.66, 0.31, 0.66, 0.66])  # O, H, O, O
    pos = np.array([[0.0, 0, 0], [1.9, 0, 0], [3.0, 0, 0], [1.9, 1.05, 0]])  # H left O0: O3 (1.05) over O2 (1.1)
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    bonds = BondSet(np.array([[0, 1]]), np.array([0.97]))
    after, events = react(d, bonds, radii, 1.2, 1.5, step=7)
    assert [(e.step, e.broken, e.formed) for e in events] == [(7, (0, 1), (1, 3))]
    assert after.pairs.tolist() == [[1, 3]] and after.lengths == pytest.approx([0.97])
    same, none = react(d[:2, :2], bonds, radii[:2], 1.2, 1.5, step=7)  # no partner: the bond stays, no event
    assert none == [] and same is bonds
    assert ReplicaState.from_bytes(
        ReplicaState(pos, np.zeros_like(pos), 0, np.random.default_rng(0).bit_generator.state, bonds=after).to_bytes()
    ).bonds.same(after)


def test_a_proton_half_way_between_the_oxygens_is_in_transit_not_dissociated(malonaldehyde):
    """The case GFN2-xTB MD at 1000 K met: after a transfer (bond O0-H5, reference 0.97 A) the proton is 1.47 A from
    O0, beyond 1.5 x 0.97, and 1.25 A from O4, not yet within bonding distance (1.2 x 0.97): no event, no stop."""
    p0, p4, h = malonaldehyde.positions[0], malonaldehyde.positions[4], malonaldehyde.positions[5]
    axis = (p4 - p0) / np.linalg.norm(p4 - p0)
    side = (h - p0) - np.dot(h - p0, axis) * axis
    side /= np.linalg.norm(side)
    span, d0, d4 = np.linalg.norm(p4 - p0), 1.47, 1.25
    x = (d0**2 - d4**2 + span**2) / (2 * span)
    pos = malonaldehyde.positions.copy()
    pos[5] = p0 + x * axis + np.sqrt(d0**2 - x**2) * side
    guards = StabilityGuards.from_atoms(malonaldehyde, max_bond_stretch=1.5)
    after = guards.reference.exchanged(int(np.flatnonzero((guards.bonds == [4, 5]).all(axis=1))[0]), (0, 5), 0.97)
    (report,) = guards.inspect(pos[None], np.zeros((1, 9, 3)), bonds=[after], steps=[10])
    assert report.failure is None and report.events == [] and report.bonds is after
    pos[5] = p0 + 1.47 * (pos[5] - p0) / np.linalg.norm(pos[5] - p0) + np.array([0.0, 0.0, 1.2])  # out of reach
    (report,) = guards.inspect(pos[None], np.zeros((1, 9, 3)), bonds=[after], steps=[10])
    assert report.failure.code == "bond_stretched" and "dissociation" in report.failure.detail
