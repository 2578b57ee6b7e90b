"""The campaign loop's cost and accuracy: where the wall time goes, how busy the cores are, what the labels buy.

Timing part (always). The campaign (default ``campaigns/quickstart.yaml``,
``--set key=value`` overrides as for ``alloop run``) runs in a fresh run
directory on this script's own Dask LocalCluster (``--workers`` processes of
``execution.threads_per_worker`` threads, default 2 x 1) inside
``distributed.get_task_stream``, so every task's start/stop on every worker is
known (its compute and deserialisation count as busy, transfers do not). Printed:

- total wall time of ``Campaign.run()`` (driver clock);
- wall time per phase: the time between consecutive ``progress`` rows of the
  store (each committed when a phase ends; the first phase starts at the
  run's start): bootstrap sampling, bootstrap labelling (cheap + expensive),
  bootstrap training; per cycle MD + cheap selection, cheap labels, bias +
  expensive selection, expensive labels, training; and the same summed by kind;
- per phase: "slots busy" = task compute time / (phase wall x worker slots);
  "idle core" = share of the phase's wall time during which at least one core
  had no task. A running task counts as ``threads_per_worker`` busy cores (the
  driver gives label, MD and training tasks the worker's thread count), capped
  at the number of cores (= slots x threads_per_worker);
- labelling-core utilisation = label CPU seconds (PySCF's measured process
  CPU time, from the store) / (wall time of the labelling phases x cores), per
  labelling phase and overall; below 100% either because cores waited
  (scheduling, the driver committing) or because the shared machine gave the
  worker less than a full core (compare with the "slots busy" column);
- label CPU s / label task busy s: how much of a core a running label task
  got (100% on an idle machine; the rest went to other processes);
- measured CPU: user + system CPU seconds of the worker processes and of the
  driver over the run (psutil), and their sum / (wall x cores); per task kind
  the mean CPU % of its worker process while it ran (Dask's system monitor,
  sampled every second; 100% = one core, so a training task above 100% really
  uses more than one thread);
- CPU seconds, counts and failures per fidelity, and task compute time by kind.

Timings are wall-clock on whatever machine this runs on: on a shared machine
(other jobs loading the cores) every duration is inflated and utilisation is
lower than on an idle one; the load average at start and end is printed.
Everything needed is saved to ``<run dir>/campaign_bench_timing.json``, so
``--run-dir DIR`` on a finished run reprints the tables without rerunning.

Accuracy part (``--accuracy``; see lib/campaign_accuracy.py): the finished
campaign's final model (a), standard training on its expensive labels only (b),
and standard training on randomly chosen AIMD pool frames bought with the
campaign's total labelling CPU seconds (c), all scored on the expensive-labelled
held-out 500 K ethanol test trajectory of benchmarks/make_ethanol_data.py.

``--quick`` prepends the overrides in ``QUICK_SETS`` (one cycle of 2 x 40 MD
steps, 6 + 6 cheap and 3 + 2 expensive labels, 5 epochs): a smoke test of the
script, not a measurement. Without ``--run-dir`` the run goes to a new
``/tmp/campaign_bench-*`` folder (printed). Exit status: 0, 1 on a user error,
2 when the accuracy part cannot run (data files missing or of another fidelity).

Command lines (from the repository root):

    python benchmarks/campaign_bench.py --quick --accuracy          # smoke test, a few minutes
    python benchmarks/campaign_bench.py > quickstart_bench.log      # timing of the real quickstart
    python benchmarks/campaign_bench.py --run-dir DIR --accuracy    # tables again + accuracy of a finished run
    python benchmarks/campaign_bench.py --campaign campaigns/ethanol.yaml --set schedule.n_cycles=2
    python benchmarks/campaign_bench.py --set schedule.mode=asynchronous        # the asynchronous loop

The lower bound of the wall time is max(label CPU s / cores, the training
tasks' summed time): the labels cannot finish faster on these cores, and the
trainings run one after another (each continues from the previous model).
It leaves out the cores MD and training take from the labels; the "all tasks'
bound" counts every task's core-seconds (a loop that never leaves a core idle
reaches it). In asynchronous mode the phases of successive cycles overlap, so
the per-phase table (time between consecutive marks) no longer attributes wall
time to one phase; the whole-run labelling-core utilisation is the measure
that holds in both modes: of the core-seconds MD and training left free, the
share the labels used.

The overlap window is the span from the bootstrap model's commit to the last
label phase's mark: before it only sampling, the bootstrap labels and the
bootstrap training can run (one after the other), after it only the last
training. The idle-core share and labelling utilisation inside the window are
what the asynchronous loop's overlap decides; the whole run adds the two ends,
whose share falls with the number of cycles.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from lib.common import ROOT, markdown_table

TIMING_FILE = "campaign_bench_timing.json"
#: --quick: one short cycle; the expensive fidelity stays B3LYP/def2-SVP so the accuracy part can compare
QUICK_SETS = [
    "schedule.n_cycles=1", "schedule.bootstrap.n_samples=6", "schedule.bootstrap.n_expensive=3",
    "md.n_replicas=2", "md.segment_steps=40", "md.record_every=4", "selection.max_cheap_per_cycle=6",
    "selection.max_expensive_per_cycle=2", "selection.min_step_spacing=5", "training.max_epochs=5",
    "training.patience_epochs=5", "training.gamma_grid=[1.0]",
]
#: progress phase -> (label in the per-phase table, kind in the summary table); bootstrap is cycle -1
PHASES = {
    (True, "sampled"): ("bootstrap: sampling", "bootstrap sampling + labelling"),
    (True, "labelled"): ("bootstrap: labels (cheap + expensive)", "bootstrap sampling + labelling"),
    (True, "trained"): ("bootstrap: training", "bootstrap training"),
    (False, "explored"): ("MD + cheap selection", "MD + selection"),
    (False, "labelled-cheap"): ("cheap labels", "cheap labels"),
    (False, "selected-expensive"): ("bias + expensive selection", "bias + selection"),
    (False, "labelled-expensive"): ("expensive labels", "expensive labels"),
    (False, "trained"): ("training", "training"),
    (False, "finished"): ("finishing", "finishing"),
}
#: task-stream actions that occupy a worker's core (transfers are network waits)
BUSY_ACTIONS = ("compute", "deserialize")
#: labelling phases -> roles labelled in them
LABEL_PHASES = {"labelled": ("cheap", "expensive"), "labelled-cheap": ("cheap",), "labelled-expensive": ("expensive",)}


def task_kind(key: str, hashes: dict[str, str]) -> str:
    if key.startswith("label-"):
        for role in ("expensive", "cheap"):
            if key.startswith(f"label-{hashes[role]}-"):
                return f"label {role}"
        return "label"
    for prefix, kind in (("md_task", "MD"), ("train_task", "training"), ("cheap_hessian", "hessian"),
                         ("bias_task", "bias B")):
        if key.startswith(prefix):
            return kind
    return "other"


def core_weight(kind: str, info: dict[str, Any]) -> int:
    """Cores a task of this kind computes on: the worker's thread count (the driver gives every task, label, MD
    or training, ``threads_per_worker`` threads), unless the timing record says otherwise (``core_weights``)."""
    return int(info.get("core_weights", {}).get(kind, info["threads_per_worker"]))


# ----------------------------------------------------------------------------------------- running
def _process_cpu() -> float:
    """CPU seconds (user + system) of the calling process so far."""
    import psutil

    times = psutil.Process().cpu_times()
    return times.user + times.system


def _cpu_history(dask_worker: Any) -> tuple[list[float], list[float]]:
    """A worker's system-monitor samples: times (s since the epoch) and its process CPU % (100 = one core)."""
    q = dask_worker.monitor.quantities
    return list(q["time"]), list(q["cpu"])


