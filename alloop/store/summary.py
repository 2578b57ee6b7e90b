"""A summary of a store's committed content: what ``alloop status`` prints."""

from __future__ import annotations

from typing import Any

import numpy as np

from alloop.labeling.result import STATUS_CODES
from alloop.store.campaign import CampaignStore
from alloop.store.schema import ORIGIN_NAMES, FrameFlag

#: the blob in which the loop keeps its last status summary (:mod:`alloop.campaign.status_summary`); not listed
STATUS_BLOB = "status-summary"


def summarize(store: CampaignStore, parts: dict[str, Any] | None = None) -> dict[str, Any]:
    """Counts of frames (by origin and flag), labels per fidelity (by status, with CPU/wall seconds),
    checkpoints, tables, blobs and the last commit (``parts``: the frame and label counts if already read)."""
    record = store.record
    return {
        "path": str(store.path),
        "commit": {k: record.get(k) for k in ("seq", "time", "cycle", "phase", "note")},
        "frames": count_frames(store) if parts is None else parts["frames"],
        "labels": count_labels(store) if parts is None else parts["labels"],
        "checkpoints": [{k: e[k] for k in ("version", "role", "nbytes")} for e in store.checkpoints()],
        "tables": {name: int(rows) for name, rows in record.get("tables", {}).items()},
        "blobs": {n: {"version": e["version"], "nbytes": e["nbytes"]} for n, e in record.get("blobs", {}).items()
                  if n != STATUS_BLOB},
    }


def count_frames(store: CampaignStore) -> dict[str, Any]:
    """Frames and atoms in all, and frames per origin and per flag."""
    meta = store.frame_meta(columns=["n_atoms", "origin", "flags"])
    origins, counts = np.unique(meta["origin"], return_counts=True)
    return {
        "total": int(len(meta["frame_id"])),
        "atoms": int(meta["n_atoms"].sum()),
        "by_origin": {ORIGIN_NAMES.get(int(o), str(o)): int(c) for o, c in zip(origins, counts, strict=True)},
        "by_flag": {f.name: int(((meta["flags"] & f.value) != 0).sum()) for f in FrameFlag},
    }


def count_labels(store: CampaignStore) -> list[dict[str, Any]]:
    """Per stored fidelity: its labels in all and per status, and their CPU and wall seconds."""
    labels = []
    for fidelity_hash, info in store.fidelities().items():
        table = store.label_columns(fidelity_hash, ["status", "cpu_seconds", "wall_seconds"])
        by_status = np.bincount(table["status"].astype(np.int64), minlength=max(STATUS_CODES.values()) + 1)
        labels.append(
            {
                "name": info["name"],
                "hash": fidelity_hash,
                "total": int(table["status"].size),
                "by_status": {s.value: int(by_status[code]) for s, code in STATUS_CODES.items()},
                "cpu_seconds": float(table["cpu_seconds"].sum()),
                "wall_seconds": float(table["wall_seconds"].sum()),
            }
        )
    return labels


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a short human-readable report."""
    c, f = summary["commit"], summary["frames"]
    lines = [
        f"store        {summary['path']}",
        f"last commit  #{c['seq']} at {c['time']}  cycle {_dash(c['cycle'])}  phase {_dash(c['phase'])}",
        f"frames       {f['total']} ({f['atoms']} atoms)"
        + (": " + ", ".join(f"{k} {v}" for k, v in f["by_origin"].items()) if f["by_origin"] else ""),
    ]
    flagged = {k: v for k, v in f["by_flag"].items() if v}
    if flagged:
        lines.append("flags        " + ", ".join(f"{k} {v}" for k, v in flagged.items()))
    if summary["labels"]:
        statuses = list(summary["labels"][0]["by_status"])
        width = max(8, *(len(lab["name"]) for lab in summary["labels"]))
        lines.append("labels")
        head = f"  {'fidelity':<{width}}  {'hash':<16}  {'total':>7}  " + "  ".join(f"{s:>8}" for s in _short(statuses))
        lines.append(head + f"  {'cpu_s':>10}  {'wall_s':>10}")
        for lab in summary["labels"]:
            row = f"  {lab['name']:<{width}}  {lab['hash']:<16}  {lab['total']:>7}  "
            row += "  ".join(f"{lab['by_status'][s]:>8}" for s in statuses)
            lines.append(row + f"  {lab['cpu_seconds']:>10.1f}  {lab['wall_seconds']:>10.1f}")
    else:
        lines.append("labels       none")
    ckpts = summary["checkpoints"]
    if ckpts:
        last = ckpts[-1]
        newest = f"newest role {last['role']}, {last['nbytes']} bytes"
        lines.append(f"models       {len(ckpts)} checkpoints (v0..v{last['version']}; {newest})")
    else:
        lines.append("models       none")
    if summary["tables"]:
        lines.append("tables       " + ", ".join(f"{k} ({v} rows)" for k, v in summary["tables"].items()))
    if summary["blobs"]:
        lines.append("blobs        " + ", ".join(f"{k} ({v['nbytes']} bytes)" for k, v in summary["blobs"].items()))
    return "\n".join(lines)


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _short(statuses: list[str]) -> list[str]:
    abbreviations = {"scf_not_converged": "no_scf", "inconsistent": "incons."}
    return [abbreviations.get(s, s) for s in statuses]
