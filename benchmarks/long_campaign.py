"""A long campaign that costs little QM: does the loop's per-cycle cost stay flat over 100 cycles and 10,000 labels?

It runs ``campaigns/long-xtb.yaml`` (ethanol at 500 K, GFN1-xTB cheap and GFN2-xTB expensive labels of a few ms
each, the small EGNN on a fixed step budget, 100 cheap and up to 10 expensive labels per cycle) with ``alloop run``
as a subprocess, in either loop mode or both (``schedule.mode``), and watches it from outside: nothing in alloop
changes. While the campaign runs, this script polls the store's commit record (``store.zarr/zarr.json``, replaced
atomically at every commit) every 0.1 s; on each new commit ``seq`` it samples the driver process (the ``alloop
run`` process, which hosts the Dask scheduler, the nannies, the client and the loop; its workers are child
processes): resident memory (VmRSS of /proc/PID/status), CPU time (utime + stime of /proc/PID/stat: the driver runs
no task, so its CPU is orchestration), the store's size on disk (st_blocks of every file, as ``du``), the frames
recorded, and the workers' summed RSS. The driver's RSS is also sampled every second for its peak within a cycle.

Per-cycle times come from the store, read after the run: the ``progress`` table holds one row per finished phase,
stamped just before its commit, and the commit record's ``time_unix`` is stamped after the commit's data were written
and fsync'd, so commit record time - progress time is that commit's cost ("store commit"; a commit the poll missed
counts 0 there and its cost lands in the next phase). A phase's wall time is its progress time minus the end of the
previous phase's commit:

- synchronous: MD (segments, Q-residual scores, cheap pick) = explored - previous cycle's trained; cheap labels =
  labelled-cheap - explored; selection (bias B task, expensive pick) = selected-expensive - labelled-cheap; expensive
  labels = labelled-expensive - selected-expensive; training = the training task's own ``train_seconds`` (``cycles``
  table: every ASTEROID stage, the Q-residual and error-model fits); "eval + rest" = trained - labelled-expensive -
  training: the evaluation-set scores (computed in the training task after its clock stops), the result's transfer
  and the driver storing the models; store commit = the five phase marks' commits (the labels are committed by a
  commit of their own just before their phase's mark, which has no progress row: its cost falls in the label
  phase); cycle wall = all of it.
- asynchronous: the phases of successive cycles overlap, so only these are attributed to a cycle: cycle wall = the
  interval between consecutive ``trained`` commits, training (as above), wall - training (what the critical path
  spends outside training: "excl. training"), MD interval = explored - previous cycle's explored (cycle 0: the
  bootstrap's trained; a cadence: a cycle's MD waits for the model two cycles back), label latency =
  labelled-expensive - explored (the cycle's cheap labels, selection and expensive labels, overlapped with other
  cycles' work) and its phase marks' commits (the labels' own commits, every 15 s, are not timed).

Driver CPU, RSS and store size are read at each cycle's ``trained`` commit (CPU: the difference from the previous
one). Printed: the per-cycle table every ``--print-every`` cycles while it runs (all of it again when a saved run
is reused), and a summary at the end: the ratios of issue 45's done-when between the cycles of the windows 5-15 %
and 90-100 % of the run (cycles 5-14 and 90-99 of 100), the growth of each phase between them, and the wall time
of ``alloop status``, ``alloop status --check``, ``alloop report`` and ``alloop resume`` (a no-op on a finished
campaign) on the finished store, next to the start-up every command pays (``alloop status --help``). Then a PNG of
the per-cycle cost against the cycle. Everything sampled is saved to ``RUNS/<mode>.json``; a second call with the
same ``--runs`` reuses a finished run (reprints, times the commands again, redraws). ``--kill-workers N``
SIGKILLs a Dask worker in N warm cycles as their labels start and checks, at the end, that every label committed
before a kill is there, bit-identical, and none is stored twice (``lib/worker_kills.py``).

    python benchmarks/long_campaign.py --cycles 6 --runs /tmp/long-dev           # development run, both modes
    python benchmarks/long_campaign.py --runs /work/bench/long                  # the benchmark: 100 cycles, both
    python benchmarks/long_campaign.py --mode asynchronous --runs /work/bench/long --plot long.png
    python benchmarks/long_campaign.py --kill-workers 10 --runs /work/bench/long-kills  # + worker deaths
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lib.common import ROOT, markdown_table
from lib.plots import figure
from lib.worker_kills import WorkerKiller, verdict_table

CAMPAIGN = ROOT / "campaigns" / "long-xtb.yaml"
MODES = ("synchronous", "asynchronous")
#: seconds between two looks at the commit record
POLL_S = 0.1
#: seconds between two samples of the driver's RSS for its per-cycle peak
RSS_EVERY_S = 1.0
#: the done-when's windows, as shares of the run's cycles: cycles 5-15 and 90-100 of 100 (end excluded)
EARLY_WINDOW, LATE_WINDOW = (0.05, 0.15), (0.90, 1.00)
#: the done-when's limits
WALL_RATIO_MAX, RSS_RATIO_MAX, STATUS_S_MAX, REPORT_S_MAX = 1.3, 1.2, 2.0, 60.0
#: the limit this script puts on the growth of a warm cycle's training time (its step budget is fixed)
TRAIN_RATIO_MAX = 1.3
SYNC_PHASES = ("explored", "labelled-cheap", "selected-expensive", "labelled-expensive", "trained")


# --------------------------------------------------------------------------- what is sampled from outside
@dataclass
class Sample:
    """One commit seen by the poll, with the driver and the store at that moment."""

    seq: int
    cycle: int | None
    phase: str | None
    commit_unix: float  # the commit record's time_unix (after its data were written and fsync'd)
    seen_unix: float
    rss_MB: float
    cpu_s: float
    workers_rss_MB: float
    store_MB: float
    frames: int
    load1: float = float("nan")  # the machine's 1-minute load average (NaN in runs saved before it was sampled)


@dataclass
class Watch:
    """A campaign watched from outside: its commits and the driver's RSS samples."""

    samples: list[Sample] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (unix time, driver RSS MB) every RSS_EVERY_S
    wall_s: float = 0.0
    load_average: list[float] = field(default_factory=list)
    driver_pid: int = 0  # the ``alloop run`` process, while it runs


