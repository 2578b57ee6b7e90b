"""The asynchronous pipeline's control flow, with its phases replaced by fakes on a tick clock (no Dask, no store).

The real phases run in tests/integration/test_campaign.py and the SIGKILL tests; here the timing is chosen.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from alloop.campaign.loop import pipeline
from alloop.campaign.phases.budget import Quota


class Clock:
    def __init__(self) -> None:
        self.tick = 0
        self.waits = 0

    def wait(self, futures, timeout=None):  # noqa: ANN001 (FutureWaiter.wait's signature)
        assert futures, "waited with nothing in flight"
        self.waits += 1
        self.tick += 1


class Task:
    def __init__(self, clock: Clock, ready_at: int) -> None:
        self.clock, self.ready_at = clock, ready_at
        self.future = SimpleNamespace(done=self.ready)

    def ready(self) -> bool:
        return self.clock.tick >= self.ready_at


class Labels:
    """Every label is back as soon as it is submitted."""

    def __init__(self, ctx, pool) -> None:  # noqa: ANN001
        self.submitted_roles: set[tuple[int, str]] = set()

    def submit(self, cycle: int, roles: tuple[str, ...]) -> int:
        self.submitted_roles.update((cycle, r) for r in roles)
        return 1

    def submitted(self, cycle: int, role: str) -> bool:
        return (cycle, role) in self.submitted_roles

    def complete(self, cycle: int, role: str) -> bool:
        return self.submitted(cycle, role)

    def commit(self, cycle: int) -> None:
        pass


def run_pipeline(monkeypatch, md_ticks: dict[int, int], train_ticks: dict[int, int], n_cycles: int,  # noqa: ANN001
                 late_at: int | None = None):
    """Run the pipeline; cycle k's MD is ready ``md_ticks[k]`` ticks after it starts, its training ``train_ticks[k]``;
    the deadline passes at tick ``late_at`` (None: never). ``clock.starts`` lists (tick, what started), ``clock.stopped``
    whether the deadline stopped the loop."""
    clock, marks = Clock(), []
    clock.starts = []
    monkeypatch.setattr(pipeline, "FutureWaiter", lambda: clock)
    monkeypatch.setattr(pipeline.tables, "read", lambda store, schema: {
        "cycle": np.array([c for c, _ in marks]), "phase": np.array([p for _, p in marks])} if marks else {})
    monkeypatch.setattr(pipeline, "LabelStream", Labels)

    def start_selection(ctx, cycle, budget, priority):  # noqa: ANN001 (bias B: back on the next tick)
        clock.starts.append((clock.tick, f"selection {cycle}"))
        return SimpleNamespace(cycle=cycle, task=Task(clock, clock.tick + 1))

    monkeypatch.setattr(pipeline, "start_selection", start_selection)
    monkeypatch.setattr(pipeline, "finish_selection", lambda ctx, run, budget: None)

    def start_explore(ctx, cycle, priority):  # noqa: ANN001
        clock.starts.append((clock.tick, f"MD {cycle}"))
        run = Task(clock, clock.tick + md_ticks[cycle])
        return SimpleNamespace(cycle=cycle, tasks=[run], ready=run.ready)

    def start_training(ctx, cycle, original, prefix, priority):  # noqa: ANN001
        clock.starts.append((clock.tick, f"training {cycle}"))
        return SimpleNamespace(cycle=cycle, task=Task(clock, clock.tick + train_ticks[cycle]))

    monkeypatch.setattr(pipeline, "start_explore", start_explore)
    monkeypatch.setattr(pipeline, "finish_explore", lambda ctx, run, n_cheap: 0.5)
    monkeypatch.setattr(pipeline, "start_training", start_training)
    monkeypatch.setattr(pipeline, "nothing_new_to_train", lambda ctx, cycle: None)  # every cycle brings labels
    monkeypatch.setattr(pipeline, "finish_training",  # the real one commits the model with the "trained" mark
                        lambda ctx, run, original: marks.append((run.cycle, "trained")))
    hooks = pipeline.Hooks(quota=lambda: Quota(8, 2), expensive_quota=lambda: 2,
                           mark=lambda cycle, phase, note: marks.append((cycle, phase)),
                           stop_reason=lambda cycle: None,
                           late=lambda: "deadline reached" if late_at is not None and clock.tick >= late_at else None)
    pool = SimpleNamespace(poll=lambda: [], futures=lambda: [], cancel_all=lambda: 0, drop_queued=lambda: 0,
                           n_unfinished=0)
    ctx = SimpleNamespace(store=SimpleNamespace(has_pending_changes=False), client=SimpleNamespace(cancel=lambda f: None))
    loop = pipeline.Pipeline(ctx, pool, None, hooks, n_cycles)
    outcome = loop.run()
    clock.stopped = loop.stopped
    return outcome, marks, clock


def test_md_ready_in_the_same_pass_as_the_training_before_it_does_not_stall_the_loop(monkeypatch):
    """Cycle 1's MD and cycle 0's training end together: cycle 1's labels start at once (was: a stall error)."""
    outcome, marks, _ = run_pipeline(monkeypatch, md_ticks={0: 1, 1: 4}, train_ticks={0: 3, 1: 2}, n_cycles=2)
    assert outcome == (1, "2 cycles done")
    assert marks.index((0, "trained")) < marks.index((1, "explored")) < marks.index((1, "labelled-cheap"))
    assert marks[-1] == (1, "trained")


