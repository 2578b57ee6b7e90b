"""Kill soak: SIGKILL a whole campaign (driver, scheduler, workers) many times over its phases, resume after each.

The campaign is the crash tests' tiny water campaign (``tests/harness/campaigns.py``, imported through
``lib/kill_harness.py``) with enough cycles for the kills (``--cycles``; the default holds the plan's mean cost: 84
cycles for 100 kills), every cycle labelling its full cheap quota, and label limits that bind near its end. The
kill points are the crash tests' (``tests/harness/kill_resume.py``, ``kill_points.py``): each run completes 1 to 3
new store commits and is killed after the last of them, inside the next one (its data written, its record not), at
a random instant before the next one (``during``, up to 3 s: MD, labelling or training), at the n-th label result
the driver receives after it (``label``: written, not committed) or at the n-th training epoch it is told of
(``epoch``; these two wait through up to a cycle's commits for their events, else die inside the commit after). The
plan is drawn from ``--seed`` and counted in the commits the campaign makes whatever the machine (3 in the
bootstrap, 5 per cycle), so every kill happens on any machine; the modes rotate, each used as often as the others.

After every kill it reads the store and checks, and again after the run that finishes the campaign:

- every label committed before any kill is still there and bit-identical (status, energy, forces);
- no (frame, fidelity) is stored twice;
- the kill left exactly the planned commit (a progress kill: one within its window).

At the end: the label limits per fidelity are respected, every cycle trained, every phase committed exactly
once and 'finished' once, the store's invariants hold (``check_invariants``). With
``--compare-uninterrupted`` the same campaign runs once more without kills and the final models are
compared (max abs parameter difference), with the frames and labels both runs made. The synchronous loop is
meant to be deterministic (the training data are ordered by frame id, not by the order labels finish), so
there the models must agree when the frames and labels do; the asynchronous loop is not (which model
explores and selects depends on when a training lands), so its difference is reported, not checked.

One line per kill, then a Markdown table; exit 1 if a check fails.

    python benchmarks/kill_soak.py --kills 100                          # the soak (40 cycles)
    python benchmarks/kill_soak.py --kills 10 --compare-uninterrupted   # a small one (~5 min on 2 busy cores)
"""

from __future__ import annotations

import argparse
import math
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lib.kill_harness import (
    ALL_MODES,
    PROGRESS_MODES,
    WINDOW,
    KillPoint,
    RunHung,
    campaign_command,
    check_invariants,
    committed_label_entries,
    committed_phases,
    committed_seq,
    kill_plan,
    lost_and_changed,
    phase_commits,
    plan_cost,
    run_group,
    tail,
    write_tiny,
)

#: parameters of two final models agree when every element is within this of the other (absolute)
MODEL_ATOL = 1e-6
#: where a kill landed, from the killer's note
LANDED = {"after commit": "after a commit", "inside commit": "inside a commit", "during:": "at a random instant",
          "label": "at a label result", "epoch": "at a training epoch"}


@dataclass
class Soak:
    """The soak's campaign, its plan and what the checks found so far."""

    yaml: Path
    workdir: Path
    plan: list[KillPoint]
    n_cycles: int
    mode: str
    t0: float = field(default_factory=time.perf_counter)
    seq: int = 0
    kills: int = 0
    resumes: int = 0
    committed: dict = field(default_factory=dict)  # label key -> value when first seen committed before a kill
    comparisons: int = 0
    lost: set = field(default_factory=set)
    changed: set = field(default_factory=set)
    duplicates: set = field(default_factory=set)
    landed: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.workdir / "killed"

    @property
    def stderr(self) -> Path:
        return self.workdir / "campaign.stderr"

    @property
    def note(self) -> Path:
        return self.workdir / "kills.note"

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


# --------------------------------------------------------------------------- the campaign
def write_campaign(folder: Path, n_cycles: int, mode: str) -> Path:
    """The tiny campaign with ``n_cycles`` cycles, each labelling its full cheap quota (the tiny model soon flags
    nothing: filled up with frames below the limit), and label limits that bind in its last cycle (cheap: the
    last cycle gets half its quota) or half-way (expensive), so that the limits are exercised but no cycle is cut."""
    from alloop.config import load_campaign

    cfg = load_campaign(write_tiny(folder, cycles=n_cycles, mode=mode))
    per_cycle, boot = cfg.selection.max_cheap_per_cycle, cfg.schedule.bootstrap
    max_cheap = boot.n_samples + per_cycle * n_cycles - per_cycle // 2
    max_expensive = boot.n_expensive + cfg.selection.max_expensive_per_cycle * n_cycles // 2
    return write_tiny(folder, cycles=n_cycles, mode=mode, max_cheap=max_cheap, max_expensive=max(1, max_expensive),
                      min_cheap=per_cycle)


