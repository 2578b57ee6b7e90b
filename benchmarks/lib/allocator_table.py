"""The table of ``allocator_bench.py``: a worker's work under Dask's malloc setting, glibc's defaults and alloop's
(``reuse``), from its result file."""

from __future__ import annotations

from typing import Any

#: each work's first cell; ``{frames}``: the training frames the result file records
WORK_LABELS = {"reline-train": "SevenNet-0 training, reline box ({frames} frames)",
               "ethanol-train": "SevenNet-0 training, ethanol ({frames} frames)",
               "reline-label": "PBE/GTH-SZV label, reline box"}
HEADER = ["work", "case", "wall s", "user s", "system s", "page faults (M)", "peak RSS (GB)",
          "wall: dask / this case", "result"]


def result_cell(value: str | float) -> str:
    """The trained weights' fingerprint (its first 12 hex digits) or the label's energy in eV."""
    return value[:12] if isinstance(value, str) else f"{value:.8f} eV"


def allocator_lines(result: dict[str, Any]) -> list[str]:
    """One row per work and case, the work named on its first row; alloop's case (``reuse``) and its wall in bold;
    the wall time of the ``dask`` case over this case's (a dash when ``dask`` was not run)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    shown: set[str] = set()
    dask = {r["work"]: r["wall"] for r in result["rows"] if r["case"] == "dask"}
    for r in result["rows"]:
        work = r["work"]
        first = "" if work in shown else WORK_LABELS[work].format(**result["works"][work])
        shown.add(work)
        bold = "**" if r["case"] == "reuse" else ""
        ratio = f"{dask[work] / r['wall']:.2f}x" if work in dask else "-"
        lines.append(f"| {first} | {bold}{r['case']}{bold} | {bold}{r['wall']:.1f}{bold} | {r['user']:.1f} | "
                     f"{r['system']:.1f} | {r['faults'] / 1e6:.2f} | {r['max_rss_GB']:.1f} | {ratio} | "
                     f"{result_cell(r['value'])} |")
    return lines