def _sample_cpu_every_second(dask_worker: Any) -> None:
    """The worker's system monitor samples every second (open_client slows it to 10 s): per-task CPU % below."""
    dask_worker.periodic_callbacks["monitor"].callback_time = 1000


def _mean_cpu(history: tuple[list[float], list[float]] | None, start: float, stop: float) -> float | None:
    if history is None:
        return None
    times, cpu = np.asarray(history[0]), np.asarray(history[1])
    inside = (times >= start) & (times <= stop)
    return float(cpu[inside].mean()) if inside.any() else None


def run_campaign(cfg: Any, run_dir: Path, n_workers: int, overrides: list[str], verbose: bool) -> dict[str, Any]:
    """Run the campaign on an own LocalCluster inside a task stream; returns (and saves) the timing record."""
    import dask
    import torch
    from distributed import get_task_stream

    from alloop.campaign.execution.cluster import open_client
    from alloop.campaign.loop.driver import Campaign
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    def log(text: str) -> None:
        if verbose or not text.startswith("  "):  # per-epoch training lines start with two spaces
            print(f"    {time.strftime('%H:%M:%S')} {text.strip()}", flush=True)

    ex = cfg.execution
    hashes = {"cheap": cfg.cheap_fidelity.hash(), "expensive": cfg.expensive_fidelity.hash()}
    store = CampaignStore.create(store_path(run_dir), cfg.to_dict())
    load_start = os.getloadavg()
    try:
        with dask.config.set({"distributed.admin.system-monitor.log-length": 200_000}), \
                open_client(n_workers=n_workers, threads_per_worker=ex.threads_per_worker) as client:
            torch.set_num_threads(ex.threads_per_worker)
            client.run(_sample_cpu_every_second)  # the workers' only: the driver keeps open_client's settings
            slots = sum(client.nthreads().values())
            cpu0, driver0 = client.run(_process_cpu), _process_cpu()
            with get_task_stream(client) as stream:
                t0 = time.time()
                reason = Campaign(cfg, store, client, log=log).run()
                t1 = time.time()
            cpu1, driver1 = client.run(_process_cpu), _process_cpu()
            history = client.run(_cpu_history)
    finally:
        store.close()
    tasks = []
    for rec in stream.data:
        for ss in rec.get("startstops", ()):
            if ss["action"] in BUSY_ACTIONS:
                start, stop = float(ss["start"]), float(ss["stop"])
                tasks.append({"kind": task_kind(str(rec["key"]), hashes), "worker": rec["worker"], "start": start,
                              "stop": stop, "cpu_pct": _mean_cpu(history.get(rec["worker"]), start, stop)})
    info = {"campaign": cfg.name, "overrides": overrides, "t0": t0, "t1": t1, "reason": reason, "slots": slots,
            "n_workers": n_workers, "threads_per_worker": ex.threads_per_worker,
            "loadavg_start": load_start, "loadavg_end": os.getloadavg(), "cpu_count": os.cpu_count(), "tasks": tasks,
            "worker_cpu_s": sum(cpu1[w] - cpu0[w] for w in cpu1 if w in cpu0), "driver_cpu_s": driver1 - driver0}
    (run_dir / TIMING_FILE).write_text(json.dumps(info))
    return info