def _run(soak: Soak, point: KillPoint | None) -> int:
    """One run of the campaign (through the killer when ``point`` is given); its exit code."""
    command = campaign_command(soak.yaml, soak.run_dir, point, soak.note)
    soak.resumes += int("resume" in command)
    return run_group(command, soak.stderr)


def _landed(soak: Soak) -> str:
    """Where the last kill landed (the killer's last note)."""
    lines = soak.note.read_text().splitlines() if soak.note.exists() else []
    return lines[-1] if lines else "?"


def kill_once(soak: Soak, point: KillPoint) -> bool:
    """Run until the kill point, check the store; False if the run did not end at its kill point."""
    commits, mode, at = point
    code = _run(soak, point)
    if code != -signal.SIGKILL:
        soak.problems.append(f"run {soak.kills + 1} ended with exit code {code} before its kill point {point}\n"
                             f"{tail(soak.stderr)}")
        return False
    soak.kills += 1
    landed = _landed(soak)
    soak.landed[next((kind for prefix, kind in LANDED.items() if landed.startswith(prefix)), landed)] += 1
    seq, first = committed_seq(soak.run_dir), soak.seq + commits
    if not first <= seq <= first + WINDOW.get(mode, 0):
        soak.problems.append(f"kill {soak.kills} at {point}: commit {seq}, planned {first}"
                             + (f" to {first + WINDOW[mode]}" if mode in WINDOW else ""))
    soak.seq = seq
    check_labels(soak, remember=True)
    how = f"{mode} {at:g} s" if mode == "during" else (f"{mode} #{int(at)}" if mode in PROGRESS_MODES else mode)
    print(f"kill {soak.kills}/{len(soak.plan)}  {how:<14} landed: {landed:<28} commit seq {seq:<4} "
          f"elapsed {soak.elapsed():.0f} s", flush=True)
    return True


def check_labels(soak: Soak, remember: bool) -> None:
    """Every label committed before a kill still there, bit-identical; duplicates noted; with ``remember``, the
    labels committed now join those to check."""
    entries = committed_label_entries(soak.run_dir)
    now: dict = {}
    for key, value in entries:
        if key in now:
            soak.duplicates.add(key)
        now.setdefault(key, value)
    lost, changed = lost_and_changed(soak.committed, now)
    soak.comparisons += len(soak.committed)
    soak.lost.update(lost)
    soak.changed.update(changed)
    if remember:
        for key, value in now.items():
            soak.committed.setdefault(key, value)


# --------------------------------------------------------------------------- final checks
def finish(soak: Soak) -> None:
    """Run the campaign to its end without a kill, then every final check."""
    t0 = time.perf_counter()
    code = _run(soak, None)
    soak.figures["final run"] = f"{time.perf_counter() - t0:.0f} s"
    if code != 0:
        soak.problems.append(f"the final resume exited with {code}\n{tail(soak.stderr)}")
        return
    check_labels(soak, remember=False)
    check_budget(soak)
    check_phases(soak)
    try:
        check_invariants(soak.run_dir, soak.n_cycles)
    except AssertionError as exc:
        soak.problems.append(f"store invariants: {exc}")


def check_budget(soak: Soak) -> None:
    """Labels stored per fidelity against the campaign's limits."""
    from alloop.config import CampaignConfig
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    with CampaignStore.open(store_path(soak.run_dir)) as store:
        cfg = CampaignConfig.from_dict(store.config, check_files=False)
    counts = Counter(h for (_, h), _ in committed_label_entries(soak.run_dir))
    for role in ("cheap", "expensive"):
        fidelity, cap = cfg.fidelity(role), getattr(cfg.schedule.max_labels, role)
        used = counts[fidelity.hash()]
        soak.figures[f"label budget, {role} ({fidelity.name})"] = f"{used} / {cap}"
        if cap is not None and used > cap:
            soak.problems.append(f"{role} labels: {used} stored, the limit is {cap}")


