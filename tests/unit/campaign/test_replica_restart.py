"""Where a replica stopped by a guard starts its next segment (``md.restart_from``)."""

import numpy as np
import pytest
from ase.build import molecule

from alloop.campaign.execution.md_task import MDTaskResult
from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.explore import _next_states
from alloop.campaign.phases.settings import campaign_settings
from alloop.config import CampaignConfig
from alloop.md.state import ReplicaState, init_replicas


def _result(start, failing, stable) -> MDTaskResult:
    empty = np.zeros(0)
    return MDTaskResult(
        replicas=empty, steps=empty, positions=np.zeros((0, len(start.positions), 3)), unstable=empty,
        q_score=empty, t2_score=empty, descriptors=np.zeros((0, 1)), bias_energy=empty, predicted_error=empty,
        upper_error=empty,
        final_states={0: failing.to_bytes(), 1: stable.to_bytes()},
        last_stable_states={0: stable.to_bytes(), 1: stable.to_bytes()},
        stop_reasons={0: "bond_stretched: bond 1-2", 1: None}, model_seconds=0.0, total_seconds=0.0,
    )


@pytest.mark.parametrize("restart_from", ["start", "last-stable"])
def test_stopped_replica_restarts_where_configured(restart_from):
    atoms = molecule("H2O")
    (start,) = init_replicas(atoms, 1, 300.0, seed=1)
    stable = ReplicaState(atoms.positions + 0.05, start.velocities, 40, start.rng_state, 310.0)
    failing = ReplicaState(atoms.positions + 0.6, start.velocities * 5, 47, start.rng_state, 2900.0)
    cfg = CampaignConfig.from_dict({"system": {"structures": "H2O"}, "seed": 0,
                                    "md": {"restart_from": restart_from, "temperature_K": 300.0}})
    ctx = PhaseContext(settings=campaign_settings(cfg), store=None, client=None, structures=[atoms], fidelities={},
                       slots=1, progress=None, log=print)

    out = _next_states([_result(start, failing, stable)], ctx, cycle=2)

    assert out[1] == stable.to_bytes()  # a replica that did not stop continues untouched
    new = ReplicaState.from_bytes(out[0])
    expected = atoms.positions if restart_from == "start" else stable.positions
    np.testing.assert_array_equal(new.positions, expected)
    assert new.step == (47 if restart_from == "start" else 40)
    assert new.restarts == 1 and np.isnan(new.temperature_avg_K)
    assert not np.allclose(new.velocities, failing.velocities)  # fresh velocities, not the hot ones
    masses = atoms.get_masses()
    np.testing.assert_allclose((masses[:, None] * new.velocities).sum(axis=0), 0.0, atol=1e-12)
