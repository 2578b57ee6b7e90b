"""The campaign's ledger in the store: which phases are done, which frames are selected, what was spent.

Everything the loop needs to resume lives in store tables (their schemas:
:mod:`alloop.store.tables`), committed with the data it describes: ``progress``
(one row per finished phase), ``selection`` (one row per frame chosen for a
label), ``bias`` and ``cycles``.

Bootstrap is cycle -1; the automatic evaluation set (``evaluation: {auto: N}``) is cycle -2, and its frames are
*held out*: :func:`selected`, :func:`labelled_ids` and :func:`spend` leave them out unless asked
(``held_out=True``), so they never count as the campaign's labels, budget or training data. A phase without its
``progress`` row is redone on resume; selected frames without a committed label are labelled (exactly once).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from alloop.labeling.result import STATUS_CODES, LabelStatus
from alloop.store import tables
from alloop.store.campaign import CampaignStore

if TYPE_CHECKING:
    from alloop.fidelity import Fidelity

BOOTSTRAP = -1
#: the automatic evaluation set's cycle: its frames' selection (role expensive) and its phases SAMPLED, LABELLED
EVALUATION = -2

#: the phases a cycle records in the ``progress`` table, in order (the bootstrap, cycle -1: SAMPLED, LABELLED,
#: TRAINED; every campaign ends with FINISHED); the driver and the pipeline mark them, resume and status read them
SAMPLED = "sampled"  # the bootstrap's perturbed structures stored and selected
EXPLORED = "explored"
LABELLED_CHEAP = "labelled-cheap"
SELECTED_EXPENSIVE = "selected-expensive"
LABELLED_EXPENSIVE = "labelled-expensive"
TRAINED = "trained"
LABELLED = "labelled"  # the bootstrap's labels (both fidelities)
FINISHED = "finished"
#: the commit phase of a run stopped at its deadline (no progress row: the campaign is not finished, a resume goes on)
STOPPED = "stopped"


def phase_done(store: CampaignStore, cycle: int, phase: str) -> bool:
    rows = tables.read(store, tables.PROGRESS)
    if not rows:
        return False
    return bool(np.any((rows["cycle"] == cycle) & (rows["phase"] == phase)))


def cycle_started(store: CampaignStore, cycle: int) -> bool:
    """Whether any phase of ``cycle`` is done (a campaign that went on to it passed the previous cycle's stop
    checks then)."""
    rows = tables.read(store, tables.PROGRESS)
    return bool(rows) and bool(np.any(rows["cycle"] == cycle))


def mark_phase(store: CampaignStore, cycle: int, phase: str, note: dict | None = None) -> None:
    """Record a finished phase and commit everything written with it."""
    tables.append(store, tables.PROGRESS, cycle=[cycle], phase=[phase], time=[time.time()])
    store.commit(cycle=cycle, phase=phase, note=note)


def last_phase(store: CampaignStore) -> tuple[int, str] | None:
    rows = tables.read(store, tables.PROGRESS)
    if not rows or rows["cycle"].size == 0:
        return None
    return int(rows["cycle"][-1]), str(rows["phase"][-1])


def finished_reason(store: CampaignStore) -> str | None:
    """Why the campaign in ``store`` finished, or None if it has not."""
    rows = tables.read(store, tables.PROGRESS)
    if not rows or not np.any(rows["phase"] == FINISHED):
        return None
    note = store.record.get("note") or {}
    return str(note.get("reason", FINISHED))


def select(store: CampaignStore, cycle: int, frame_ids: np.ndarray, role: str, reasons: list[str]) -> None:
    """Record frames chosen for a label of ``role`` (committed by the caller's mark_phase)."""
    if len(frame_ids) == 0:
        return
    tables.append(store, tables.SELECTION, cycle=np.full(len(frame_ids), cycle), frame_id=frame_ids,
                  role=[role] * len(frame_ids), reason=reasons if reasons else [""] * len(frame_ids))


def selected(store: CampaignStore, role: str, cycle: int | None = None, held_out: bool = False) -> np.ndarray:
    """Ids of the frames selected for a label of ``role`` (in ``cycle``; of every cycle but the held-out set's
    unless ``held_out``)."""
    rows = tables.read(store, tables.SELECTION)
    if not rows:
        return np.zeros(0, np.int64)
    mask = rows["role"] == role
    if cycle is not None:
        mask &= rows["cycle"] == cycle
    elif not held_out:
        mask &= rows["cycle"] != EVALUATION
    return np.unique(rows["frame_id"][mask]).astype(np.int64)


def held_out_ids(store: CampaignStore) -> np.ndarray:
    """Ids of the automatic evaluation set's frames: never trained on, selected from or counted in the budget."""
    return selected(store, "expensive", EVALUATION)


def labelled_ids(store: CampaignStore, fidelity: Fidelity, ok_only: bool = False, held_out: bool = False
                 ) -> np.ndarray:
    """Ids of the frames with a label at ``fidelity`` (``ok_only``: a successful one); the held-out frames only with
    ``held_out`` (the label phase, which must not label them twice)."""
    if fidelity.hash() not in store.fidelities():
        return np.zeros(0, np.int64)
    table = store.label_columns(fidelity.hash(), ["frame_id", "status"])
    ids = table["frame_id"] if not ok_only else table["frame_id"][table["status"] == STATUS_CODES[LabelStatus.OK]]
    ids = np.asarray(ids, np.int64)
    return ids if held_out else ids[~np.isin(ids, held_out_ids(store))]


@dataclass
class Spend:
    """Labels and CPU seconds spent per role."""

    labels: dict[str, int]
    cpu_seconds: dict[str, float]
    failures: dict[str, int]

    @property
    def total_cpu(self) -> float:
        return float(sum(self.cpu_seconds.values()))

    def mean_cost(self, role: str, default: float) -> float:
        n = self.labels.get(role, 0)
        return self.cpu_seconds[role] / n if n else default


def spend(store: CampaignStore, fidelities: dict[str, Fidelity], held_out: bool = False) -> Spend:
    """Labels, CPU seconds and failures per role: the campaign's (the held-out set's labels apart), or with
    ``held_out`` those of the held-out set alone (its cost, counted separately)."""
    labels, cpu, failures = {}, {}, {}
    ok = STATUS_CODES[LabelStatus.OK]
    kept = held_out_ids(store)
    for role, fid in fidelities.items():
        if fid.hash() in store.fidelities():
            table = store.label_columns(fid.hash(), ["frame_id", "status", "cpu_seconds"])
            rows = np.isin(table["frame_id"], kept) == held_out
            labels[role] = int(rows.sum())
            cpu[role] = float(np.nansum(table["cpu_seconds"][rows]))
            failures[role] = int(np.sum(table["status"][rows] != ok))
        else:
            labels[role], cpu[role], failures[role] = 0, 0.0, 0
    return Spend(labels, cpu, failures)
