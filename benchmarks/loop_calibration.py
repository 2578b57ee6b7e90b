"""The loop models' own predicted force error against the measured one, on sets the loop never saw (issue 62).

For each loop entry of ``learning_curves.py``'s result folders (its campaign run directory under ``runs/``), the
final model's error model (latent distance calibrated on frames its training held out,
:mod:`alloop.uncertainty.error_model`) predicts the per-frame force MAE of each test file; ``alloop evaluate``'s
library call (:func:`alloop.evaluation.evaluate.evaluate_file`) compares it with the measured one: the predicted /
measured mean, the Spearman rho between predicted and measured per-frame errors, and the share of frames under the
model's 90 % bound (its plain split-conformal bound). ``--declared TEXT=K`` declares the temperature of the test
files whose name holds TEXT: their records also hold the bound weighted for it (``alloop evaluate --temperature``:
the share of frames under it, of infinite bounds, the effective sample size), for models whose error model keeps
its calibration frames' ensemble (trained after it was kept; older ones: None).

Results go to ``--out`` (one record per run and test file; a record whose test file changed is recomputed), and a
table per test set over the seeds, with issue 62's targets, is printed (the docs' table is generated from the file):

    python benchmarks/loop_calibration.py --results benchmarks/results/learning-curves/universal-quickstart \
        --test benchmarks/data/ethanol_500K_eqverdict_b3lyp-svp.extxyz ... --regime 500K=campaign 1000K=hotter \
        --declared 1000K=1000
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lib.common import ROOT
from lib.learning_curve_arms import sha256
from lib.learning_curves_tables import loop_runs
from lib.loop_calibration_table import calibration_table

OUT = ROOT / "benchmarks" / "results" / "loop-calibration" / "universal-quickstart.json"
KEYS = ("force_mae_eV_per_A", "predicted_force_mae_eV_per_A", "error_spearman", "bound_coverage",
        "bound_coverage_stated", "force_mae_p95_eV_per_A", "predicted_force_p95_eV_per_A", "n_frames", "model")
SHIFTED = ("declared_temperature_K", "shifted_bound_coverage", "shifted_bound_infinite_share",
           "shifted_effective_sample_size")


def evaluate(run_dir: Path, test: Path, temperature_K: float | None) -> dict[str, Any]:
    """The model's record on ``test``; with ``temperature_K`` its weighted bound too (None for an error model that
    keeps no calibration ensemble)."""
    from alloop.errors import AlloopError
    from alloop.evaluation.evaluate import as_json, evaluate_file

    try:
        flat = as_json(evaluate_file(run_dir, test, temperature_K=temperature_K))
    except AlloopError as exc:
        if temperature_K is None or "keeps no calibration ensemble" not in str(exc):
            raise
        flat = {**as_json(evaluate_file(run_dir, test)), "declared_temperature_K": temperature_K}
    if flat.get("predicted_force_mae_eV_per_A") is None:
        raise SystemExit(f"{run_dir}: its newest model has no calibrated error model")
    return {k: flat.get(k) for k in KEYS + (SHIFTED if temperature_K is not None else ())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, nargs="+", required=True, help="learning_curves.py --results folders")
    p.add_argument("--test", type=Path, nargs="+", required=True, help="labelled test files")
    p.add_argument("--regime", nargs="+", default=["500K=campaign", "1000K=hotter"],
                   help="TEXT=campaign|hotter: a test file whose name holds TEXT is judged at the campaign "
                        "temperature or hotter (default 500K=campaign 1000K=hotter)")
    p.add_argument("--declared", nargs="*", default=[],
                   help="TEXT=K: test files whose name holds TEXT were drawn at K kelvin (their weighted bound too)")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    regimes = dict(r.split("=", 1) for r in a.regime)
    try:
        declared = {text: float(k) for text, k in (d.split("=", 1) for d in a.declared)}
    except ValueError:
        p.error("--declared takes TEXT=K, e.g. 1000K=1000")
    if not set(regimes.values()) <= {"campaign", "hotter"}:
        p.error("--regime values are campaign or hotter")
    for test in a.test:
        if not test.is_file():
            p.error(f"{test}: no such file")
    result = json.loads(a.out.read_text()) if a.out.is_file() else {"runs": {}}
    runs = loop_runs([f.resolve() for f in a.results])
    if not runs:
        p.error("no loop entry with its run directory on disk in --results")
    todo = [(name, seed, run_dir, test) for name, seed, run_dir in runs for test in a.test]
    for k, (name, seed, run_dir, test) in enumerate(todo, 1):
        key, digest = f"{name}:{test.name}", sha256(test)
        temperature = next((t for text, t in declared.items() if text in test.name), None)
        old = result["runs"].get(key, {})
        if old.get("test_sha256") != digest or old.get("declared_temperature_K") != temperature:
            print(f"[{k}/{len(todo)}] {name} on {test.name}", flush=True)
            result["runs"][key] = {"entry": name, "seed": seed, "test": test.name, "test_sha256": digest,
                                   **evaluate(run_dir, test, temperature)}
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    labels = {t.name: {"label": t.name.split("_b3lyp")[0].removeprefix("ethanol_"),
                       "regime": next((v for s, v in regimes.items() if s in t.name), "campaign")} for t in a.test}
    print("\n".join(calibration_table(result, labels)))
    print(f"\nwritten to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
