"""The asynchronous loop: the phases of successive cycles overlap; nothing waits but for its own inputs.

Every cycle still passes explored -> labelled-cheap -> selected-expensive ->
labelled-expensive -> trained, and each mark is committed with its data by the
driver (the store's single writer), so a run killed at any instant resumes
exactly as a synchronous one does. Only the moment a phase may start changes:

- cycle k explores once cycle k-1 has explored (its replicas continue from
  those states) and cycle k-2's model is committed (a cycle explores with a
  model at most two cycles old), if the label budget (counting frames selected
  and not labelled yet) leaves it cheap labels;
- its cheap labels go to the labelling pool as soon as its frames are in, its
  expensive selection (bias B, a task on a worker) as soon as they are back, and
  its expensive labels at once;
- its training starts when its expensive labels are back and cycle k-1's model
  is committed (one training at a time: each continues the previous model).

MD, bias and training tasks outrank labels on the scheduler (they are on the
critical path). The loop waits for whichever task ends first and then advances
every cycle it can. A stop rule that holds once a model is committed ends the
campaign: labels and MD still in flight are dropped (nothing of theirs was
committed; a resumed run would redo them). Once the deadline has passed
(``Hooks.late``) nothing new starts: labels not sent to the cluster yet are
dropped, the tasks in flight (labels, MD, selection, training) finish and are
committed as usual, and then the loop returns with :attr:`Pipeline.stopped` set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from alloop.campaign.execution.labeling_pool import LabelingPool
from alloop.campaign.execution.taskrun import FutureWaiter
from alloop.campaign.loop.heap import release_freed_memory
from alloop.campaign.phases import original as originals
from alloop.campaign.phases.budget import Quota
from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.explore import ExploreRun, finish_explore, start_explore
from alloop.campaign.phases.label import LabelStream
from alloop.campaign.phases.retrain import nothing_new as nothing_new_to_train
from alloop.campaign.phases.retrain import skip_training
from alloop.campaign.phases.select_expensive import SelectionRun, finish_selection, start_selection
from alloop.campaign.phases.train import TrainingRun, finish_training, start_training
from alloop.errors import AlloopError
from alloop.signals import raise_if_stopped
from alloop.store import ledger, tables

#: scheduler priority of MD, bias and training tasks (labels: 0 to 40, see labeling_pool.default_priority)
CRITICAL_PRIORITY = 100
#: seconds the loop waits for a task to end before it looks again (commits and progress in between)
WAIT_S = 1.0


@dataclass
class Hooks:
    """What the pipeline asks of the driver: label quotas, phase marks, stop rules."""

    quota: Callable[[], Quota]
    expensive_quota: Callable[[], int]
    mark: Callable[[int, str, dict | None], None]
    stop_reason: Callable[[int], str | None]  # after a cycle's model is committed (label budget aside)
    late: Callable[[], str | None] = lambda: None  # the deadline's reason once it has passed: start nothing new


@dataclass
class Pipeline:
    """Cycles 0..n_cycles-1 of an asynchronous campaign; :meth:`run` returns (last cycle, reason to finish)."""

    ctx: PhaseContext
    pool: LabelingPool
    original: originals.Original | None
    hooks: Hooks
    n_cycles: int
    md: ExploreRun | None = None
    selection: SelectionRun | None = None
    training: TrainingRun | None = None
    last_cycle: int = field(init=False)
    budget_reason: str = ""
    stopped: bool = False  # run() returned because the deadline passed (the campaign is not finished)
    _marks: set[tuple[int, str]] | None = None
    _steps: int = 0  # phases marked and tasks started so far: what tells an advancing loop from a stalled one

    def __post_init__(self) -> None:
        self.last_cycle = self.n_cycles - 1
        self.labels = LabelStream(self.ctx, self.pool)
        self._waiter = FutureWaiter()

    def run(self) -> tuple[int, str]:
        try:
            while True:
                raise_if_stopped()
                steps = self._steps
                outcome = self._advance()
                if outcome is not None:
                    return outcome
                if self._steps == steps:  # nothing started or finished: wait for a task to end
                    self._wait()
        finally:
            self._drop_in_flight()

    # ------------------------------------------------------------------ steps
    def _advance(self) -> tuple[int, str] | None:
        """Start and finish whatever can be; returns (cycle, reason) once the campaign is over (or stopped)."""
        if self.hooks.late() is not None:
            self.pool.drop_queued()  # before poll() sends more
        for key, result in self.pool.poll():
            self.labels.add(key, result)
        for cycle in range(self.last_cycle + 1):
            if self._done(cycle, ledger.TRAINED):
                continue
            outcome = self._advance_cycle(cycle)
            if outcome is not None:
                return outcome
            if not self._done(cycle, ledger.EXPLORED):
                break  # later cycles cannot explore before this one
        if self.last_cycle < 0 or self._done(self.last_cycle, ledger.TRAINED):
            return self.last_cycle, self.budget_reason or f"{self.n_cycles} cycles done"
        return self._stop_when_idle()

    def _stop_when_idle(self) -> tuple[int, str] | None:
        """(the first cycle not trained, the deadline's reason) once the deadline has passed and nothing is in
        flight any more (the labels that came back committed); else None."""
        reason = self.hooks.late()
        if reason is None or self.pool.n_unfinished or any((self.md, self.selection, self.training)):
            return None
        cycle = next(c for c in range(self.last_cycle + 1) if not self._done(c, ledger.TRAINED))
        if self.ctx.store.has_pending_changes:
            self.labels.commit(cycle)
        self.stopped = True
        return cycle, reason

    def _advance_cycle(self, cycle: int) -> tuple[int, str] | None:
        if not self._done(cycle, ledger.EXPLORED):
            self._explore(cycle)
            return None
        cheap, expensive = ledger.LABELLED_CHEAP, ledger.LABELLED_EXPENSIVE
        if not self._done(cycle, cheap) and not self._labels_back(cycle, "cheap", cheap):
            return None
        if not self._done(cycle, ledger.SELECTED_EXPENSIVE) and not self._selected(cycle):
            return None
        if not self._done(cycle, expensive) and not self._labels_back(cycle, "expensive", expensive):
            return None
        return self._train(cycle)

    def _explore(self, cycle: int) -> None:
        if self.md is not None:
            if self.md.cycle == cycle and self.md.ready():
                run, self.md = self.md, None
                rate = finish_explore(self.ctx, run, self.hooks.quota().n_cheap)
                self._mark(cycle, ledger.EXPLORED, {"flag_rate": rate})
            return
        if (cycle >= 2 and not self._done(cycle - 2, ledger.TRAINED)) or self.hooks.late() is not None:
            return  # no model at most two cycles old yet, or past the deadline
        quota = self.hooks.quota()
        if quota.n_cheap == 0:
            self.last_cycle, self.budget_reason = cycle - 1, quota.reason or "labelling budget spent"
            return
        self.md = start_explore(self.ctx, cycle, priority=CRITICAL_PRIORITY)
        self._steps += 1

    def _selected(self, cycle: int) -> bool:
        """Start (once) the cycle's expensive selection; mark it when its bias B is back. Whether it is marked."""
        if self.selection is None:
            if self.hooks.late() is not None:
                return False
            self.selection = start_selection(self.ctx, cycle, self.hooks.expensive_quota(), CRITICAL_PRIORITY)
            self._steps += 1
            if self.selection is None:  # nothing to choose from
                self._mark(cycle, ledger.SELECTED_EXPENSIVE, None)
                return True
        if self.selection.cycle != cycle or not self.selection.task.ready():
            return False
        run, self.selection = self.selection, None
        finish_selection(self.ctx, run, self.hooks.expensive_quota())
        self._mark(cycle, ledger.SELECTED_EXPENSIVE, None)
        return True

    def _labels_back(self, cycle: int, role: str, phase: str) -> bool:
        """Submit (once) the cycle's labels of ``role``; mark ``phase`` when all are back. Whether it is marked."""
        if not self.labels.submitted(cycle, role):
            if self.hooks.late() is not None:
                return False
            self.labels.submit(cycle, (role,))
            self._steps += 1
        if not self.labels.complete(cycle, role):
            return False
        self.labels.commit(cycle)
        self._mark(cycle, phase, None)
        return True

    def _train(self, cycle: int) -> tuple[int, str] | None:
        if self.training is None:
            if self.hooks.late() is None and (cycle == 0 or self._done(cycle - 1, ledger.TRAINED)):
                unchanged = nothing_new_to_train(self.ctx, cycle)
                if unchanged is not None:  # marks the cycle trained, keeping its model
                    skip_training(self.ctx, cycle, self.original, unchanged)
                    self._marks = None
                    self._steps += 1
                    reason = self.hooks.stop_reason(cycle)
                    return (cycle, reason) if reason is not None else None
                self.training = start_training(self.ctx, cycle, self.original, prefix=f"[cycle {cycle} training] ",
                                               priority=CRITICAL_PRIORITY)
                self._steps += 1
            return None
        if self.training.cycle != cycle or not self.training.task.ready():
            return None
        run, self.training = self.training, None
        finish_training(self.ctx, run, self.original)  # commits the model with the cycle's "trained" mark
        release_freed_memory()
        self._marks = None
        self._steps += 1
        reason = self.hooks.stop_reason(cycle)
        return (cycle, reason) if reason is not None else None

    # -------------------------------------------------------------- plumbing
    def _done(self, cycle: int, phase: str) -> bool:
        """Whether (cycle, phase) is marked in the store (the progress table, read again after each mark)."""
        if self._marks is None:
            rows = tables.read(self.ctx.store, tables.PROGRESS)
            self._marks = set(zip(map(int, rows["cycle"]), map(str, rows["phase"]), strict=True)) if rows else set()
        return (cycle, phase) in self._marks

    def _mark(self, cycle: int, phase: str, note: dict | None) -> None:
        self.hooks.mark(cycle, phase, note)
        self._marks = None
        self._steps += 1

    def _wait(self) -> None:
        """Until a label, MD or training task ends (or WAIT_S)."""
        futures = list(self.pool.futures())  # a finished label leaves this list when the next pass collects it
        if self.md is not None:  # segments already back wait for the others: not what to wait on
            running = [t.future for t in self.md.tasks if not t.future.done()]
            if not running:
                return  # every segment is back: the next pass collects them
            futures += running
        for run in (self.selection, self.training):
            if run is not None:
                futures.append(run.task.future)
        if not futures:  # a pass that advanced nothing left every unfinished cycle waiting on nothing: a bug
            raise AlloopError("the asynchronous loop has nothing in flight and cannot advance (a bug: please "
                              "report it; everything committed is kept and alloop resume continues from it)")
        self._waiter.wait(futures, WAIT_S)

    def _drop_in_flight(self) -> None:
        self.pool.cancel_all()
        tasks = ([*self.md.tasks] if self.md is not None else []) + [
            run.task for run in (self.selection, self.training) if run is not None]
        if tasks:
            self.ctx.client.cancel([t.future for t in tasks])
        if self.training is not None:
            from alloop.campaign.execution.train_request import TRAIN_TOPIC

            self.ctx.client.unsubscribe_topic(TRAIN_TOPIC)
        self.md = self.selection = self.training = None