def check_phases(soak: Soak) -> None:
    """Every cycle trained, every phase committed exactly once, 'finished' once (and logged once)."""
    phases = committed_phases(soak.run_dir)
    trained = {cycle for cycle, phase in phases if phase == "trained"}
    n_trained = len(trained & set(range(soak.n_cycles)))
    soak.figures["cycles trained"] = f"{n_trained} / {soak.n_cycles}" + (" (+ bootstrap)" if -1 in trained else "")
    repeated = [p for p, n in Counter(phases).items() if n > 1]
    soak.figures["phases committed twice"] = str(len(repeated))
    if n_trained < soak.n_cycles or -1 not in trained:
        soak.problems.append(f"cycles not trained: {sorted(set(range(-1, soak.n_cycles)) - trained)}")
    if repeated:
        soak.problems.append(f"phases committed more than once: {repeated[:5]}")
    finished = sum(phase == "finished" for _, phase in phases)
    logged = (soak.run_dir / "campaign.log").read_text().count("campaign finished")
    if finished != 1 or logged != 1:
        soak.problems.append(f"'finished' committed {finished} times, logged {logged} times")


# --------------------------------------------------------------------------- against an uninterrupted run
def final_state(run_dir: Path) -> dict[str, Any]:
    """The frames (positions), labels and final model's parameters of a finished campaign."""
    import torch

    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.store.campaign import CampaignStore
    from alloop.store.resolve import store_path

    with CampaignStore.open(store_path(run_dir)) as store:
        positions = [a.positions for a in store.get_frames()]
        model, _ = model_from_bytes(store.checkpoint(-1, role="model")[0])
    labels = dict(committed_label_entries(run_dir))
    params = {k: v.detach().to(torch.float64).numpy() for k, v in model.state_dict().items()}
    return {"positions": positions, "labels": labels, "params": params}


def max_param_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Max abs difference over every parameter of two models (inf if their parameters differ in name or shape)."""
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return math.inf
    return max((float(np.max(np.abs(a[k] - b[k]))) for k in a if a[k].size), default=0.0)


def label_difference(a: dict, b: dict) -> str:
    """'' if both runs hold the same labels bit for bit, else what differs."""
    if a.keys() != b.keys():
        return f"{len(a.keys() ^ b.keys())} (frame, fidelity) labels in one run only"
    differing = [k for k in a if a[k] != b[k]]
    energies = [abs(_energy(a[k]) - _energy(b[k])) for k in differing]
    if not differing:
        return ""
    return f"{len(differing)} labels differ (max energy difference {np.nanmax(energies + [0.0]):.2e} eV)"


def _energy(value: tuple) -> float:
    """The energy (eV) of a label value (status, energy bytes, forces bytes)."""
    return float(np.frombuffer(value[1], np.float64)[0])


def frame_difference(a: list[np.ndarray], b: list[np.ndarray]) -> str:
    """'' if both runs made the same frames, bit for bit, else the first difference."""
    if len(a) != len(b):
        return f"{len(a)} frames against {len(b)}"
    first = next((i for i, (x, y) in enumerate(zip(a, b, strict=True))
                  if x.shape != y.shape or not np.array_equal(x, y)), None)
    return "" if first is None else f"frames differ from frame {first} on"


def compare_uninterrupted(soak: Soak) -> None:
    """Run the campaign without kills; compare frames, labels and the final model with the killed run's."""
    reference = soak.workdir / "uninterrupted"
    t0 = time.perf_counter()
    code = run_group(campaign_command(soak.yaml, reference, None), soak.workdir / "uninterrupted.stderr")
    soak.figures["uninterrupted run"] = f"{time.perf_counter() - t0:.0f} s"
    if code != 0:
        soak.problems.append(f"the uninterrupted run exited with {code}")
        return
    killed, ref = final_state(soak.run_dir), final_state(reference)
    diff = max_param_difference(killed["params"], ref["params"])
    inputs = "; ".join(d for d in (frame_difference(killed["positions"], ref["positions"]),
                                   label_difference(killed["labels"], ref["labels"])) if d)
    verdict = model_verdict(soak.mode, diff, inputs)
    soak.figures["final model vs uninterrupted"] = f"max abs parameter difference {diff:.2e}; {verdict}"
    if soak.mode == "synchronous" and not inputs and diff > MODEL_ATOL:
        soak.problems.append(f"same frames and labels, but the final models differ by {diff:.2e} (> {MODEL_ATOL})")


def model_verdict(mode: str, diff: float, inputs: str) -> str:
    """Plain words on what the model comparison means."""
    if mode != "synchronous":
        return ("not checked: the asynchronous loop is not deterministic (which model explores and selects "
                "depends on when a training lands)" + (f"; {inputs}" if inputs else "; same frames and labels"))
    if inputs:
        return f"not deterministic here: {inputs} (the model cannot be expected to match)"
    return f"same frames and labels, models {'agree' if diff <= MODEL_ATOL else 'DIFFER'} (tolerance {MODEL_ATOL:g})"


