"""The table of ``many_workers.py``: one column per run of ``benchmarks/results/many-workers.json``."""

from __future__ import annotations

from typing import Any

from lib.common import markdown_table

#: row label -> how a run gives the cell ("-" when the run did not record it)
ROWS: dict[str, Any] = {
    "workers x label s": lambda r: f"{r['plan']['n_workers']} x {r['plan']['task_s']:g}",
    "kills per hour (fraction of workers)": lambda r: f"{r['plan']['kill_fraction_per_hour']:g}",
    "time for the workers to join (s)": lambda r: f"{r['startup_s']:.0f}",
    "labels sent / ok / lost": lambda r: f"{r['labels_sent']} / {r['labels_ok']} / {r['labels_lost']}",
    "kills / worker deaths / retried tasks": lambda r: f"{len(r['kills'])} / {r['worker_deaths']} / "
                                                       f"{r['tasks_retried']}",
    "steady window (s)": lambda r: f"{r['window_s']:.0f}",
    "utilisation": lambda r: f"{r['utilisation']:.3f}",
    "driver CPU per label (ms), idle cluster removed": lambda r: f"{r['driver_ms_per_label']:.1f}",
    "of it, the driver's main thread (ms)": lambda r: f"{r['driver_main_thread_ms_per_label']:.1f}",
    "idle driver CPU (% of a core)": lambda r: f"{r['idle_driver_core_pct']:.1f}",
    "submit -> start, median / p95 (s)": lambda r: f"{r['latency_median_s']:.3f} / {r['latency_p95_s']:.3f}",
    "dispatch gap, median / p95 (ms)": lambda r: f"{1e3 * r['gap_median_s']:.1f} / {1e3 * r['gap_p95_s']:.1f}",
    "driver RSS before / peak (MB)": lambda r: f"{r['driver_rss_before_mb']:.0f} / {r['driver_peak_rss_mb']:.0f}",
    "workers' RSS, summed (MB)": lambda r: f"{r['workers_rss_mb']:.0f}",
    "load average before / after (1 min)": lambda r: f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f}",
}


def many_workers_table(runs: dict[str, dict[str, Any]]) -> str:
    """One row per figure of :data:`ROWS`, one column per run (its key in the result file)."""
    def cell(fn: Any, run: dict[str, Any]) -> str:
        try:
            return str(fn(run))
        except KeyError:
            return "-"

    return markdown_table(["figure", *runs], [[label, *(cell(fn, r) for r in runs.values())]
                                              for label, fn in ROWS.items()])
