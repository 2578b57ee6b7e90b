"""A short Markdown summary of a campaign: status, cost, failures, models, stop reason."""

from __future__ import annotations

import numpy as np

from alloop.campaign.ledger import finished_reason
from alloop.labeling.result import STATUS_FROM_CODE
from alloop.store.campaign import CampaignStore
from alloop.store.summary import summarize


def summary_markdown(store: CampaignStore) -> str:
    info = summarize(store)
    lines = [f"# Campaign report: {store.config.get('name', store.path)}", ""]
    reason = finished_reason(store)
    lines.append(f"- state: {'finished (' + reason + ')' if reason else 'not finished'}")
    rec = info["commit"]
    lines.append(f"- last commit: #{rec.get('seq')} cycle {rec.get('cycle')} phase {rec.get('phase')}")
    fr = info["frames"]
    lines.append(f"- frames: {fr['total']} ({', '.join(f'{k} {v}' for k, v in fr['by_origin'].items())})")
    lines += ["", "| fidelity | labels | ok | failed (by status) | CPU s |", "|---|---:|---:|---|---:|"]
    for lab in info["labels"]:
        bad = ", ".join(f"{k} {v}" for k, v in lab["by_status"].items() if k != "ok" and v)
        lines.append(f"| {lab['name']} | {lab['total']} | {lab['by_status']['ok']} | {bad or '-'} | {lab['cpu_seconds']:.1f} |")
    failures = _failures(store)
    if failures:
        lines += ["", "Failed labels (first 20):", ""]
        lines += [f"- frame {f} at {name}: {status} ({reason})" for f, name, status, reason in failures[:20]]
    if "cycles" in store.table_names():
        c = store.table("cycles")
        lines += ["", "| cycle | model | MD frames | flag rate | cheap | expensive | CPU s | val F-MAE (eV/Å) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for k in range(c["cycle"].size):
            cpu = c["cpu_cheap_s"][k] + c["cpu_expensive_s"][k]
            lines.append(f"| {c['cycle'][k]} | {c['model_version'][k]} | {c['md_frames'][k]} | {c['flag_rate'][k]:.2f} "
                         f"| {c['labels_cheap'][k]} | {c['labels_expensive'][k]} | {cpu:.0f} "
                         f"| {c['val_force_mae_eV_per_A'][k]:.4f} |")
    return "\n".join(lines) + "\n"


def _failures(store: CampaignStore) -> list[tuple[int, str, str, str]]:
    out = []
    for h, info in store.fidelities().items():
        table = store.labels(h)
        for row in np.flatnonzero(~table.ok):
            status = STATUS_FROM_CODE[int(table.status[row])].value
            out.append((int(table.frame_id[row]), info["name"], status, str(table.reason[row])))
    return out