def proc_rss_MB(pid: int) -> float:
    """VmRSS of process ``pid`` (MB); NaN when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of process ``pid`` (CPU s of all its threads, not its children); NaN when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 and 15 of stat(5)


def children_rss_MB(pid: int) -> float:
    """Summed RSS (MB) of the processes below ``pid`` (the Dask workers)."""
    import psutil

    total = 0.0
    try:
        for child in psutil.Process(pid).children(recursive=True):
            try:
                total += child.memory_info().rss / 2**20
            except psutil.Error:
                pass
    except psutil.Error:
        return float("nan")
    return total


def disk_usage_MB(path: Path) -> float:
    """Space the files under ``path`` take on disk (MB; st_blocks, as ``du``)."""
    total, stack = 0, [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                pass
    return total / 2**20


def read_record(store: Path) -> dict[str, Any] | None:
    """The store's commit record (None while it cannot be read)."""
    try:
        return json.loads((store / "zarr.json").read_bytes())["attributes"]["commit"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def watch(w: Watch, command: list[str], store: Path, out: Path, on_commit: Callable[[Sample], None]) -> None:
    """Run ``command`` (output appended to ``out``) and sample it into ``w`` at each new commit of ``store``, then
    call ``on_commit(sample)``. SystemExit if the command fails."""
    w.load_average = list(os.getloadavg())
    meta = store / "zarr.json"
    t0, last_key, last_seq, next_rss = time.perf_counter(), None, -1, 0.0
    with out.open("a") as fh:
        proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        w.driver_pid = proc.pid
        try:
            while True:
                running = proc.poll() is None
                now = time.time()
                if now >= next_rss:
                    w.rss.append((now, proc_rss_MB(proc.pid)))
                    next_rss = now + RSS_EVERY_S
                try:
                    st = meta.stat()
                    key = (st.st_ino, st.st_mtime_ns, st.st_size)
                except OSError:
                    key = None
                if key is not None and key != last_key:
                    record = read_record(store)
                    if record is not None and int(record["seq"]) > last_seq:
                        last_key, last_seq = key, int(record["seq"])
                        sample = Sample(
                            seq=last_seq, cycle=record.get("cycle"), phase=record.get("phase"),
                            commit_unix=float(record.get("time_unix", now)), seen_unix=now,
                            rss_MB=proc_rss_MB(proc.pid), cpu_s=proc_cpu_s(proc.pid),
                            workers_rss_MB=children_rss_MB(proc.pid), store_MB=disk_usage_MB(store),
                            frames=int((record.get("frames") or {}).get("rows", 0)), load1=os.getloadavg()[0])
                        w.samples.append(sample)
                        on_commit(sample)
                if not running:
                    break
                time.sleep(POLL_S)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    w.wall_s = time.perf_counter() - t0
    w.load_average += list(os.getloadavg())
    if proc.returncode != 0:
        raise SystemExit(f"long_campaign.py: {' '.join(command[2:4])} exited with {proc.returncode}; see {out}")


# --------------------------------------------------------------------------- per-cycle rows
def store_tables(run_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """The ``progress`` and ``cycles`` tables and the label counts of the campaign in ``run_dir`` (read-only)."""
    from alloop.config import CampaignConfig
    from alloop.store import tables
    from alloop.store.campaign import CampaignStore
    from alloop.store.ledger import spend
    from alloop.store.resolve import store_path

    with CampaignStore.open(store_path(run_dir), "r") as store:
        progress, cycles = tables.read(store, tables.PROGRESS), tables.read(store, tables.CYCLES)
        cfg = CampaignConfig.from_dict(store.config, check_files=False)
        spent = spend(store, {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity})
    return progress, cycles, {"labels": spent.labels, "cpu_s": spent.cpu_seconds}


def _commit_ends(progress: dict[str, np.ndarray], samples: Sequence[Sample]) -> dict[tuple[int, str], tuple[float, float]]:
    """(cycle, phase) -> (progress time, end of its commit): the first commit seen with that cycle and phase at or
    after the progress time (the progress time itself when the poll missed it)."""
    ends: dict[tuple[int, str], tuple[float, float]] = {}
    for cycle, phase, t in zip(progress["cycle"].tolist(), map(str, progress["phase"]), progress["time"].tolist(),
                               strict=True):
        seen = [s.commit_unix for s in samples if s.cycle == cycle and s.phase == phase and s.commit_unix >= t]
        ends.setdefault((int(cycle), phase), (float(t), min(seen, default=float(t))))
    return ends


def _sample_at(samples: Sequence[Sample], t: float) -> Sample | None:
    """The first sample of a commit at or after unix time ``t``."""
    return next((s for s in samples if s.commit_unix >= t - 1e-6), None)


def cycle_rows(mode: str, w: Watch, progress: dict[str, np.ndarray], cycles: dict[str, np.ndarray]) -> list[dict]:
    """One dict per trained cycle: wall time by phase (s), driver CPU s, RSS MB, store MB, frames."""
    ends = _commit_ends(progress, w.samples)
    train_s = {int(c): float(s) for c, s in zip(cycles["cycle"], cycles["train_seconds"], strict=True)}
    md_frames = {int(c): int(n) for c, n in zip(cycles["cycle"], cycles["md_frames"], strict=True)}
    trained = sorted(c for c, p in ends if p == "trained" and c >= 0)
    rows: list[dict[str, Any]] = []
    previous = ends.get((-1, "trained"))
    for k in trained:
        if previous is None:
            break
        t_k = ends[(k, "trained")]
        start = previous[1]
        before, after = _sample_at(w.samples, start), _sample_at(w.samples, t_k[1])
        commits = [(c, p) for (c, p) in ends if start < ends[(c, p)][0] <= t_k[0]]
        row: dict[str, Any] = {
            "cycle": k, "wall_s": t_k[1] - start, "train_s": train_s.get(k, float("nan")),
            "commit_s": sum(ends[cp][1] - ends[cp][0] for cp in commits),
            "driver_cpu_s": (after.cpu_s - before.cpu_s) if before and after else float("nan"),
            "rss_MB": after.rss_MB if after else float("nan"),
            "peak_rss_MB": max([r for t, r in w.rss if start <= t <= t_k[1]] + ([after.rss_MB] if after else []),
                               default=float("nan")),
            "workers_rss_MB": after.workers_rss_MB if after else float("nan"),
            "store_MB": after.store_MB if after else float("nan"),
            "frames": after.frames if after else 0, "md_frames": md_frames.get(k, 0),
            "load": after.load1 if after else float("nan"),
        }
        row["excl_train_s"] = row["wall_s"] - row["train_s"]
        row["driver_share"] = row["driver_cpu_s"] / row["wall_s"]
        if mode == "synchronous":
            marks = [ends[(k, p)] for p in SYNC_PHASES if (k, p) in ends]
            if len(marks) == len(SYNC_PHASES):
                bounds = [start] + [m[1] for m in marks[:-1]]  # each phase starts when the previous commit ended
                md, cheap, sel, exp, tr = (m[0] - b for m, b in zip(marks, bounds, strict=True))
                row.update(md_s=md, cheap_labels_s=cheap, selection_s=sel, expensive_labels_s=exp,
                           eval_rest_s=tr - row["train_s"])
        else:
            ex, le = ends.get((k, "explored")), ends.get((k, "labelled-expensive"))
            ex_prev = ends.get((k - 1, "explored") if k > 0 else (-1, "trained"))
            row["md_interval_s"] = ex[0] - ex_prev[1] if ex and ex_prev else float("nan")
            row["label_latency_s"] = le[0] - ex[1] if ex and le else float("nan")
        row["store_growth_MB"] = row["store_MB"] - (rows[-1]["store_MB"] if rows else before.store_MB if before
                                                     else float("nan"))
        rows.append(row)
        previous = t_k
    return rows


# --------------------------------------------------------------------------- tables
#: (key, header, format) of the per-cycle table, per mode
COLUMNS = {
    "synchronous": [("md_s", "MD s", "{:.1f}"), ("cheap_labels_s", "cheap labels s", "{:.1f}"),
                    ("selection_s", "selection s", "{:.1f}"), ("expensive_labels_s", "exp. labels s", "{:.1f}"),
                    ("train_s", "training s", "{:.1f}"), ("eval_rest_s", "eval + rest s", "{:.1f}"),
                    ("commit_s", "store commit s", "{:.2f}")],
    "asynchronous": [("md_interval_s", "MD interval s", "{:.1f}"), ("label_latency_s", "label latency s", "{:.1f}"),
                     ("train_s", "training s", "{:.1f}"), ("commit_s", "store commits s", "{:.2f}")],
}
COMMON = [("wall_s", "cycle wall s", "{:.1f}"), ("excl_train_s", "excl. training s", "{:.1f}"),
          ("driver_cpu_s", "driver CPU s", "{:.2f}"), ("rss_MB", "driver RSS MB", "{:.0f}"),
          ("workers_rss_MB", "workers RSS MB", "{:.0f}"), ("store_MB", "store MB", "{:.1f}"),
          ("md_frames", "MD frames", "{}"), ("frames", "frames in store", "{}"), ("load", "load avg", "{:.1f}")]


def per_cycle_table(mode: str, rows: Sequence[dict], header: bool = True) -> str:
    cols = [("cycle", "cycle", "{}")] + COLUMNS[mode] + COMMON
    text = markdown_table([h for _, h, _ in cols],
                          [[f.format(r.get(k, float("nan"))) for k, _, f in cols] for r in rows])
    return text if header else "\n".join(text.splitlines()[2:])


def window(n_cycles: int, share: tuple[float, float]) -> range:
    """The cycles of a window given as shares of the run (at least one cycle, from cycle 1 on)."""
    lo = min(n_cycles - 1, max(1, round(share[0] * n_cycles)))
    return range(lo, max(lo + 1, min(n_cycles, round(share[1] * n_cycles))))


def _mean(rows: Sequence[dict], key: str, cycles: range) -> float:
    values = [r[key] for r in rows if r["cycle"] in cycles and np.isfinite(r.get(key, np.nan))]
    return float(np.mean(values)) if values else float("nan")


def summary(mode: str, rows: Sequence[dict], n_cycles: int, steps_per_warm_cycle: int, labels: dict[str, int],
            commands: dict[str, float], wall_s: float) -> tuple[str, dict[str, float]]:
    """The done-when's figures as a Markdown table, and the figures."""
    early, late = window(n_cycles, EARLY_WINDOW), window(n_cycles, LATE_WINDOW)
    # the last cycle is the final retrain (full budget, from scratch, every label evaluated): a one-off, not the
    # cost of a cycle late in the campaign, so the late window and the RSS range stop before it
    warm = range(early.start, n_cycles - 1)
    late = range(late.start, min(late.stop, n_cycles - 1)) or range(n_cycles - 2, n_cycles - 1)
    ew, lw = (f"{w.start}-{w.stop - 1}" if len(w) > 1 else f"{w.start}" for w in (early, late))
    excl = "cycle wall - training" if mode == "synchronous" else "interval between trained commits - training"
    f = {
        "wall_early_s": _mean(rows, "excl_train_s", early), "wall_late_s": _mean(rows, "excl_train_s", late),
        "train_early_s": _mean(rows, "train_s", early), "train_late_s": _mean(rows, "train_s", late),
        "cpu_early_s": _mean(rows, "driver_cpu_s", early), "cpu_late_s": _mean(rows, "driver_cpu_s", late),
    }
    rss = [r["rss_MB"] for r in rows if r["cycle"] in warm and np.isfinite(r["rss_MB"])]
    final = [r["rss_MB"] for r in rows if r["cycle"] == n_cycles - 1]
    f["rss_min_MB"], f["rss_max_MB"] = (min(rss), max(rss)) if rss else (float("nan"),) * 2
    f["wall_ratio"] = f["wall_late_s"] / f["wall_early_s"]
    f["train_ratio"] = f["train_late_s"] / f["train_early_s"]
    f["rss_ratio"] = f["rss_max_MB"] / f["rss_min_MB"]
    trains = [r["train_s"] for r in rows if r["cycle"] in warm]
    ms_step = 1000 * np.array(trains) / steps_per_warm_cycle

    def verdict(ok: bool) -> str:
        return "yes" if ok else "**no**"

    def growth(key: str, fmt: str = "{:.1f}") -> str:
        a, b = _mean(rows, key, early), _mean(rows, key, late)
        return f"{fmt.format(a)} -> {fmt.format(b)}" + (f": x{b / a:.2f}" if a > 0 else "")

    lines = [
        (f"per-cycle wall excl. training ({excl}), cycles {ew} -> {lw} (s)",
         f"{f['wall_early_s']:.1f} -> {f['wall_late_s']:.1f}: x{f['wall_ratio']:.2f}",
         f"<= {WALL_RATIO_MAX}", verdict(f["wall_ratio"] <= WALL_RATIO_MAX)),
        *((f"... {header.removesuffix(' s')} (s)", growth(key, fmt), "", "")
          for key, header, fmt in COLUMNS[mode] if key != "train_s"),
        (f"training per warm cycle ({steps_per_warm_cycle} optimiser steps), cycles {ew} -> {lw} (s)",
         f"{f['train_early_s']:.1f} -> {f['train_late_s']:.1f}: x{f['train_ratio']:.2f}",
         f"<= {TRAIN_RATIO_MAX} (this script's)", verdict(f["train_ratio"] <= TRAIN_RATIO_MAX)),
        ("... training s / optimiser steps, every warm cycle (ms)",
         f"{ms_step.min():.0f} to {ms_step.max():.0f}" if ms_step.size else "-", "", ""),
        (f"driver RSS at the trained commits of warm cycles {warm.start}-{warm.stop - 1} (MB)",
         f"{f['rss_min_MB']:.0f} to {f['rss_max_MB']:.0f}: x{f['rss_ratio']:.2f}", f"<= {RSS_RATIO_MAX}",
         verdict(f["rss_ratio"] <= RSS_RATIO_MAX)),
        ("... after the final retrain (MB)", f"{final[0]:.0f}" if final else "-", "", ""),
        (f"driver CPU per cycle (orchestration), cycles {ew} -> {lw} (s)", growth("driver_cpu_s", "{:.2f}"), "", ""),
        ("... as a share of the cycle's wall time", growth("driver_share", "{:.1%}").split(":")[0], "", ""),
        (f"store growth per cycle, cycles {ew} -> {lw} (MB)", growth("store_growth_MB", "{:.2f}"), "", ""),
        (f"machine's load average (1 min) at the trained commits, cycles {ew} -> {lw}",
         growth("load").split(":")[0], "", ""),
        ("store on disk at the end (MB)", f"{rows[-1]['store_MB']:.1f}" if rows else "-", "", ""),
        ("labels stored: cheap, expensive", f"{labels.get('cheap', 0)}, {labels.get('expensive', 0)}",
         ">= 10,000 in all", verdict(sum(labels.values()) >= 10_000)),
        ("cycles; campaign wall time (s)", f"{len(rows)}; {wall_s:.0f}", ">= 100 cycles", verdict(len(rows) >= 100)),
    ]
    lines += _command_lines(commands, f)
    return markdown_table(["quantity", mode, "target", "met"], lines), f


def _command_lines(commands: dict[str, float], figures: dict[str, float]) -> list[tuple[str, str, str, str]]:
    """The summary's rows of the commands timed on the finished store (their seconds also go into ``figures``)."""
    lines = []
    for name, seconds in commands.items():
        limit = {"alloop status": STATUS_S_MAX, "alloop report": REPORT_S_MAX}.get(name)
        what = "start-up of every command: `alloop status --help`" if name.endswith("--help") else \
            f"`{name}` on the finished store"
        met = ("yes" if seconds <= limit else "**no**") if limit else ""
        lines.append((f"{what} (s)", f"{seconds:.2f}", f"<= {limit:g}" if limit else "", met))
        figures[f"{name.replace('alloop ', '').replace(' --', '_').replace('-', '')}_s"] = seconds
    return lines


# --------------------------------------------------------------------------- one mode
def alloop_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "alloop.cli", *args]


def time_commands(run_dir: Path, log: Path) -> dict[str, float]:
    """Wall seconds of status, status --check, report and resume on the finished store (output to ``log``), and of
    ``alloop status --help``: the command line's start-up (Python, the imports of every command's module), which every
    command pays before it reads anything."""
    timings = {}
    with log.open("a") as fh:
        for name, args in (("alloop status --help", ["status", "--help"]),
                           ("alloop status", ["status", str(run_dir)]),
                           ("alloop status --check", ["status", "--check", str(run_dir)]),
                           ("alloop report", ["report", str(run_dir)]),
                           ("alloop resume", ["resume", str(run_dir), "--no-progress"])):
            fh.write(f"\n$ {name} {run_dir}\n")
            fh.flush()
            t0 = time.perf_counter()
            subprocess.run(alloop_command(*args), check=True, stdout=fh, stderr=subprocess.STDOUT)
            timings[name] = time.perf_counter() - t0
    return timings


def _reuse(saved: Path, n_cycles: int) -> Watch:
    """The measurements of a finished run, saved by :func:`_run_fresh`."""
    data = json.loads(saved.read_text())
    if data.get("n_cycles") != n_cycles:
        raise SystemExit(f"long_campaign.py: {saved} holds a run of {data.get('n_cycles')} cycles, not {n_cycles}")
    print(f"(reusing the finished run: {saved})", flush=True)
    return Watch(samples=[Sample(**s) for s in data["samples"]], rss=[tuple(r) for r in data["rss"]],
                 wall_s=data["wall_s"], load_average=data["load_average"])


def _run_fresh(mode: str, n_cycles: int, runs: Path, print_every: int, kill_workers: int) -> Watch:
    """Run the campaign in ``mode`` under watch, printing the per-cycle table every ``print_every`` cycles; save
    the measurements (and the worker kills' verdict) beside the run."""
    from alloop.errors import AlloopError
    from alloop.store.resolve import store_path

    run_dir, saved, out = runs / mode, runs / f"{mode}.json", runs / f"{mode}.out"
    if run_dir.exists():
        raise SystemExit(f"long_campaign.py: {run_dir} exists without {saved.name} (an interrupted run?): "
                         "remove it or give another --runs")
    printed: list[int] = []
    killer = WorkerKiller.planned(run_dir, kill_workers, n_cycles) if kill_workers else None
    w = Watch()

    def on_commit(sample: Sample) -> None:
        if killer is not None:
            killer.on_commit(sample.cycle, sample.phase, w.driver_pid)
        if sample.phase != "trained" or sample.cycle is None or sample.cycle < 0:
            return
        if (sample.cycle + 1) % print_every == 0 or sample.cycle == n_cycles - 1:
            try:
                progress, cycles, _ = store_tables(run_dir)
            except AlloopError as exc:  # a store that cannot be read now: the next print catches up
                print(f"(per-cycle table not readable now: {exc})", flush=True)
                return
            rows = [r for r in cycle_rows(mode, w, progress, cycles) if r["cycle"] not in printed]
            if not printed:
                print(f"\n### {mode}: per cycle\n", flush=True)
            print(per_cycle_table(mode, rows, header=not printed), flush=True)
            printed.extend(r["cycle"] for r in rows)

    command = alloop_command("run", str(CAMPAIGN), "--dir", str(run_dir), "--no-progress",
                             "--set", f"schedule.mode={mode}", "--set", f"schedule.n_cycles={n_cycles}")
    watch(w, command, store_path(run_dir), out, on_commit)
    kills = killer.verdict() if killer is not None else None
    saved.write_text(json.dumps({"n_cycles": n_cycles, "samples": [asdict(s) for s in w.samples], "rss": w.rss,
                                 "wall_s": w.wall_s, "load_average": w.load_average, "worker_kills": kills}))
    return w


def run_mode(mode: str, n_cycles: int, runs: Path, print_every: int, kill_workers: int = 0) -> dict[str, Any]:
    """Run (or reuse) the campaign in ``mode`` (SIGKILLing ``kill_workers`` Dask workers on the way:
    ``lib/worker_kills.py``); print its tables; returns what was measured."""
    from alloop.config import load_campaign

    run_dir, saved, out = runs / mode, runs / f"{mode}.json", runs / f"{mode}.out"
    cfg = load_campaign(CAMPAIGN)
    t = cfg.training
    steps_warm = 2 * max(1, round(t.steps * t.warm_start_fraction)) + t.finetune_steps
    print(f"\n## {mode}: {n_cycles} cycles of {CAMPAIGN.relative_to(ROOT)} in {run_dir}", flush=True)
    reused = saved.is_file()
    w = _reuse(saved, n_cycles) if reused else _run_fresh(mode, n_cycles, runs, print_every, kill_workers)
    progress, cycles, spent = store_tables(run_dir)
    rows = cycle_rows(mode, w, progress, cycles)
    commands = time_commands(run_dir, out)
    if reused:
        print(f"\n### {mode}: per cycle\n\n{per_cycle_table(mode, rows)}", flush=True)
    table, figures = summary(mode, rows, n_cycles, steps_warm, spent["labels"], commands, w.wall_s)
    load = " ".join(f"{x:.1f}" for x in w.load_average)
    print(f"\n### {mode}: summary (load average before and after the run: {load})\n\n{table}", flush=True)
    kills = json.loads(saved.read_text()).get("worker_kills")
    if kills:
        print(f"\n### {mode}: Dask workers SIGKILLed during the run\n\n{verdict_table(kills)}", flush=True)
        if kills["lost"] or kills["changed"] or kills["duplicates"]:
            raise SystemExit(f"long_campaign.py: worker kills lost, changed or duplicated labels: {kills}")
    return {"mode": mode, "rows": rows, "figures": figures, "n_cycles": n_cycles}


# --------------------------------------------------------------------------- plot
def plot(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Per-cycle cost against the cycle: wall by phase, driver CPU and commits, RSS and store size; one column
    per mode."""
    with figure(path, 3, len(results), (6.5 * len(results), 10), dpi=110, sharex="col") as axes:
        for col, res in enumerate(results):
            _plot_column(axes[:, col], res["rows"], res["mode"])


def _plot_column(axes: Any, rows: Sequence[dict], mode: str) -> None:
    """One mode's column of :func:`plot`: wall time per cycle, driver CPU and commits, memory and store size."""
    from matplotlib.ticker import MaxNLocator

    x = np.array([r["cycle"] for r in rows])

    def y(key: str) -> np.ndarray:
        return np.array([r.get(key, np.nan) for r in rows], float)

    ax = axes[0]
    if mode == "synchronous":
        keys = [(k, h) for k, h, _ in COLUMNS[mode]]
        ax.stackplot(x, *[np.nan_to_num(y(k)) for k, _ in keys], labels=[h.removesuffix(" s") for _, h in keys])
        ax.plot(x, y("excl_train_s"), "k--", label="all but training")
    else:
        for key, label in (("wall_s", "cycle wall"), ("train_s", "training"), ("excl_train_s", "excl. training"),
                           ("label_latency_s", "label latency")):
            ax.plot(x, y(key), label=label)
    ax.set(ylabel="s per cycle", title=f"{mode}: per-cycle wall time")
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[1]
    ax.plot(x, y("driver_cpu_s"), label="driver CPU (orchestration)")
    ax.plot(x, y("commit_s"), label="store commits")
    ax.set(ylabel="s per cycle")
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[2]
    ax.plot(x, y("rss_MB"), label="driver RSS")
    ax.plot(x, y("peak_rss_MB"), ":", label="driver RSS, peak in the cycle")
    ax.set(ylabel="MB", xlabel="cycle")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    twin = ax.twinx()
    twin.plot(x, y("store_MB"), color="tab:green", label="store on disk")
    twin.set_ylabel("store MB")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="upper left")


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cycles", type=int, default=100, help="schedule.n_cycles (default 100)")
    p.add_argument("--mode", choices=(*MODES, "both"), default="both", help="schedule.mode (default both)")
    p.add_argument("--runs", type=Path, default=None,
                   help="folder of the runs (RUNS/<mode>: run directory; RUNS/<mode>.out: output; RUNS/<mode>.json: "
                        "the samples); a finished run there is reused (default: a new temporary folder)")
    p.add_argument("--plot", type=Path, default=None, help="the PNG (default RUNS/long_campaign.png)")
    p.add_argument("--print-every", type=int, default=10, help="print the per-cycle table every N cycles (default 10)")
    p.add_argument("--kill-workers", type=int, default=0,
                   help="SIGKILL a Dask worker in N warm cycles as their labels start (lib/worker_kills.py; default 0)")
    args = p.parse_args(argv)
    if args.cycles < 4:
        p.error("--cycles must be at least 4 (windows of warm cycles to compare)")
    runs = args.runs or Path(tempfile.mkdtemp(prefix="long_campaign-"))
    runs.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(f"long campaign: {args.cycles} cycles, {args.mode}, runs in {runs}; {os.cpu_count()} cores, load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", flush=True)
    modes = MODES if args.mode == "both" else (args.mode,)
    results = [run_mode(mode, args.cycles, runs, max(1, args.print_every), args.kill_workers) for mode in modes]
    plot(results, args.plot or runs / "long_campaign.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
