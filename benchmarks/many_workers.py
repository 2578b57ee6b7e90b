"""Many workers: a campaign's driver and Dask scheduler at tens of worker processes, with labels of a fixed cost.

``--workers`` Dask worker processes of 1 thread on this machine (the campaign's embedded cluster: ``open_client``,
Dask's monitoring slowed as a campaign does), and a stream of labels of ``--task-s`` seconds that sleep instead of
computing (``alloop.testing.labelers.wait_labeler``: ~0 CPU, so the driver and scheduler are measured, not the
labels) through the campaign's ``LabelingPool``, driven as the asynchronous loop drives it, for ``--labels`` labels
or ``--minutes``. Printed, and written to ``--out`` (a JSON file of runs, keyed by workers, task length and kill
rate; a new run replaces its key):

- worker utilisation: busy time / (workers x wall) over the steady window (from the moment every worker has started
  its first task to the pool's last submit);
- driver CPU per label: the driver process's CPU over the stream (it hosts the scheduler, the nannies and the
  client) minus what the idle cluster costs it over the same wall time (measured for ``--idle-s`` first), and the
  share of its main thread (the pool and the client's calls; the rest is Dask's event loop: scheduler, client
  messages, nannies);
- scheduler latency, submit -> start (median, p95; with 2 tasks in flight per worker it includes a task's wait
  behind the one running), and the dispatch gap: start - max(submit, end of the worker's previous task);
- the driver's peak RSS, and the workers' RSS summed at the end;
- with ``--kill-fraction-per-hour F``: random busy workers SIGKILLed at F x workers per hour (a Poisson process;
  the nanny restarts them), and the labels lost (must be 0), retried, failed and completed.

Run on an otherwise idle machine if you can (the load average is printed):

    python benchmarks/many_workers.py --workers 8 --task-s 1 --labels 200     # about a minute
    python benchmarks/many_workers.py --workers 32 --labels 1600      # about 7 minutes on 2 cores (2 to start)
    python benchmarks/many_workers.py --workers 64 --labels 3200      # 4 min of labels after the start
    python benchmarks/many_workers.py --workers 64 --minutes 30 --kill-fraction-per-hour 0.1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lib.common import ROOT, markdown_table
from lib.many_workers import Plan, run

OUT = ROOT / "benchmarks" / "results" / "many-workers.json"


def table(r: dict[str, Any]) -> str:
    """The run as a Markdown table of figures."""
    p = r["plan"]
    rows = [("workers x threads", f"{p['n_workers']} x 1"), ("label length (s)", f"{p['task_s']:g}"),
            ("workers joined after (s)", f"{r['startup_s']:.1f}"),
            ("labels sent / ok / failed / lost", f"{r['labels_sent']} / {r['labels_ok']} / {r['labels_failed']} / "
                                                 f"{r['labels_lost']}"),
            ("tasks sent (retries among them)", f"{r['tasks_sent']} ({r['tasks_retried']})"),
            ("workers killed / deaths seen by the pool", f"{len(r['kills'])} / {r['worker_deaths']}"),
            ("stream wall (s)", f"{r['stream_wall_s']:.1f}"),
            ("steady window (s)", f"{r['window_s']:.1f}"),
            ("worker utilisation over the window", f"{r['utilisation']:.3f}"),
            ("driver CPU per label, idle removed (ms)", f"{r['driver_ms_per_label']:.2f}"),
            ("of which the driver's main thread: pool and client calls (ms)",
             f"{r['driver_main_thread_ms_per_label']:.2f}"),
            ("idle cluster's driver CPU (% of a core)", f"{r['idle_driver_core_pct']:.1f}"),
            ("latency submit -> start, median / p95 (s)", f"{r['latency_median_s']:.3f} / {r['latency_p95_s']:.3f}"),
            ("dispatch gap, median / p95 (ms)", f"{1000 * r['gap_median_s']:.1f} / {1000 * r['gap_p95_s']:.1f}"),
            ("driver RSS before the cluster / peak (MB)",
             f"{r['driver_rss_before_mb']:.0f} / {r['driver_peak_rss_mb']:.0f}"),
            ("workers' RSS, summed (MB)", f"{r['workers_rss_mb']:.0f}"),
            ("load average before / after (1 min)", f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}")]
    return markdown_table(["figure", "value"], rows)


def save(result: dict[str, Any], out: Path) -> str:
    """Put ``result`` in the JSON file ``out`` under its key (workers, label length, kill rate); the key."""
    p = result["plan"]
    key = f"{p['n_workers']}w-{p['task_s']:g}s" + (f"-kill{p['kill_fraction_per_hour']:g}"
                                                   if p["kill_fraction_per_hour"] else "")
    runs = json.loads(out.read_text()) if out.is_file() else {}
    runs[key] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
    return key


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=8, help="Dask worker processes (default 8)")
    p.add_argument("--task-s", type=float, default=5.0, help="seconds each label waits (default 5)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--labels", type=int, default=0, help="labels to stream (default: 40 per worker)")
    size.add_argument("--minutes", type=float, default=0.0, help="stream labels for this long instead")
    p.add_argument("--idle-s", type=float, default=20.0, help="seconds the idle cluster is measured (default 20)")
    p.add_argument("--kill-fraction-per-hour", type=float, default=0.0,
                   help="SIGKILL random busy workers at this fraction of them per hour (default 0)")
    p.add_argument("--batch-seconds", type=float, default=2.0,
                   help="execution.label_batch_seconds: shorter labels share tasks (default 2, the campaign's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kills (default 0)")
    p.add_argument("--out", type=Path, default=OUT, help=f"result file (default {OUT.relative_to(ROOT)})")
    a = p.parse_args(argv)
    if a.workers < 1 or a.task_s < 0 or a.labels < 0 or a.minutes < 0 or a.kill_fraction_per_hour < 0:
        p.error("--workers must be >= 1 and --task-s, --labels, --minutes, --kill-fraction-per-hour >= 0")
    labels = a.labels or (0 if a.minutes else 40 * a.workers)
    plan = Plan(a.workers, a.task_s, labels, a.minutes, a.idle_s, a.kill_fraction_per_hour,
                batch_seconds=a.batch_seconds, seed=a.seed)
    result = run(plan, log=lambda text: print(text, flush=True))
    print(f"\n{table(result)}\n\nwritten to {a.out} as {save(result, a.out)}")
    return 0 if result["labels_lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
