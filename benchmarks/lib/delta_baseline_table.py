"""The tables of ``delta_baseline.py`` from its result file: force errors with and without the GFN-xTB baseline, and
the MD stability of those models."""

from __future__ import annotations

from typing import Any

import numpy as np

from lib.common import mean_std


def _tag(baseline: str | None) -> str:
    return baseline or "plain"


def error_lines(result: dict[str, Any]) -> list[str]:
    """Per N and variant (plain, then each baseline): force MAE (eV/A) on each test set, mean +- sample std over
    the seeds; the baselines' cells in bold."""
    tests = list(result["tests"])
    lines = ["| N | baseline | " + " | ".join(tests) + " |", "|---:|---|" + "---:|" * len(tests)]
    for n in result["frames"]:
        for baseline in [None, *result["baselines"]]:
            rows = [result["scores"][f"{n}/{s}/{_tag(baseline)}"] for s in result["seeds"]]
            bold = "**" if baseline else ""
            cells = [f"{bold}{mean_std([r[t] for r in rows])}{bold}" for t in tests]
            lines.append(f"| {n} | {baseline or 'none'} | " + " | ".join(cells) + " |")
    return lines


def md_lines(result: dict[str, Any]) -> list[str]:
    """Per temperature and variant: the median first guard stop over every seed's replicas (">= T": censored at the
    run length), the stopped replicas, and the baseline's share of the MD wall time (mean over seeds)."""
    md = result.get("md")
    if not md:
        return ["(no MD run: --md-ps 0)"]
    lines = ["| T (K) | baseline | median first guard stop (fs) | replicas stopped | baseline share of the MD wall "
             "time |", "|---:|---|---:|---:|---:|"]
    for temperature in md["temperatures"]:
        for baseline in [None, *result["baselines"]]:
            runs = [md["runs"][f"{temperature:g}/{s}/{_tag(baseline)}"] for s in result["seeds"]]
            stops = np.concatenate([np.asarray(r["stops_fs"], dtype=float) for r in runs])
            median = float(np.median(np.where(np.isnan(stops), np.inf, stops)))
            shown = f">= {1000 * md['ps']:.0f}" if not np.isfinite(median) else f"{median:.0f}"
            share = float(np.mean([r["baseline_share"] for r in runs]))
            lines.append(f"| {temperature:.0f} | {baseline or 'none'} | {shown} | {int(np.isfinite(stops).sum())} of "
                         f"{stops.size} | {100 * share:.0f} % |")
    return lines
