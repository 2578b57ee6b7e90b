"""The label phase: every frame selected in a cycle for a role, without a committed label yet, gets one.

Labels run on the :class:`~alloop.campaign.labeling_pool.LabelingPool`; results are
written to the store as they arrive and committed every ``COMMIT_EVERY_S`` seconds
and at the end, so a resumed campaign labels only what has no committed label
(never a frame twice).
"""

from __future__ import annotations

import time

import numpy as np

from alloop.campaign import ledger
from alloop.campaign.context import PhaseContext
from alloop.campaign.labeling_pool import LabelingPool

COMMIT_EVERY_S = 5.0


def unlabelled_selection(ctx: PhaseContext, cycle: int, roles: tuple[str, ...]) -> dict[str, np.ndarray]:
    """role -> ids of the frames selected in ``cycle`` for that role that have no label at its fidelity."""
    todo: dict[str, np.ndarray] = {}
    for role in roles:
        chosen = ledger.selected(ctx.store, role, cycle)
        todo[role] = np.setdiff1d(chosen, ledger.labelled_ids(ctx.store, ctx.fidelities[role]))
    return todo


def label(ctx: PhaseContext, pool: LabelingPool, cycle: int, roles: tuple[str, ...]) -> None:
    """Label every frame selected in ``cycle`` for ``roles`` that has no committed label yet."""
    todo = unlabelled_selection(ctx, cycle, roles)
    if sum(len(v) for v in todo.values()) == 0:
        return
    by_key = _submit(ctx, pool, todo)
    done = {role: 0 for role in todo}
    ctx.progress.update(cycle=cycle, phase=f"labelling {'+'.join(roles)}",
                        labels={r: (0, len(v)) for r, v in todo.items()})
    last_commit = time.monotonic()
    for key, result in pool.results():
        role, frame_id = by_key[key]
        ctx.store.add_labels(ctx.fidelities[role], [frame_id], [result])
        done[role] += 1
        ctx.progress.update(labels={r: (done[r], len(todo[r])) for r in todo}, in_flight=pool.n_in_flight,
                            spent_delta=result.cpu_seconds, last_status=(role, result.status.value))
        if time.monotonic() - last_commit > COMMIT_EVERY_S:
            ctx.record_losses(cycle, "labelling")
            ctx.store.commit(cycle=cycle, phase="labelling")
            last_commit = time.monotonic()
    ctx.record_losses(cycle, "labelling")
    ctx.store.commit(cycle=cycle, phase="labelling")


def _submit(ctx: PhaseContext, pool: LabelingPool, todo: dict[str, np.ndarray]) -> dict[str, tuple[str, int]]:
    """Submit every frame of ``todo`` to the pool; returns task key -> (role, frame id)."""
    frames = {role: ctx.store.get_frames(ids) for role, ids in todo.items()}
    by_key: dict[str, tuple[str, int]] = {}
    for role, ids in todo.items():
        for frame_id, atoms in zip(ids, frames[role]):
            key = f"{role}-{int(frame_id)}"
            by_key[key] = (role, int(frame_id))
            pool.submit(key, atoms, ctx.fidelities[role])
    return by_key