# --------------------------------------------------------------------------- report
def table(soak: Soak, args: argparse.Namespace) -> str:
    """The soak's figures as a Markdown table."""
    planned = Counter(mode for _, mode, _ in soak.plan)
    rows = [
        ("kills", f"{soak.kills} of {len(soak.plan)} planned ({args.mode} loop, {soak.n_cycles} cycles, seed "
                  f"{args.seed})"),
        ("kill modes used", ", ".join(f"{m} {planned[m]}" for m in ALL_MODES if planned[m])),
        ("where the kills landed", ", ".join(f"{kind} {n}" for kind, n in soak.landed.most_common())),
        ("resumes", str(soak.resumes)),
        ("committed labels checked", f"{len(soak.committed)} labels, {soak.comparisons} comparisons "
                                     f"over {soak.kills + 1} checks"),
        ("lost", str(len(soak.lost))),
        ("changed", str(len(soak.changed))),
        ("duplicates", str(len(soak.duplicates))),
        *((k, v) for k, v in soak.figures.items() if k.startswith("label budget")),
        ("cycles trained", soak.figures.get("cycles trained", "not checked")),
        ("phases committed twice", soak.figures.get("phases committed twice", "not checked")),
        ("final model vs uninterrupted", soak.figures.get("final model vs uninterrupted", "not compared")),
        ("wall time", f"{soak.elapsed():.0f} s (final resume {soak.figures.get('final run', '-')}"
                      + (f", uninterrupted run {soak.figures['uninterrupted run']}" if "uninterrupted run"
                         in soak.figures else "") + ")"),
        ("checks", "all passed" if not soak.problems else f"{len(soak.problems)} FAILED"),
    ]
    return "\n".join(["| figure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


# --------------------------------------------------------------------------- main
def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=None,
                        help="default: enough for the plan's mean cost (84 for 100 kills, 8 for 10)")
    parser.add_argument("--seed", type=int, default=0, help="draws the kill plan")
    parser.add_argument("--mode", choices=("synchronous", "asynchronous"), default="synchronous",
                        help="the campaign's schedule.mode")
    parser.add_argument("--workdir", type=Path, default=None, help="an empty or new folder (default: a new temp one)")
    parser.add_argument("--compare-uninterrupted", action="store_true",
                        help="run the campaign once more without kills and compare the final models")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    args.cycles = args.cycles or default_cycles(args.kills)
    if args.workdir is not None and args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error(f"--workdir {args.workdir} is not empty")
    return args


def default_cycles(n_kills: int) -> int:
    """Cycles whose guaranteed commits (3 + 5 per cycle) hold the plan's mean cost over whole rotations of the
    modes: 2 commits per kill (1 to 3) plus the progress kills' windows."""
    need = math.ceil(n_kills / len(ALL_MODES)) * (2 * len(ALL_MODES) + sum(WINDOW.values()))
    return max(1, math.ceil((need - phase_commits(0)) / (phase_commits(1) - phase_commits(0))))


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        plan = kill_plan(args.kills, phase_commits(args.cycles), random.Random(args.seed), modes=ALL_MODES)
    except AssertionError as exc:
        raise SystemExit(f"kill_soak.py: {exc} ({args.cycles} cycles; omit --cycles for enough)") from None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kill-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    soak = Soak(write_campaign(workdir, args.cycles, args.mode), workdir, plan, args.cycles, args.mode)
    print(f"kill soak: {args.kills} kills, at most {plan_cost(plan)} of the {phase_commits(args.cycles)} commits "
          f"{args.cycles} cycles guarantee, {args.mode} loop, seed {args.seed}; in {workdir}", flush=True)
    try:
        if all(kill_once(soak, point) for point in plan):
            finish(soak)
        if args.compare_uninterrupted and not soak.problems:
            compare_uninterrupted(soak)
    except RunHung as exc:
        soak.problems.append(str(exc))
    soak.problems += [f"{len(keys)} {what}: {sorted(keys)[:5]}" for what, keys in
                      (("committed labels lost", soak.lost), ("committed labels changed", soak.changed),
                       ("labels stored twice", soak.duplicates)) if keys]
    for problem in soak.problems:
        print(f"FAILED: {problem}", flush=True)
    print(table(soak, args))
    return 1 if soak.problems else 0


if __name__ == "__main__":
    sys.exit(main())