@pytest.mark.parametrize("md1", [1, 2, 3, 4, 5, 6])
def test_every_cycle_passes_every_phase_in_order_whatever_the_timing(monkeypatch, md1):
    outcome, marks, _ = run_pipeline(monkeypatch, md_ticks={0: 1, 1: md1, 2: 2}, train_ticks={0: 3, 1: 1, 2: 2},
                                     n_cycles=3)
    assert outcome == (2, "3 cycles done")
    phases = ["explored", "labelled-cheap", "selected-expensive", "labelled-expensive", "trained"]
    for cycle in range(3):
        assert [p for c, p in marks if c == cycle] == phases
    assert marks.index((0, "trained")) < marks.index((1, "trained")) < marks.index((2, "trained"))
    assert marks.index((0, "trained")) < marks.index((2, "explored"))  # a model at most two cycles old


def test_a_loop_with_nothing_in_flight_and_nothing_to_do_raises(monkeypatch):
    """Cycle 0's training never starts (its expensive labels never come back): the guard names the bug."""
    monkeypatch.setattr(Labels, "complete", lambda self, cycle, role: role == "cheap")
    with pytest.raises(pipeline.AlloopError, match="nothing in flight"):
        run_pipeline(monkeypatch, md_ticks={0: 1}, train_ticks={0: 1}, n_cycles=1)


@pytest.mark.parametrize("late_at", [0, 1, 2, 3, 4, 5, 6])
def test_past_the_deadline_nothing_starts_and_what_runs_finishes(monkeypatch, late_at):
    """Whenever the deadline passes, no task starts from then on, every task started before it ends and is marked,
    and the loop returns the first cycle not trained, stopped (not finished)."""
    outcome, marks, clock = run_pipeline(monkeypatch, md_ticks={0: 1, 1: 3, 2: 2}, train_ticks={0: 3, 1: 1, 2: 2},
                                         n_cycles=3, late_at=late_at)
    assert clock.stopped and outcome[1] == "deadline reached"
    assert all(tick < late_at for tick, _ in clock.starts), clock.starts
    for _, what in clock.starts:
        kind, cycle = what.split()
        done = {"MD": "explored", "selection": "selected-expensive", "training": "trained"}[kind]
        assert (int(cycle), done) in marks, (what, marks)
    trained = {c for c, p in marks if p == "trained"}
    assert outcome[0] == min(set(range(3)) - trained)
