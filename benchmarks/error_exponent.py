"""How well a loop model's error model knows its exponent: error ~ a x distance^b fitted on the 5-7 frames its
training held out, against b fitted on labelled test frames (issue 62, the calibration's remedy).

For each loop entry of ``learning_curves.py``'s result folders whose campaign run directory is on disk (run data
under ``runs/``: ``learning_curves.py`` remakes them), the final model's error model gives every test frame its
latent distance and predicted force error; the measured per-frame force MAE gives the test set's own power law (least
squares in log-log, as the error model fits its held-out frames). Printed per test set, and written to ``--out``:
the models' own b, the test frames' b, and the predicted / measured mean error. Evaluation only (no label, no
training): about 10 s per model and test file on one core.

    python benchmarks/error_exponent.py --results benchmarks/results/learning-curves/universal-quickstart-lcmd \
        --test examples/data/ethanol_500K_eqtest_b3lyp-svp.extxyz benchmarks/data/ethanol_1000K_eqtest_b3lyp-svp.extxyz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from lib.common import ROOT
from lib.error_exponent_table import exponent_table
from lib.learning_curves_tables import loop_runs
from lib.run_record import finish_record, start_record

from alloop.io import write_atomic

OUT = ROOT / "benchmarks" / "results" / "error-exponent.json"


def model_record(run_dir: Path, tests: list[Path]) -> dict[str, Any] | None:
    """The newest model's own exponent and, per test file, the test frames' exponent and predicted / measured."""
    from alloop.evaluation.evaluate import load_model
    from alloop.training.error_fit import frame_predictions
    from alloop.training.run import load_dataset
    from alloop.uncertainty.error_model import ErrorModel, spearman

    trained = load_model(run_dir, None, None)
    error_model = ErrorModel.from_metadata(trained.metadata)
    if error_model is None or error_model.calibration is None:
        return None
    record: dict[str, Any] = {"own_exponent": error_model.calibration.exponent, "own_n": error_model.calibration.n,
                              "tests": {}}
    for test in tests:
        found = frame_predictions(trained.model, trained.metadata, load_dataset(test, "data"))
        assert found is not None  # the error model is calibrated
        predicted, measured = found
        log_d = np.log(np.maximum(predicted.distance, 1e-12))
        record["tests"][test.name] = {
            "exponent": float(np.polyfit(log_d, np.log(measured), 1)[0]),
            "predicted_over_measured": float(predicted.predicted.mean() / measured.mean()),
            "spearman": spearman(predicted.distance, measured), "n": int(measured.size)}
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, nargs="+", required=True, help="learning_curves.py --results folders")
    p.add_argument("--test", type=Path, nargs="+", required=True, help="labelled test files")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    missing = [t for t in a.test if not t.is_file()]
    if missing:
        p.error(f"no such file: {missing[0]}")
    runs = loop_runs([f.resolve() for f in a.results])
    if not runs:
        p.error("no loop entry with its run directory on disk in --results")
    record = start_record("benchmarks/error_exponent.py", argv, packages=("torch", "sevenn"))
    models = []
    for k, (name, seed, run_dir) in enumerate(runs, 1):
        print(f"[{k}/{len(runs)}] {name}", flush=True)
        found = model_record(run_dir, a.test)
        if found is not None:
            models.append({"entry": name, "seed": seed, **found})
    result = {"tests": [t.name for t in a.test], "models": models, "record": finish_record(record)}
    print(exponent_table(result))
    write_atomic(a.out, (json.dumps(result, indent=1) + "\n").encode())
    print(f"written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
