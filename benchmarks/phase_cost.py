"""Where a campaign's time goes as the system grows (issue 65, item 3): the universal quickstart's recipe on ethanol
(9 atoms), aspirin (21) and a box of 64 waters (192 atoms, periodic), with GFN-xTB labels.

Every system runs ``campaigns/universal-quickstart.yaml`` (SevenNet-0 fine-tuned on a Delta baseline, batched MD
replicas, the pick by predicted error, the final retrain and refit) as a user would (``alloop run`` through
``lib/campaign_runs.py``) with the labels made cheap so that what scales with the atoms shows: cheap labels at
GFN1-xTB, expensive ones at GFN2-xTB, the baseline GFN1-xTB (the model learns GFN2-xTB minus GFN1-xTB), no evaluation
set. The water box would take hours at the recipe's sizes (a GFN1-xTB call on it costs seconds, and the bootstrap's
baseline MD is 3,600 steps per start), so its campaign is smaller and says so (``SYSTEMS``): rattled bootstrap
copies, 2 replicas x 20 steps, one cycle, 20 training steps of one frame (two attempts with batches of two such
frames lost their workers, killed at their memory limit, in training). Each system's ``--set`` items are in the
result file.

From each finished store (``lib/phase_cost.py``): the wall seconds per phase kind (bootstrap, labels, MD with the
cheap pick, the expensive pick, training, finish; from the ``progress`` table's commit times), where the MD tasks'
seconds went (the ``md_timing`` table: model calls, of them the GFN-xTB baseline, and the scoring of the recorded
frames; per replica step), the labels' CPU seconds per fidelity and the trainings' seconds. One result file per
system (``benchmarks/results/phase-cost/SYSTEM.json``, with the run record: command, commit, load average); the
tables (``lib/phase_cost_table.py``) go to docs/benchmarks.md through ``python benchmarks/docs_tables.py``. Stores in
``runs/phase-cost/`` (not committed); a finished run is reused.

    python benchmarks/phase_cost.py                                  # the three systems, about an hour on 2 cores
    python benchmarks/phase_cost.py --systems ethanol --quick        # smoke test: minutes
    python benchmarks/phase_cost.py --table                          # the tables from the result files
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path
from typing import Any

from lib.campaign_runs import run_campaign
from lib.common import ROOT
from lib.phase_cost import campaign_costs
from lib.phase_cost_table import cost_lines, md_lines
from lib.run_record import finish_record, start_record

from alloop.io import write_extxyz
from alloop.testing.cells import water_box

CAMPAIGN = ROOT / "campaigns" / "universal-quickstart.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "phase-cost"
#: what makes every system's labels cheap (the recipe otherwise unchanged)
COMMON = ["evaluation=false", "fidelities.cheap=gfn1-xtb", "fidelities.expensive=gfn2-xtb", "model.baseline=gfn1-xtb"]
#: the smaller campaign of the water box (a GFN1-xTB call on 192 atoms takes seconds)
WATER_BOX = ["system.conformers=1", "schedule.bootstrap.method=rattle", "schedule.bootstrap.amplitude_A=0.05",
             "schedule.bootstrap.n_samples=16", "schedule.bootstrap.n_expensive=4", "md.n_replicas=2",
             "md.temperature_K=300", "md.segment_steps=20", "md.record_every=2", "selection.min_step_spacing=3",
             "schedule.n_cycles=1", "training.steps=20", "training.finetune_steps=10", "training.final_steps_factor=1",
             "training.batch_size=1"]
#: name -> (structures, the system's own --set items)
SYSTEMS: dict[str, tuple[str, list[str]]] = {
    "ethanol": ("CH3CH2OH", []),
    "aspirin": (str(ROOT / "benchmarks" / "data" / "aspirin.xyz"), ["system.conformers=1"]),
    "water64": ("water64-start.extxyz", WATER_BOX),
}
#: --quick: a smoke test of the script, not a measurement
QUICK = ["schedule.n_cycles=1", "md.segment_steps=20", "training.steps=5", "training.finetune_steps=5",
         "training.final_steps_factor=1", "schedule.bootstrap.n_samples=8", "schedule.bootstrap.n_expensive=4"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="one more --set item for every system's campaign")
    p.add_argument("--quick", action="store_true", help="smoke test (tiny campaigns; results not written)")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "phase-cost")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--table", action="store_true", help="print the tables from the result files and stop")
    return p.parse_args(argv)


def structures(name: str, runs: Path) -> str:
    """The system's structures setting (the water box's start is written into ``runs`` when missing)."""
    path, _ = SYSTEMS[name]
    if name != "water64":
        return path
    start = runs / path
    if not start.is_file():
        runs.mkdir(parents=True, exist_ok=True)
        write_extxyz(start, [water_box(64, seed=0)])
    return str(start)


def run_system(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """Run (or reuse) one system's campaign and read its costs."""
    overrides = [*COMMON, f"system.structures={structures(name, args.runs)}", *SYSTEMS[name][1], *args.overrides,
                 *(QUICK if args.quick else [])]
    run_dir = args.runs / (f"{name}-quick" if args.quick else name)
    print(f"{name}: {run_dir} (log {args.runs / f'{name}.log'})", flush=True)
    wall = run_campaign(CAMPAIGN, run_dir, args.seed, overrides, "phase_cost.json", args.runs / f"{name}.log")
    return {"system": name, "seed": args.seed, "overrides": overrides, **campaign_costs(run_dir, wall)}


def print_tables(results: list[dict[str, Any]]) -> None:
    print("\n".join(["", *cost_lines(results), "", *md_lines(results)]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table:
        files = [args.results / f"{name}.json" for name in args.systems if (args.results / f"{name}.json").is_file()]
        if not files:
            print(f"no result files in {args.results}", file=sys.stderr)
            return 1
        print_tables([json.loads(f.read_text()) for f in files])
        return 0
    results = []
    for name in args.systems:
        record = start_record(__file__, argv, packages=("torch", "sevenn", "tblite"))
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run_system(args, name)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["record"] = finish_record(record, (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime))
        results.append(result)
        if not args.quick:
            args.results.mkdir(parents=True, exist_ok=True)
            (args.results / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    print_tables(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
