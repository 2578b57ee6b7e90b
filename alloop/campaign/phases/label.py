"""The label phase: every frame selected in a cycle for a role, without a committed label yet, gets one.

Labels run on the :class:`~alloop.campaign.execution.labeling_pool.LabelingPool`; results are
written to the store as they arrive and committed every ``COMMIT_EVERY_S`` seconds
and at the end, so a resumed campaign labels only what has no committed label
(never a frame twice). A commit with new rows costs the driver about 30 ms
(Zarr appends and fsync); every 15 s keeps that near 0.2 % of a core, and a
crash recomputes at most 15 s of labelling per worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from alloop.campaign.execution.labeling_pool import LabelingPool
from alloop.campaign.phases.context import PhaseContext
from alloop.store import ledger
from alloop.store.coverage import BasinRecorder

COMMIT_EVERY_S = 15.0


def unlabelled_selection(ctx: PhaseContext, cycle: int, roles: tuple[str, ...]) -> dict[str, np.ndarray]:
    """role -> ids of the frames selected in ``cycle`` for that role that have no label at its fidelity."""
    todo: dict[str, np.ndarray] = {}
    for role in roles:
        chosen = ledger.selected(ctx.store, role, cycle)
        todo[role] = np.setdiff1d(chosen, ledger.labelled_ids(ctx.store, ctx.fidelities[role], held_out=True))
    return todo


def label(ctx: PhaseContext, pool: LabelingPool, cycle: int, roles: tuple[str, ...],
          stop: Callable[[], object] | None = None) -> bool:
    """Label every frame selected in ``cycle`` for ``roles`` that has no committed label yet; whether all are.

    Once ``stop()`` is truthy (asked as each label comes back), the labels not sent to the cluster yet are dropped
    (they stay selected without a label, for a resumed run) and those in flight finish."""
    stream = LabelStream(ctx, pool)
    if stream.submit(cycle, roles) == 0:
        return True
    dropped = 0
    for key, result in pool.results():
        stream.add(key, result)
        if stop is not None and stop():
            dropped += pool.drop_queued()
    stream.commit(cycle)
    return dropped == 0


class LabelStream:
    """Labels of several (cycle, role) selections in flight on one pool at once, written to the store as they come
    and committed every ``COMMIT_EVERY_S`` seconds (the asynchronous loop's labelling)."""

    def __init__(self, ctx: PhaseContext, pool: LabelingPool) -> None:
        self.ctx, self.pool = ctx, pool
        self.basins = BasinRecorder(ctx.store)
        self.by_key: dict[str, tuple[int, str, int]] = {}  # pool key -> (cycle, role, frame id)
        self.outstanding: dict[tuple[int, str], int] = {}  # (cycle, role) -> labels not back yet
        self.totals: dict[tuple[int, str], int] = {}
        self.last_commit = time.monotonic()

    def submit(self, cycle: int, roles: tuple[str, ...]) -> int:
        """Submit the frames selected in ``cycle`` for ``roles`` without a committed label; returns how many."""
        todo = unlabelled_selection(self.ctx, cycle, roles)
        for role, ids in todo.items():
            self.outstanding[(cycle, role)] = len(ids)
            self.totals[(cycle, role)] = len(ids)
            for key, (_, frame_id) in _submit(self.ctx, self.pool, {role: ids}).items():
                self.by_key[key] = (cycle, role, frame_id)
        self._show(cycle)
        return sum(len(v) for v in todo.values())

    def submitted(self, cycle: int, role: str) -> bool:
        return (cycle, role) in self.outstanding

    def complete(self, cycle: int, role: str) -> bool:
        """Whether every label of (cycle, role) submitted here is back (written, not necessarily committed)."""
        return self.outstanding.get((cycle, role), 1) == 0

    def add(self, key: str, result) -> None:  # noqa: ANN001 (LabelResult)
        """Write one finished label; commit if the last commit is ``COMMIT_EVERY_S`` old."""
        cycle, role, frame_id = self.by_key.pop(key)
        self.ctx.store.add_labels(self.ctx.fidelities[role], [frame_id], [result])
        self.basins.add(frame_id)
        self.outstanding[(cycle, role)] -= 1
        self._show(cycle, spent_delta=result.cpu_seconds, last_status=(role, result.status.value))
        if time.monotonic() - self.last_commit > COMMIT_EVERY_S:
            self.commit(cycle)

    def commit(self, cycle: int) -> None:
        self.basins.flush()
        self.ctx.record_losses(cycle, "labelling")
        self.ctx.store.commit(cycle=cycle, phase="labelling")
        self.last_commit = time.monotonic()

    def _show(self, cycle: int, **extra: Any) -> None:
        labels = {r: (self.totals[(c, r)] - n, self.totals[(c, r)]) for (c, r), n in self.outstanding.items()
                  if c == cycle}
        self.ctx.progress.update(cycle=cycle, phase=f"labelling {'+'.join(labels)}", labels=labels,
                                 in_flight=self.pool.n_in_flight, **extra)


def _submit(ctx: PhaseContext, pool: LabelingPool, todo: dict[str, np.ndarray]) -> dict[str, tuple[str, int]]:
    """Submit every frame of ``todo`` to the pool; returns task key -> (role, frame id)."""
    frames = {role: ctx.store.get_frames(ids) for role, ids in todo.items()}
    by_key: dict[str, tuple[str, int]] = {}
    for role, ids in todo.items():
        keys = [f"{role}-{int(frame_id)}" for frame_id in ids]
        by_key.update((key, (role, int(frame_id))) for key, frame_id in zip(keys, ids, strict=True))
        pool.submit_many(zip(keys, frames[role], strict=True), ctx.fidelities[role])
    return by_key
