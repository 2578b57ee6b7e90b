"""Reading a campaign's predicted force errors: per cycle, what the model's error model predicted for its MD frames,
and for the evaluation set next to the error measured there (``alloop status``, ``alloop report``).

The writers are the explore phase (``md_predicted``) and the train phase (``eval_predicted``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alloop.evaluation.records import model_scores
from alloop.evaluation.status_rows import short_rows
from alloop.store import tables
from alloop.store.campaign import CampaignStore


def status(store: CampaignStore) -> list[dict[str, Any]]:
    """One row per cycle with predicted errors: its MD frames' mean and 95th-percentile predicted force error, and
    the evaluation set's predicted and measured force MAE under the model trained in that cycle (eV/A; None where
    absent). Empty for a campaign whose models carry no calibrated error model."""
    md, ev = tables.read(store, tables.MD_PREDICTED), tables.read(store, tables.EVAL_PREDICTED)
    measured = model_scores(store)
    per_cycle = _md_by_cycle(md)
    cycles = sorted(set(per_cycle) | {int(c) for c in np.unique(ev.get("cycle", np.zeros(0, int)))})
    rows = []
    for cycle in cycles:
        row: dict[str, Any] = {"cycle": cycle, "md_frames": 0, "md_predicted_eV_per_A": None, "md_p95_eV_per_A": None,
                               "model_version": None, "eval_predicted_eV_per_A": None, "eval_measured_eV_per_A": None,
                               "error_spearman": None, "bound_coverage": None}
        values = per_cycle.get(cycle)
        if values is not None:
            row.update(md_frames=int(values.size), md_predicted_eV_per_A=float(values.mean()),
                       md_p95_eV_per_A=float(np.percentile(values, 95)))
        if ev and (ev["cycle"] == cycle).any():
            k = int(np.flatnonzero(ev["cycle"] == cycle)[-1])
            version = int(ev["model_version"][k])
            row.update(model_version=version, eval_predicted_eV_per_A=float(ev["predicted_force_mae_eV_per_A"][k]),
                       error_spearman=float(ev["error_spearman"][k]), bound_coverage=float(ev["bound_coverage"][k]))
            if version in measured:
                row["eval_measured_eV_per_A"] = measured[version]["eval_force_mae_eV_per_A"]
        rows.append(row)
    return rows


def _md_by_cycle(md: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """cycle -> the predicted force errors of its MD frames (one sort of the table, not one pass per cycle)."""
    if not md or md["cycle"].size == 0:
        return {}
    order = np.argsort(md["cycle"], kind="stable")
    cycles, starts = np.unique(md["cycle"][order], return_index=True)
    groups = np.split(np.asarray(md["predicted_force_error_eV_per_A"])[order], starts[1:])
    return {int(c): g for c, g in zip(cycles, groups, strict=True)}


def format_status(rows: list[dict[str, Any]]) -> list[str]:
    """:func:`status` as text lines (none without predicted errors)."""
    if not rows:
        return []
    lines = ["predicted force errors (eV/A): the MD frames of each cycle under the model that ran them; the "
             "evaluation set under the model trained in it",
             f"  {'cycle':>5}  {'MD frames':>9}  {'MD mean':>8}  {'MD p95':>7}  {'model':>5}  {'eval pred.':>10}"
             f"  {'eval meas.':>10}  {'rho':>5}  {'in bound':>8}"]
    return [*lines, *short_rows(rows, _row_line)]


def _row_line(r: dict[str, Any]) -> str:
    def cell(key: str, fmt: str, width: int) -> str:
        # "-" where absent, and for a rank correlation of a constant prediction (an exponent clipped at 0)
        known = r[key] is not None and np.isfinite(r[key])
        return f"{r[key]:>{width}{fmt}}" if known else f"{'-':>{width}}"

    version = "-" if r["model_version"] is None else f"v{r['model_version']}"
    inside = "-" if r["bound_coverage"] is None else f"{100 * r['bound_coverage']:.0f} %"
    return (f"  {'bootstrap' if r['cycle'] < 0 else r['cycle']:>5}  {r['md_frames']:>9}  "
            f"{cell('md_predicted_eV_per_A', '.4f', 8)}  {cell('md_p95_eV_per_A', '.4f', 7)}  {version:>5}  "
            f"{cell('eval_predicted_eV_per_A', '.4f', 10)}  {cell('eval_measured_eV_per_A', '.4f', 10)}  "
            f"{cell('error_spearman', '.2f', 5)}  {inside:>8}")