# ---------------------------------------------------------------------------------------- analysis
def coverage(intervals: list[tuple[float, float, int]], lo: float, hi: float, capacity: int) -> tuple[float, float, float]:
    """Over [lo, hi]: (busy core-seconds, seconds with at least one idle core, seconds with all cores idle)."""
    events: list[tuple[float, int]] = []
    for start, stop, weight in intervals:
        start, stop = max(start, lo), min(stop, hi)
        if stop > start:
            events += [(start, weight), (stop, -weight)]
    events.sort()
    busy = some_idle = all_idle = 0.0
    level, t = 0, lo
    for when, delta in events + [(hi, 0)]:
        span = when - t
        if span > 0:
            used = min(level, capacity)
            busy += used * span
            some_idle += span if used < capacity else 0.0
            all_idle += span if used == 0 else 0.0
        level, t = level + delta, max(t, when)
    return busy, some_idle, all_idle


def overlap_window(prog: dict[str, Any]) -> tuple[float, float] | None:
    """(first model committed, last label phase marked): the span in which the loop has something to overlap.

    Before the bootstrap model nothing can explore, and after the last cycle's expensive labels only its training
    is left: there the loop's dependencies leave one task (sampling, the bootstrap or the last training) alone.
    """
    cycles, phases, times = prog["cycle"].tolist(), [str(p) for p in prog["phase"].tolist()], prog["time"].tolist()
    first = [t for c, p, t in zip(cycles, phases, times, strict=True) if c < 0 and p == "trained"]
    last = [t for c, p, t in zip(cycles, phases, times, strict=True) if c >= 0 and p in LABEL_PHASES]
    if not first or not last or max(last) <= first[0]:
        return None
    return float(first[0]), float(max(last))


