"""What the dashboard shows, read from a campaign store: :func:`read_snapshot`.

Every panel is a table of plain columns (lists of the same length, NaN where a value is unknown), ready for a
plot and computed from committed data only:

- ``learning``: one row per trained model: the cumulative labelling CPU seconds of both fidelities when it was
  trained, its validation force MAE and its force MAE on the evaluation set (eV/A);
- ``predicted``: one row per cycle with predicted errors (:func:`alloop.evaluation.predicted_errors.status`): the MD
  frames' mean predicted force error, and the evaluation set's predicted and measured force MAE (eV/A);
- ``coverage``: one row per model scored for coverage: the share of the evaluation set within the Q-residual limit
  and the median Q / limit;
- ``flags``: one row per recorded cycle: MD frames and the share flagged;
- ``labels``: one row per cycle and fidelity: ok and failed labels of the frames recorded in that cycle;
- ``timeline``: one row per finished phase (``progress`` table): it spans from the previous finished phase to its
  own end (the first from its own end), in Unix seconds;
- ``budget``: what is left of the campaign's limits (:mod:`alloop.dashboard.budget`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from alloop.campaign import status_summary
from alloop.dashboard.budget import budget_left, role_of_hash
from alloop.evaluation import predicted_errors
from alloop.evaluation.records import cycles_table
from alloop.labeling.result import STATUS_CODES, LabelStatus
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.ledger import finished_reason

Columns = dict[str, list[Any]]


def read_snapshot(store: CampaignStore) -> dict[str, Any]:
    """Everything the page shows of ``store`` (see the module's docstring), with its commit and campaign name."""
    record = store.record
    reason = finished_reason(store)
    cycles = cycles_table(store)
    roles = role_of_hash(store)
    return {
        "store": str(store.path),
        "name": store.config.get("name"),
        "commit": {k: record.get(k) for k in ("seq", "time", "time_unix", "cycle", "phase")},
        "state": f"finished: {reason}" if reason else "running or stopped",
        "learning": learning_curve(cycles),
        "predicted": predicted(store),
        "coverage": coverage(store),
        "flags": flags(cycles),
        "labels": labels_per_cycle(store, roles),
        "timeline": timeline(store),
        "budget": budget_left(store, cycles),
    }


def cycle_name(cycle: int | None) -> str:
    """``bootstrap`` for cycle -1, ``-`` for none, else ``cycle N``."""
    if cycle is None:
        return "-"
    return "bootstrap" if int(cycle) < 0 else f"cycle {int(cycle)}"


def _floats(values: Any) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def learning_curve(cycles: dict[str, np.ndarray]) -> Columns:
    """Per trained model: cycle, model version, cumulative labelling CPU s, validation and evaluation-set force MAE."""
    if not cycles:
        return {"cycle": [], "model_version": [], "cpu_s": [], "val_force_mae_eV_per_A": [],
                "eval_force_mae_eV_per_A": []}
    keep = np.flatnonzero(cycles["model_version"] >= 0)  # a naive cycle without training has no model
    cpu = cycles["cpu_cheap_s"] + cycles["cpu_expensive_s"]
    return {"cycle": [int(c) for c in cycles["cycle"][keep]],
            "model_version": [int(v) for v in cycles["model_version"][keep]],
            "cpu_s": _floats(cpu[keep]),
            "val_force_mae_eV_per_A": _floats(cycles["val_force_mae_eV_per_A"][keep]),
            "eval_force_mae_eV_per_A": _floats(cycles["eval_force_mae_eV_per_A"][keep])}


PREDICTED_KEYS = ("md_predicted_eV_per_A", "md_p95_eV_per_A", "eval_predicted_eV_per_A", "eval_measured_eV_per_A")


def predicted(store: CampaignStore) -> Columns:
    """Per cycle with predicted errors: MD mean and p95 predicted, evaluation-set predicted and measured (eV/A);
    from the loop's stored status summary while it is current (no pass over every MD frame)."""
    stored = status_summary.read(store)
    rows = stored["predicted_errors"] if stored is not None else predicted_errors.status(store)
    out: Columns = {"cycle": [int(r["cycle"]) for r in rows]}
    for key in PREDICTED_KEYS:
        out[key] = _floats(r[key] for r in rows)
    return out


def coverage(store: CampaignStore) -> Columns:
    """Per model scored for coverage: cycle, model version, share of the evaluation set within the limit, median Q."""
    rows = tables.read(store, tables.EVAL_COVERAGE)
    if not rows:
        return {"cycle": [], "model_version": [], "covered_fraction": [], "median_q": []}
    return {"cycle": [int(c) for c in rows["cycle"]], "model_version": [int(v) for v in rows["model_version"]],
            "covered_fraction": _floats(rows["covered_fraction"]), "median_q": _floats(rows["median_q"])}


def flags(cycles: dict[str, np.ndarray]) -> Columns:
    """Per recorded cycle (bootstrap aside: it runs no MD): MD frames and the share of them flagged."""
    if not cycles:
        return {"cycle": [], "md_frames": [], "flag_rate": []}
    keep = np.flatnonzero(cycles["cycle"] >= 0)
    return {"cycle": [int(c) for c in cycles["cycle"][keep]], "md_frames": [int(n) for n in cycles["md_frames"][keep]],
            "flag_rate": _floats(cycles["flag_rate"][keep])}


def labels_per_cycle(store: CampaignStore, roles: dict[str, str]) -> Columns:
    """Per cycle and fidelity (cheap first, then expensive, then any other): ok and failed labels of the frames
    recorded in that cycle (bootstrap: -1); ``fidelity`` is the name with its campaign role, e.g. ``hf-sto3g
    (cheap)``."""
    out: Columns = {"cycle": [], "fidelity": [], "index": [], "ok": [], "failed": []}
    stored = store.fidelities()
    if not stored:
        return out
    frame_cycle = store.frame_meta(columns=["cycle"])["cycle"]
    order = sorted(stored, key=lambda h: (("cheap", "expensive").index(roles[h]) if h in roles else 2,
                                          stored[h]["name"]))
    for index, h in enumerate(order):
        table = store.label_columns(h, ["frame_id", "status"])
        cycles, position = np.unique(frame_cycle[table["frame_id"]], return_inverse=True)
        ok = np.bincount(position, weights=table["status"] == STATUS_CODES[LabelStatus.OK], minlength=cycles.size)
        every = np.bincount(position, minlength=cycles.size)
        name = stored[h]["name"] + (f" ({roles[h]})" if h in roles else "")
        for k, c in enumerate(cycles):
            out["cycle"].append(int(c))
            out["fidelity"].append(name)
            out["index"].append(index)
            out["ok"].append(int(ok[k]))
            out["failed"].append(int(every[k] - ok[k]))
    return out


def timeline(store: CampaignStore) -> Columns:
    """Per finished phase in commit order: cycle, phase, start and end (Unix s) and the seconds between them."""
    rows = tables.read(store, tables.PROGRESS)
    if not rows or rows["time"].size == 0:
        return {"cycle": [], "phase": [], "start": [], "end": [], "seconds": []}
    end = np.asarray(rows["time"], float)
    start = np.concatenate([end[:1], end[:-1]])
    return {"cycle": [int(c) for c in rows["cycle"]], "phase": [str(p) for p in rows["phase"]],
            "start": _floats(start), "end": _floats(end), "seconds": _floats(end - start)}
