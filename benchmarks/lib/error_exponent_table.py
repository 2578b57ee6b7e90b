"""The table of ``error_exponent.py`` from its result (``benchmarks/results/error-exponent.json``): per loop model,
the exponent its error model fitted on its held-out frames against the exponent of 60 labelled test frames."""

from __future__ import annotations

from typing import Any

import numpy as np

from lib.common import markdown_table


def exponent_table(result: dict[str, Any]) -> str:
    """Per test set: the models' own exponents (min, median, max), the test set's (min, median, max), and the
    models' predicted / measured mean error (min, median, max)."""
    own = np.array([m["own_exponent"] for m in result["models"]])
    rows = []
    for test in result["tests"]:
        b = np.array([m["tests"][test]["exponent"] for m in result["models"]])
        ratio = np.array([m["tests"][test]["predicted_over_measured"] for m in result["models"]])
        rows.append([test, str(len(b)), _spread(own), _spread(b), _spread(ratio),
                     f"{np.mean(np.abs(np.log(ratio))):.2f}"])
    return markdown_table(["test set", "models", "b fitted on the held-out frames (min / median / max)",
                           "b fitted on the test frames", "predicted / measured MAE",
                           "mean abs log(predicted / measured)"], rows)


def _spread(values: np.ndarray) -> str:
    return f"{values.min():.2f} / {np.median(values):.2f} / {values.max():.2f}"


def per_model_table(result: dict[str, Any]) -> str:
    """One row per model, sorted by its own b: its own b, and per test set the test frames' b and predicted /
    measured."""
    tests = result["tests"]
    rows = []
    for m in sorted(result["models"], key=lambda m: m["own_exponent"]):
        cells = [f"{m['tests'][t]['exponent']:.2f} / {m['tests'][t]['predicted_over_measured']:.2f}" for t in tests]
        rows.append([m["entry"].split("/")[0].removeprefix("universal-quickstart-"), str(m["seed"]),
                     f"{m['own_exponent']:.2f}", *cells])
    return markdown_table(["variant", "seed", "own b (held-out frames)",
                           *(f"{t.split('_b3lyp')[0]}: test b / predicted over measured" for t in tests)], rows)