def window_rows(info: dict[str, Any], window: tuple[float, float], weighted: list[tuple[float, float, int]],
                label_cpu_per_busy_s: float) -> list[list[Any]]:
    """Idle-core share and labelling-core utilisation inside ``window`` (see :func:`overlap_window`); ``weighted``:
    every task's (start, stop, cores)."""
    lo, hi = window
    span, cores = hi - lo, info["slots"] * info["threads_per_worker"]

    def core_s(tasks: list[dict[str, Any]]) -> float:
        return sum(max(0.0, min(t["stop"], hi) - max(t["start"], lo)) * core_weight(t["kind"], info) for t in tasks)

    labels = [t for t in info["tasks"] if t["kind"].startswith("label")]
    others = [t for t in info["tasks"] if not t["kind"].startswith("label")]
    idle = coverage(weighted, lo, hi, cores)[1]
    util = core_s(labels) * label_cpu_per_busy_s / max(span * cores - core_s(others), 1e-9)
    return [
        ["overlap window: first model committed -> last labels back (s; share of wall)",
         f"{span:.0f}; {100 * span / (info['t1'] - info['t0']):.0f}%"],
        ["  share of the window with >= 1 idle core", f"{100 * idle / span:.0f}%"],
        ["  labelling-core utilisation in the window (label core-s x CPU/busy / (window x cores - other tasks' "
         "core-s))", f"{100 * util:.0f}%"],
    ]


def label_cpu_by_phase(store: Any, cfg: Any) -> dict[tuple[int, str], float]:
    """CPU seconds of the labels made in each labelling phase (frames joined to the cycle that selected them)."""
    sel = store.table("selection") if "selection" in store.table_names() else {}
    out: dict[tuple[int, str], float] = {}
    for role in ("cheap", "expensive"):
        h = cfg.fidelity(role).hash()
        if not sel or h not in store.fidelities():
            continue
        labels = store.labels(h)
        cpu_of = dict(zip(labels.frame_id.tolist(), labels.cpu_seconds.tolist(), strict=True))
        mask = sel["role"] == role
        for cycle, frame_id in zip(sel["cycle"][mask].tolist(), sel["frame_id"][mask].tolist(), strict=True):
            phase = "labelled" if cycle < 0 else f"labelled-{role}"
            out[(cycle, phase)] = out.get((cycle, phase), 0.0) + float(np.nan_to_num(cpu_of.get(frame_id, 0.0)))
    return out


