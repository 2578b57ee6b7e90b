"""The table of ``store_scale.py``: per operation and store size, the operation's wall and CPU seconds and the
process's peak memory, the whole process at the largest size, the log-log slope, and issue 65's targets."""

from __future__ import annotations

from typing import Any

from lib.common import markdown_table


def store_scale_table(summary: dict[str, Any]) -> str:
    """Per operation and size: op wall s, op CPU s, peak MB; the whole process's wall and CPU s at the largest size;
    the slope of op CPU s (``summary``: the result file ``store_scale.py`` writes)."""
    sizes, results, slopes = summary["sizes"], summary["results"], summary["slopes"]

    def cells(r: dict[str, float]) -> list[str]:
        return [f"{r['op_seconds']:.2f}", f"{r['op_cpu_seconds']:.2f}", f"{r['peak_mb']:.0f}"]

    header = ["operation", *(f"{n:.0e} {unit}" for n in sizes for unit in ("s", "CPU s", "MB")),
              f"process s / CPU s ({sizes[-1]:.0e})", "slope"]
    rows = [[name, *(c for n in sizes for c in cells(results[name][str(n)])),
             f"{results[name][str(sizes[-1])]['wall_seconds']:.2f} / {results[name][str(sizes[-1])]['cpu_seconds']:.2f}",
             "-" if slopes[name] is None else f"{slopes[name]:.2f}"] for name in results]
    return markdown_table(header, rows)


def store_scale_lines(summary: dict[str, Any]) -> list[str]:
    """The table, then one line per target of issue 65 (met or missed, at which size)."""
    lines = store_scale_table(summary).splitlines()
    if summary.get("targets"):
        lines += ["", *(f"- {name}: {verdict}" for name, verdict in summary["targets"].items())]
    return lines
