"""Label many frames on a Dask cluster: bounded in-flight work, priorities, worker deaths survived.

``LabelingPool`` keeps about ``tasks_per_slot`` tasks per worker slot on the
cluster and holds the rest in a local queue, refilling as tasks complete
(``distributed.as_completed``), so the driver can keep submitting, re-prioritise
and stream results to the single writer while the cluster works. Higher
``priority`` runs first, in the local queue and on the scheduler; by default
expensive methods outrank cheap ones (``default_priority``).

Short labels go in batches: once a fidelity's labels are known to take less
than ``batch_seconds`` (default 2; the mean wall time of those back so far; 0
sends one task per label), consecutive
queued frames of that fidelity and priority share one task of about that
length (each still labelled on its own; fewer tasks means less scheduler and
client work per label). A batch never holds more than its share of the queue,
so every place in flight gets work, unless that share would take less than
``min_task_seconds`` (0.25 s): tiny labels (GFN-xTB, ~2 ms) go in batches of
``MAX_BATCH`` to the end of the queue instead of trickling out one by one
(500 xTB labels of water: 12 tasks on 2 slots, 25 without this floor).

Task keys are deterministic: ``label-<fidelity hash>-<frame key>`` (a retry
appends ``-retry<n>``; a batch appends ``+<n more frames>`` to its first
frame's key). Workers only compute and return LabelResults; they write nothing.
A worker that dies while holding a task (crash, OOM kill, SIGKILL) costs each
frame of that task one attempt: it is resubmitted alone (never batched again,
and run alone on the cluster: a retry waits until nothing else is in flight and
nothing follows it until it is back, since Dask charges the death to every task
queued on the dead worker too; so a frame that kills workers cannot take others
down with it) up to ``max_retries`` times, after which the frame gets a ``failed`` LabelResult
("worker died N times ...") instead of an exception. Physics failures come back as data from
the labeller itself. An exception raised inside a task (a programming error)
is re-raised from ``results()``/``poll()`` with the frame key attached.

The pool is driven from one thread (the campaign driver).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ase import Atoms

from alloop.errors import FidelityError
from alloop.fidelity import Fidelity
from alloop.labeling.base import Labeler
from alloop.labeling.factory import labeler_for
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.signals import raise_if_stopped

#: default scheduling priority by method: expensive labels first
_METHOD_PRIORITY = {"hf": 0, "mp2": 20, "ccsd": 30, "ccsd(t)": 40}
_DFT_PRIORITY = 10
_XTB_PRIORITY = -10
#: how often (seconds) the number of worker slots is re-read from the scheduler (a round trip to it; workers
#: that join later, e.g. a replacement batch job, get tasks within this time)
_SLOTS_REFRESH_S = 5.0
#: most frames in one batch task
MAX_BATCH = 64
#: a batch may exceed its share of the queue up to this many seconds of labels (a smaller task is not worth it)
MIN_TASK_SECONDS = 0.25


def default_priority(fidelity: Fidelity) -> int:
    """xTB -10 < HF 0 < DFT 10 < MP2 20 < CCSD 30 < CCSD(T) 40."""
    if fidelity.family == "xtb":
        return _XTB_PRIORITY
    return _DFT_PRIORITY if fidelity.is_dft else _METHOD_PRIORITY[fidelity.method]


def task_key(fidelity_hash: str, frame_key: str, attempt: int = 0) -> str:
    """The Dask key of one label attempt."""
    base = f"label-{fidelity_hash}-{frame_key}"
    return base if attempt == 0 else f"{base}-retry{attempt}"


def batch_key(fidelity_hash: str, frame_key: str, size: int) -> str:
    """The Dask key of a first attempt labelling ``size`` frames, the first of them ``frame_key``."""
    base = task_key(fidelity_hash, frame_key)
    return base if size == 1 else f"{base}+{size - 1}"


def _run_labels(labeler: Labeler, structures: list[Atoms]) -> list[LabelResult]:
    """The task a worker runs: label each structure in turn, return the results (compute only)."""
    return [labeler.label(atoms) for atoms in structures]


@dataclass(order=True)
class _Task:
    sort_key: tuple[int, int]
    frame_key: str = field(compare=False)
    atoms: Atoms = field(compare=False)
    labeler: Labeler = field(compare=False)
    fidelity_hash: str = field(compare=False)
    priority: int = field(compare=False)
    attempt: int = field(default=0, compare=False)
    deaths: int = field(default=0, compare=False)


class LabelingPool:
    """Submit (frame key, structure, fidelity); iterate (frame key, LabelResult) as labels complete."""

    def __init__(
        self,
        client,  # noqa: ANN001 (distributed.Client)
        *,
        threads_per_task: int = 1,
        tasks_per_slot: int = 2,
        max_retries: int = 2,
        labeler_factory: Callable[[Fidelity], Labeler] | None = None,
        batch_seconds: float = 2.0,
        min_task_seconds: float = MIN_TASK_SECONDS,
    ) -> None:
        from distributed import as_completed

        if tasks_per_slot < 1 or threads_per_task < 1 or not min(max_retries, batch_seconds, min_task_seconds) >= 0:
            raise ValueError("tasks_per_slot and threads_per_task must be >= 1, max_retries, batch_seconds and "
                             "min_task_seconds >= 0")
        self.client = client
        self.threads_per_task = threads_per_task
        self.tasks_per_slot = tasks_per_slot
        self.max_retries = max_retries
        self.batch_seconds = float(batch_seconds)
        self.min_task_seconds = float(min_task_seconds)
        self._wall: dict[str, list[float]] = {}  # fidelity hash -> [sum of label wall s, labels] of results back
        self._factory = labeler_factory or (lambda fid: labeler_for(fid, threads=threads_per_task))
        self._labelers: dict[str, Labeler] = {}
        self._checked: set[tuple[str, tuple[int, ...]]] = set()  # (fidelity hash, sorted numbers) known to pass
        self._pending: list[_Task] = []  # heap ordered by (-priority, submission order)
        self._futures: dict[str, tuple[object, list[_Task]]] = {}  # dask key -> (future, its frames' tasks)
        self._active: set[tuple[str, str]] = set()  # (frame key, fidelity hash) not yet finished
        self._seq = itertools.count()
        self._ac = as_completed([], with_results=False)
        self._slots = 1
        self._slots_read = -float("inf")
        #: worker deaths seen by this pool's tasks (each one cost a task an attempt)
        self.worker_deaths = 0
        #: tasks sent to the cluster (a batch is one task)
        self.tasks_sent = 0

    # ----------------------------------------------------------------- submit
    def labeler_for(self, fidelity: Fidelity) -> Labeler:
        """The labeller used for this fidelity (built once; FidelityError if it has no gradients)."""
        h = fidelity.hash()
        if h not in self._labelers:
            self._labelers[h] = self._factory(fidelity)
        return self._labelers[h]

    def check(self, atoms: Atoms, fidelity: Fidelity) -> None:
        """Raise FidelityError if this structure cannot be labelled at this fidelity."""
        if not isinstance(atoms, Atoms):
            raise TypeError(f"expected ase.Atoms, not {type(atoms).__name__}")
        self.labeler_for(fidelity)
        fidelity.check_periodicity(atoms.pbc, atoms.cell.array)
        composition = (fidelity.hash(), tuple(sorted(int(z) for z in atoms.numbers)))
        if composition not in self._checked:  # the check reads basis files: once per composition, not per frame
            fidelity.check_structure(atoms.numbers)
            self._checked.add(composition)

    def submit(self, key: str, atoms: Atoms, fidelity: Fidelity, priority: int | None = None) -> None:
        """Queue one label; refused up front (FidelityError) if the fidelity cannot describe ``atoms``."""
        self._queue(key, atoms, fidelity, priority)
        self._fill()

    def submit_many(self, items: Iterable[tuple[str, Atoms]], fidelity: Fidelity, priority: int | None = None) -> None:
        """Queue several labels, then send what fits in flight (so short ones can share tasks from the start)."""
        for key, atoms in items:
            self._queue(key, atoms, fidelity, priority)
        self._fill()

    def _queue(self, key: str, atoms: Atoms, fidelity: Fidelity, priority: int | None) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError(f"frame key must be a non-empty string, not {key!r}")
        self.check(atoms, fidelity)
        ident = (key, fidelity.hash())
        if ident in self._active:
            raise ValueError(f"frame '{key}' is already queued at fidelity '{fidelity.name}'")
        prio = default_priority(fidelity) if priority is None else int(priority)
        task = _Task((-prio, next(self._seq)), key, atoms.copy(), self.labeler_for(fidelity), ident[1], prio)
        self._active.add(ident)
        heapq.heappush(self._pending, task)

    # ---------------------------------------------------------------- results
    @property
    def n_in_flight(self) -> int:
        """Tasks on the cluster (queued or running there)."""
        return len(self._futures)

    @property
    def n_pending(self) -> int:
        """Tasks waiting in the local queue for a free place in flight."""
        return len(self._pending)

    @property
    def n_unfinished(self) -> int:
        """Labels submitted and not yet returned (queued, in flight, or waiting for a retry)."""
        return len(self._active)

    def futures(self) -> list:
        """The Dask futures of the labels in flight."""
        return [f for f, _ in self._futures.values()]

    def queued_keys(self) -> list[str]:
        """Frame keys of the local queue, in the order they will go to the cluster."""
        return [t.frame_key for t in sorted(self._pending)]

    def poll(self) -> list[tuple[str, LabelResult]]:
        """Results completed since the last call, without waiting."""
        out: list[tuple[str, LabelResult]] = []
        done = self._ac.next_batch(block=False) if not self._ac.is_empty() else []
        finished = [f for f in done if f.key in self._futures and f.status == "finished"]
        values = dict(zip((f.key for f in finished), self.client.gather(finished), strict=True)) if finished else {}
        for future in done:  # one gather for every finished task (one round trip, not one per task)
            out.extend(self._handle(future, values.get(future.key)))
        self._fill()
        return out

    def results(self) -> Iterator[tuple[str, LabelResult]]:
        """Yield (frame key, LabelResult) as labels complete, until nothing is queued or in flight.

        New work may be submitted between iterations; it is picked up.
        """
        while True:
            raise_if_stopped()
            self._fill()
            if not self._futures:
                return
            future = next(self._ac)
            yield from self._handle(future)

    def drop_queued(self) -> int:
        """Drop the local queue (labels not sent to the cluster yet); those in flight go on. Returns how many."""
        for task in self._pending:
            self._active.discard((task.frame_key, task.fidelity_hash))
        dropped = len(self._pending)
        self._pending.clear()
        return dropped

    def cancel_all(self) -> int:
        """Drop the local queue and cancel every task in flight; returns how many labels were dropped."""
        from distributed import as_completed

        dropped = len(self._pending) + sum(len(tasks) for _, tasks in self._futures.values())
        futures = [f for f, _ in self._futures.values()]
        self._pending.clear()
        self._futures.clear()
        self._active.clear()
        if futures:
            self.client.cancel(futures)
        self._ac = as_completed([], with_results=False)
        return dropped

    # --------------------------------------------------------------- internals
    def _capacity(self) -> int:
        now = time.monotonic()
        if now - self._slots_read > _SLOTS_REFRESH_S:
            self._slots = max(1, sum(self.client.nthreads().values()))
            self._slots_read = now
        return self.tasks_per_slot * self._slots

    def _fill(self) -> None:
        if not self._pending:
            return
        capacity = self._capacity()
        batches: list[list[_Task]] = []
        while self._pending and len(self._futures) + len(batches) < capacity:
            if (self._futures or batches) and (self._pending[0].attempt or self._retry_in_flight()):
                break  # a retry runs alone on the cluster
            batch = [heapq.heappop(self._pending)]
            size = self._batch_size(batch[0], capacity)
            while len(batch) < size and self._pending and _batchable(batch[0], self._pending[0]):
                batch.append(heapq.heappop(self._pending))
            batches.append(batch)
            if batch[0].attempt:
                break
        for _, group in itertools.groupby(batches, key=lambda b: b[0].priority):
            self._send(list(group))

    def _send(self, batches: list[list[_Task]]) -> None:
        """Submit these batches (of one priority) in one message to the scheduler."""
        keys = [task_key(b[0].fidelity_hash, b[0].frame_key, b[0].attempt) if b[0].attempt
                else batch_key(b[0].fidelity_hash, b[0].frame_key, len(b)) for b in batches]
        futures = self.client.map(_run_labels, [b[0].labeler for b in batches], [[t.atoms for t in b] for b in batches],
                                  key=keys, priority=batches[0][0].priority, pure=False)
        for key, future, batch in zip(keys, futures, batches, strict=True):
            self._futures[key] = (future, batch)
            self._ac.add(future)
        self.tasks_sent += len(batches)

    def _retry_in_flight(self) -> bool:
        return any(batch[0].attempt for _, batch in self._futures.values())

    def _batch_size(self, task: _Task, capacity: int) -> int:
        """How many frames go with ``task``: a batch of about ``batch_seconds``, at most its share of the queue
        unless that share is shorter than ``min_task_seconds``."""
        wall, n = self._wall.get(task.fidelity_hash, (0.0, 0))
        if task.attempt or not self.batch_seconds or not n or wall <= 0:
            return 1
        share = -(-(len(self._pending) + 1) // capacity)
        floor = int(self.min_task_seconds * n / wall)
        return max(1, min(int(self.batch_seconds * n / wall), max(share, floor), MAX_BATCH))

    def _handle(self, future, results: list[LabelResult] | None = None) -> list[tuple[str, LabelResult]]:  # noqa: ANN001
        """The (frame key, result) pairs of a completed task (``results``: its value, when already gathered)."""
        entry = self._futures.pop(future.key, None)
        if entry is None:  # cancelled by cancel_all
            return []
        tasks = entry[1]
        status = future.status
        if status == "finished":
            if results is None:
                results = future.result()
            future.release()
            return [self._finish(task, result) for task, result in zip(tasks, results, strict=True)]
        if status == "error":
            exc = future.exception()
            future.release()
            from distributed.scheduler import KilledWorker

            if not isinstance(exc, KilledWorker):
                for task in tasks:
                    self._active.discard((task.frame_key, task.fidelity_hash))
                if hasattr(exc, "add_note"):
                    frames = ", ".join(f"'{t.frame_key}'" for t in tasks)
                    exc.add_note(f"while labelling frame(s) {frames} (task {future.key})")
                raise exc
            return [r for task in tasks for r in self._retry_or_fail(task, exc.allowed_failures + 1, "worker died")]
        future.release()  # cancelled or lost without our asking: the scheduler dropped it
        return [r for task in tasks for r in self._retry_or_fail(task, 0, f"task {status} by the scheduler")]

    def _retry_or_fail(self, task: _Task, deaths: int, what: str) -> list[tuple[str, LabelResult]]:
        task.deaths += deaths
        self.worker_deaths += deaths
        if task.attempt < self.max_retries:
            task.attempt += 1
            heapq.heappush(self._pending, task)
            return []
        fid = self._labelers[task.fidelity_hash].fidelity
        if task.deaths:
            reason = f"worker died {task.deaths} times while labelling this frame ({task.attempt + 1} attempts)"
        else:
            reason = f"{what} ({task.attempt + 1} attempts)"
        result = LabelResult.failure(
            len(task.atoms), LabelStatus.FAILED, reason, fidelity_name=fid.name, fidelity_hash=task.fidelity_hash
        )
        return [self._finish(task, result)]

    def _finish(self, task: _Task, result: LabelResult) -> tuple[str, LabelResult]:
        self._active.discard((task.frame_key, task.fidelity_hash))
        if result.wall_seconds > 0:
            seen = self._wall.setdefault(task.fidelity_hash, [0.0, 0])
            seen[0] += result.wall_seconds
            seen[1] += 1
        return task.frame_key, result


def _batchable(first: _Task, other: _Task) -> bool:
    """Whether ``other`` may share ``first``'s task: same fidelity and priority, both first attempts."""
    return (other.fidelity_hash == first.fidelity_hash and other.priority == first.priority
            and not first.attempt and not other.attempt)


def label_all(
    client,  # noqa: ANN001 (distributed.Client)
    items: Iterable[tuple[str, Atoms]],
    fidelity: Fidelity,
    *,
    priority: int | None = None,
    on_result: Callable[[str, LabelResult], None] | None = None,
    **pool_options: Any,
) -> dict[str, LabelResult]:
    """Label every (key, structure) at ``fidelity``; returns results in input order.

    Every structure is checked before anything is submitted (FidelityError
    names the first one that cannot be labelled). ``on_result`` is called as
    each label completes (progress, streaming to a store).
    """
    items = list(items)
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        raise ValueError("frame keys must be unique")
    pool = LabelingPool(client, **pool_options)
    for key, atoms in items:
        try:
            pool.check(atoms, fidelity)
        except FidelityError as exc:
            raise FidelityError(f"frame '{key}': {exc}") from None
    pool.submit_many(items, fidelity, priority)
    done: dict[str, LabelResult] = {}
    for key, result in pool.results():
        done[key] = result
        if on_result is not None:
            on_result(key, result)
    return {k: done[k] for k in keys}