def phase_rows(cfg: Any, store: Any, info: dict[str, Any],
               prog: Any) -> tuple[list[list[Any]], dict[str, float], float, float]:
    """One row per progress commit (its wall span, busy slots, idle cores, label CPU), the wall seconds per kind
    of phase, the wall seconds of the labelling phases, and the seconds after the last commit."""
    t0, t1, slots = info["t0"], info["t1"], info["slots"]
    cores = slots * info["threads_per_worker"]
    wall = t1 - t0
    weighted = [(t["start"], t["stop"], core_weight(t["kind"], info)) for t in info["tasks"]]
    unit = [(t["start"], t["stop"], 1) for t in info["tasks"]]
    label_cpu = label_cpu_by_phase(store, cfg)
    rows, kinds, lab_wall = [], {}, 0.0
    start = t0
    for cycle, phase, stop in zip(prog["cycle"].tolist(), prog["phase"].tolist(), prog["time"].tolist(), strict=True):
        label, kind = PHASES.get((cycle < 0, str(phase)), (str(phase), str(phase)))
        span = stop - start
        busy_slots = coverage(unit, start, stop, slots)[0] / max(span * slots, 1e-9)
        idle = coverage(weighted, start, stop, cores)[1] / max(span, 1e-9)
        cpu = label_cpu.get((cycle, str(phase)))
        util = "" if phase not in LABEL_PHASES else f"{100 * (cpu or 0.0) / max(span * cores, 1e-9):.0f}%"
        lab_wall += span if phase in LABEL_PHASES else 0.0
        rows.append([cycle if cycle >= 0 else "boot", label, span, f"{100 * span / wall:.1f}%",
                     f"{100 * busy_slots:.0f}%", f"{100 * idle:.0f}%", "" if cpu is None else cpu, util])
        kinds[kind] = kinds.get(kind, 0.0) + span
        start = stop
    return rows, kinds, lab_wall, t1 - start  # the tail: after the last progress row (closing the run)


def overall_rows(info: dict[str, Any], prog: Any, sp: Any, lab_wall: float) -> list[list[Any]]:
    """The run's totals: utilisation of the cores and worker slots, lower bounds, load average."""
    t0, t1, slots = info["t0"], info["t1"], info["slots"]
    cores = slots * info["threads_per_worker"]
    wall = t1 - t0
    weighted = [(t["start"], t["stop"], core_weight(t["kind"], info)) for t in info["tasks"]]
    unit = [(t["start"], t["stop"], 1) for t in info["tasks"]]
    busy_w, some_idle, all_idle = coverage(weighted, t0, t1, cores)
    busy_u, some_idle_slot, _ = coverage(unit, t0, t1, slots)
    label_task_s = sum(t["stop"] - t["start"] for t in info["tasks"] if t["kind"].startswith("label"))
    la, lb = info["loadavg_start"], info["loadavg_end"]
    measured = "worker_cpu_s" in info
    train_path = sum(t["stop"] - t["start"] for t in info["tasks"] if t["kind"] == "training")  # one at a time
    bound = max(sp.total_cpu / cores, train_path)
    other_core_s = sum((t["stop"] - t["start"]) * core_weight(t["kind"], info) for t in info["tasks"]
                       if not t["kind"].startswith("label"))
    all_core_s = sum((t["stop"] - t["start"]) * core_weight(t["kind"], info) for t in info["tasks"])
    work_bound = max(all_core_s / cores, train_path)
    window = overlap_window(prog)
    return [
        ["overrides", " ".join(info["overrides"]) or "(none)"],
        ["Dask workers x threads (slots, cores)", f"{info['n_workers']} x {info['threads_per_worker']} ({slots}, {cores})"],
        ["finished because", info["reason"]],
        ["total wall time (s)", wall],
        ["labelling phases wall time (s)", lab_wall],
        ["labelling-core utilisation (label CPU s / (labelling wall x cores))",
         f"{100 * sp.total_cpu / max(lab_wall * cores, 1e-9):.0f}%"],
        ["labelling-core utilisation, whole run: label CPU s / (wall x cores - core-s of MD, training, hessian tasks)",
         f"{100 * sp.total_cpu / max(wall * cores - other_core_s, 1e-9):.0f}%"],
        ["label CPU s / label task busy s (100% = a full core per task; less = contention)",
         f"{100 * sp.total_cpu / max(label_task_s, 1e-9):.0f}%"],
        ["CPU s of the worker processes / of the driver (psutil)",
         f"{info['worker_cpu_s']:.0f} / {info['driver_cpu_s']:.0f}" if measured else "not recorded"],
        ["measured core utilisation: (worker + driver CPU s) / (wall x cores)",
         f"{100 * (info['worker_cpu_s'] + info['driver_cpu_s']) / (wall * cores):.0f}%" if measured else "not recorded"],
        ["lower bound: max(label CPU s / cores, training critical path) (s)",
         f"{bound:.0f} (labels {sp.total_cpu / cores:.0f}, training {train_path:.0f})"],
        ["wall time / lower bound", f"{wall / max(bound, 1e-9):.2f}"],
        ["all tasks' bound: max(every task's core-s / cores, training critical path) (s); wall / it",
         f"{work_bound:.0f}; {wall / max(work_bound, 1e-9):.2f}"],
        ["orchestration: driver CPU s / wall (the driver: Dask client and scheduler, store commits)",
         f"{100 * info['driver_cpu_s'] / wall:.1f}%" if measured else "not recorded"],
        ["share of wall time with >= 1 idle core (core-weighted)", f"{100 * some_idle / wall:.0f}%"],
        ["share of wall time with >= 1 idle worker slot (task count)", f"{100 * some_idle_slot / wall:.0f}%"],
        ["share of wall time with every core idle (driver only)", f"{100 * all_idle / wall:.0f}%"],
        *(window_rows(info, window, weighted, sp.total_cpu / max(label_task_s, 1e-9)) if window else []),
        ["core-seconds used by tasks / available", f"{100 * busy_w / (wall * cores):.0f}%"],
        ["load average at start / end (1, 5, 15 min)",
         f"{la[0]:.1f} {la[1]:.1f} {la[2]:.1f} / {lb[0]:.1f} {lb[1]:.1f} {lb[2]:.1f}"
         f" on {info['cpu_count']} CPUs (shared machine: timings under contention)"],
    ]


