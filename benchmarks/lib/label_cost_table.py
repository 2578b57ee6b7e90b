"""The tables of ``label_bench.py`` from its result file: seconds per label per molecule, preset and threads, and
the throughput of one label per core on Dask workers against the same labels run serially."""

from __future__ import annotations

from typing import Any

from lib.label_tables import figure
from lib.run_record import load_text


def _cells(runs: dict[int, dict[str, Any]], threads: list[int]) -> list[str]:
    """Wall s and CPU s (three significant digits) and CPU/wall of one molecule and preset, ``a / b`` over
    ``threads`` (a status other than ok in brackets, a skipped combination as ``skipped (est. X s)``), and the
    speed-up of the most threads."""
    def one(t: int, key: str) -> str:
        r = runs.get(t)
        if r is None:
            return "-"
        if r["status"] == "skipped":
            return f"skipped (est. {r['estimate_s']:.3g} s)"
        value = f"{r['cpu_s'] / r['wall_s']:.2f}" if key == "ratio" else figure(r[key])
        return value + ("" if r["status"] == "ok" else f" ({r['status']})")

    cells = [" / ".join(one(t, key) for t in threads) for key in ("wall_s", "cpu_s", "ratio")]
    first, last = runs.get(threads[0]), runs.get(threads[-1])
    timed = len(threads) > 1 and all(r is not None and r["status"] != "skipped" for r in (first, last))
    return cells + [f"{first['wall_s'] / last['wall_s']:.2f}" if timed else "-"]


def per_label_lines(result: dict[str, Any]) -> list[str]:
    """One row per molecule and preset (in the run's order): atoms, basis functions, and wall s, CPU s and CPU/wall
    at each thread count, and how much faster the most threads are than the fewest (wall)."""
    threads = sorted({r["threads"] for r in result["per_label"]})
    groups: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in result["per_label"]:
        groups.setdefault((r["molecule"], r["preset"]), {})[r["threads"]] = r
    per = " / ".join(map(str, threads)) + (" threads" if threads != [1] else " thread")
    lines = [f"| molecule | atoms | basis fns | preset | wall s ({per}) | CPU s ({per}) | CPU/wall ({per}) | "
             f"speed-up, {threads[-1]} vs {threads[0]} threads |", "|---|---:|---:|---|---:|---:|---:|---:|"]
    for (molecule, preset), runs in groups.items():
        r = next(iter(runs.values()))
        lines.append(f"| {molecule} | {r['atoms']} | {r['basis_functions']} | {preset} | "
                     + " | ".join(_cells(runs, threads)) + " |")
    return lines


def throughput_lines(result: dict[str, Any]) -> list[str]:
    """Per mode (serial in-process, Dask workers): cores, wall s, the labels' summed CPU s, labels/s, speed-up on
    the serial run and core utilisation (sum of task CPU / (wall x cores))."""
    runs = result["throughput"]["runs"]
    serial = next(r for r in runs if r["cores"] == 1)
    lines = ["| mode | cores | wall s | sum of task CPU s | labels/s | speed-up | core utilisation |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        not_ok = f" ({r['not_ok']} not ok)" if r["not_ok"] else ""
        lines.append(f"| {r['mode']}{not_ok} | {r['cores']} | {figure(r['wall_s'])} | {figure(r['cpu_s'])} | "
                     f"{figure(r['labels'] / r['wall_s'])} | {serial['wall_s'] / r['wall_s']:.2f} | "
                     f"{r['cpu_s'] / (r['wall_s'] * r['cores']):.2f} |")
    return lines


def label_bench_lines(result: dict[str, Any]) -> list[str]:
    """What ``label_bench.py`` prints: both tables with their titles and the machine's load."""
    lines = [f"# PySCF labelling benchmark ({result['mode']})", "", "Seconds per energy + gradient label:", "",
             *per_label_lines(result)]
    if result.get("throughput"):
        t = result["throughput"]
        lines += ["", f"Throughput: {t['frames']} x {t['molecule']} at {t['preset']}, "
                  f"{t['threads_per_label']} thread per label", "", *throughput_lines(result)]
    return lines + ["", f"Machine: {load_text(result)} (a load above the core count means other work shared the "
                    "cores and timings are inflated)."]