def fidelity_rows(cfg: Any, store: Any, sp: Any) -> list[list[Any]]:
    """Per role: the fidelity, its labels and failures, their CPU and the labeller's wall seconds."""
    fid_rows = []
    for role in ("cheap", "expensive"):
        fid, n = cfg.fidelity(role), sp.labels[role]
        wall_s = float(np.nansum(store.labels(fid.hash()).wall_seconds)) if fid.hash() in store.fidelities() else 0.0
        fid_rows.append([role, fid.name, n, sp.failures[role], sp.cpu_seconds[role],
                         f"{sp.cpu_seconds[role] / n:.2f}" if n else "", wall_s])
    return fid_rows


def task_kind_table(info: dict[str, Any]) -> str:
    """Per kind of Dask task: how many, their busy seconds, the cores counted and the workers' CPU while running."""
    wall, cores = info["t1"] - info["t0"], info["slots"] * info["threads_per_worker"]
    by_kind: dict[str, list[tuple[float, float | None]]] = {}
    for t in info["tasks"]:
        by_kind.setdefault(t["kind"], []).append((t["stop"] - t["start"], t.get("cpu_pct")))

    def cpu_pct(v: list[tuple[float, float | None]]) -> str:
        known = [(d, c) for d, c in v if c is not None]
        return f"{sum(d * c for d, c in known) / sum(d for d, _ in known):.0f}%" if known else "n/a"

    return markdown_table(["task kind", "tasks", "busy s", "mean s", "cores counted", "% of core-seconds available",
                           "worker CPU % while running"], [
        [k, len(v), float(sum(d for d, _ in v)), f"{np.mean([d for d, _ in v]):.2f}", core_weight(k, info),
         f"{100 * sum(d for d, _ in v) * core_weight(k, info) / (wall * cores):.1f}%", cpu_pct(v)]
        for k, v in sorted(by_kind.items())])


def timing_report(cfg: Any, store: Any, info: dict[str, Any]) -> None:
    """Print the campaign's timing tables (Markdown): totals, per phase, per kind of phase, labels, Dask tasks."""
    from alloop.store.ledger import spend

    wall = info["t1"] - info["t0"]
    prog = store.table("progress")
    rows, kinds, lab_wall, tail = phase_rows(cfg, store, info, prog)
    sp = spend(store, {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity})
    print(f"\n## Campaign '{info['campaign']}': timing\n")
    print(markdown_table(["quantity", "value"], overall_rows(info, prog, sp, lab_wall)))
    print("\n### Wall time per phase\n")
    print(markdown_table(["cycle", "phase", "wall s", "% of total", "slots busy", ">= 1 idle core", "label CPU s",
                 "labelling-core util."], rows))
    print("\n### Wall time by kind of phase (summed over cycles)\n")
    kind_rows = [[k, v, f"{100 * v / wall:.1f}%"] for k, v in kinds.items()]
    print(markdown_table(["kind", "wall s", "% of total"],
                         kind_rows + [["after the last phase row", tail, f"{100 * tail / wall:.1f}%"]]))
    print("\n### Labels per fidelity (from the store)\n")
    print(markdown_table(["role", "fidelity", "labels", "not ok", "CPU s", "CPU s / label", "labeller wall s"],
                         fidelity_rows(cfg, store, sp)))
    print("\n### Task compute time by kind (Dask task stream)\n")
    print(task_kind_table(info))


# -------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--campaign", type=Path, default=ROOT / "campaigns" / "quickstart.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="campaign overrides, as alloop run --set (repeatable)")
    p.add_argument("--quick", action="store_true", help="a small campaign (overrides QUICK_SETS first)")
    p.add_argument("--workers", type=int, default=2, help="Dask worker processes (default 2)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="run directory: new (the campaign runs there) or a finished run of this script (reported)")
    p.add_argument("--accuracy", action="store_true", help="also the accuracy-vs-cost comparison")
    p.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data", help="folder of the ethanol extxyz files")
    p.add_argument("--seeds", default=None, help="seeds of the random-frame baseline (c), e.g. 0,1,2 (quick: 0)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the accuracy part's training runs")
    p.add_argument("--verbose", action="store_true", help="print per-epoch training lines too")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from alloop.config import CampaignConfig, load_campaign
    from alloop.errors import AlloopError
    from alloop.store.campaign import CampaignStore
    from alloop.store.ledger import finished_reason
    from alloop.store.resolve import store_path

    overrides = (QUICK_SETS if args.quick else []) + list(args.overrides)
    run_dir = args.run_dir
    try:
        if run_dir is not None and (store_path(run_dir) / "zarr.json").is_file():
            with CampaignStore.open(store_path(run_dir), "r") as store:
                if finished_reason(store) is None:
                    raise AlloopError(f"{run_dir} holds an unfinished campaign; resume it or choose a new --run-dir")
                cfg = CampaignConfig.from_dict(store.config, check_files=False)
            timing = run_dir / TIMING_FILE
            info = json.loads(timing.read_text()) if timing.is_file() else None
            print(f"reporting the finished campaign in {run_dir}" + ("" if info else f" (no {TIMING_FILE}: no timing)"))
        else:
            cfg = load_campaign(args.campaign, overrides)
            run_dir = run_dir or Path(tempfile.mkdtemp(prefix="campaign_bench-"))
            print(f"running campaign {args.campaign} in {run_dir} with {args.workers} Dask workers"
                  f"{' (quick)' if args.quick else ''}; overrides: {' '.join(overrides) or '(none)'}", flush=True)
            run_dir.mkdir(parents=True, exist_ok=True)
            info = run_campaign(cfg, run_dir, args.workers, overrides, args.verbose)
        with CampaignStore.open(store_path(run_dir), "r") as store:
            if info is not None:
                timing_report(cfg, store, info)
            if not args.accuracy:
                return 0
            from lib.campaign_accuracy import accuracy_report

            seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
            return accuracy_report(cfg, store, args.data, seeds, args.threads)
    except AlloopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
