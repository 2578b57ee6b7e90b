"""LLPR against the latent distance as a small EGNN's per-frame force-error signal, on ethanol.

Trains the ``small`` EGNN (standard training, ``--steps``) on ``--n-train`` random frames of the 500 K pool
(``benchmarks/data/ethanol_500K_eqpool_b3lyp-svp.extxyz``, GFN2-xTB MD, B3LYP/def2-SVP labels) as a Delta model on
``--baseline`` (default GFN2-xTB, as the project's models; ``none``: absolute labels): every set's labels are minus
the baseline, so the learned part's errors are the Delta model's; the calibration
frames are the training's validation frames plus the pool frames it never saw. On them it fits the LLPR in its three
forms (:mod:`alloop.uncertainty.llpr`: energy, forces, local; X^T X from the frames the model trained on, sigma^2 and
lambda by held-out likelihood) and the campaigns' latent distance, each mapped to a predicted force MAE with a 90 %
conformal bound by :class:`~alloop.uncertainty.predicted_error.ErrorCalibration` (as a model's error model is). On
the 500 K test set (``examples/data/ethanol_500K_eqtest_b3lyp-svp.extxyz``) and the 1000 K one
(``benchmarks/data/ethanol_1000K_eqtest_b3lyp-svp.extxyz``) it prints, per signal, Spearman's rho with the true
per-frame force MAE, the predicted mean / measured and the share of frames under the 90 % bound; for the force LLPR
also its own Gaussian prediction (expected MAE sqrt(2/pi) mean sd, without the map) and the share of force components
within +-1.645 sd. Writes ``benchmarks/results/llpr.json``. A few CPU minutes on one core.

    python benchmarks/llpr_bench.py [--n-train 100] [--steps 1500] [--baseline gfn2-xtb] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lib.common import DATA, ROOT, data_file, markdown_table

from alloop.io import write_atomic
from alloop.potentials.baseline import Baseline
from alloop.potentials.registry import build_model, cast_model, model_preset
from alloop.training.data import FrameDataset
from alloop.training.error_fit import fit_distance, frame_distances, frame_force_mae
from alloop.training.llpr_fit import fit_model_llpr, llpr_residuals, llpr_rows
from alloop.training.recipe import asteroid_settings, section_from_options
from alloop.training.run import load_dataset
from alloop.uncertainty.error_model import spearman
from alloop.uncertainty.llpr import LLPR, TARGETS
from alloop.uncertainty.predicted_error import ErrorCalibration

POOL = DATA / "ethanol_500K_eqpool_b3lyp-svp.extxyz"
TESTS = {"500 K": data_file("ethanol_500K_eqtest_b3lyp-svp.extxyz"),
         "1000 K": DATA / "ethanol_1000K_eqtest_b3lyp-svp.extxyz"}
RESULT = ROOT / "benchmarks" / "results" / "llpr.json"
COVERAGE = 0.9
Z90 = 1.6448536269514722  # the standard normal's 95th percentile: +-Z90 sd holds 90 %


def train(pool: FrameDataset, n_train: int, steps: int, seed: int) -> tuple[Any, FrameDataset, FrameDataset]:
    """(the trained model at float64, the frames it trained on, the calibration frames: its validation frames and
    the pool frames it never saw)."""
    from alloop.training.asteroid import train_asteroid

    order = np.random.default_rng(seed).permutation(len(pool))
    labelled = pool.subset(order[:n_train])
    hparams = dict(model_preset("small"))
    architecture = hparams.pop("architecture")
    elements = sorted({int(z) for z in pool.numbers})
    settings = asteroid_settings(section_from_options({"steps": steps}), seed, 1, 300.0, split_seed=seed)
    result = train_asteroid("standard", labelled, model_factory=lambda restart=0: build_model(
        architecture, elements, seed=seed + restart, **hparams), settings=settings)
    training = pool.subset(order[result.splits["expensive_train"]])
    calibration = pool.subset(np.concatenate([order[result.splits["expensive_val"]], order[n_train:]]))
    return cast_model(result.model, torch.float64), training, calibration


def signals(model: Any, llprs: dict[str, LLPR], distance: Any, data: FrameDataset) -> dict[str, np.ndarray]:
    """Per frame: each LLPR form's standard deviation and the latent distance."""
    out = {f"llpr_{t}": llpr.frame_std(*llpr_rows(model, data, t)) for t, llpr in llprs.items()}
    out["latent_distance"] = frame_distances(distance, model, data)
    return out


def score(signal: np.ndarray, error: np.ndarray, calibration: ErrorCalibration) -> dict[str, float]:
    return {"spearman": spearman(signal, error),
            "predicted_over_measured": float(calibration.predict(signal).mean() / error.mean()),
            "bound_coverage": float(np.mean(error <= calibration.upper(signal)))}


def own_gaussian(llpr: LLPR, model: Any, data: FrameDataset, error: np.ndarray) -> dict[str, float]:
    """The force LLPR's own prediction: expected MAE over measured, share of components within +-Z90 sd, NLL."""
    rows, ptr = llpr_rows(model, data, "forces")
    sd = np.sqrt(llpr.variances(rows))
    residuals = llpr_residuals(model, data, "forces")
    return {"expected_mae_over_measured": float(llpr.expected_abs_error(rows, ptr).mean() / error.mean()),
            "component_coverage_90": float(np.mean(np.abs(residuals) <= Z90 * sd))}


def fits(llprs: dict[str, LLPR]) -> dict[str, dict[str, float]]:
    return {t: {"regulariser": fit.regulariser, "variance_scale": fit.variance_scale,
                "largest_eigenvalue": float(fit.eigenvalues.max()), "smallest_eigenvalue": float(fit.eigenvalues.min()),
                "rows": fit.n_train} for t, fit in llprs.items()}


def measure(model: Any, training: FrameDataset, calibration: FrameDataset,
            tests: dict[str, FrameDataset]) -> dict[str, Any]:
    """Fit every signal on the training and calibration frames; score them on each test set."""
    llprs = {t: fit_model_llpr(model, training, calibration, t) for t in TARGETS}
    distance = fit_distance(model, training)
    cal_error = np.maximum(frame_force_mae(model, calibration), 1e-12)
    maps = {name: ErrorCalibration.fit(s, cal_error, COVERAGE)
            for name, s in signals(model, llprs, distance, calibration).items()}
    out: dict[str, Any] = {"llpr": fits(llprs), "calibration_force_mae": float(cal_error.mean()), "sets": {}}
    for name, data in tests.items():
        error = frame_force_mae(model, data)
        values = signals(model, llprs, distance, data)
        out["sets"][name] = {"file": TESTS[name].name, "n": len(data), "force_mae": float(error.mean()),
                             "signals": {s: score(v, error, maps[s]) for s, v in values.items()},
                             "llpr_forces_own": own_gaussian(llprs["forces"], model, data, error)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=100, help="pool frames given to the training")
    parser.add_argument("--steps", type=int, default=1500, help="optimiser steps")
    parser.add_argument("--baseline", default="gfn2-xtb", help="GFN-xTB baseline of the Delta model, or none")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    baseline = None if args.baseline == "none" else Baseline(args.baseline)

    def load(path: Path) -> FrameDataset:
        data = load_dataset(path, "expensive")
        return data if baseline is None else baseline.subtract(data)

    model, training, calibration = train(load(POOL), args.n_train, args.steps, args.seed)
    t_train = time.perf_counter() - t0
    result: dict[str, Any] = {
        "pool": POOL.name, "n_train": len(training), "n_calibration": len(calibration), "steps": args.steps,
        "seed": args.seed, "model": "small", "baseline": args.baseline, "train_seconds": round(t_train, 1),
        **measure(model, training, calibration, {name: load(path) for name, path in TESTS.items()})}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    report(result)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(RESULT, (json.dumps(result, indent=1) + "\n").encode())
    print(f"wrote {RESULT.relative_to(ROOT)}")


def report(result: dict[str, Any]) -> None:
    print(f"small EGNN on {result['baseline']}, {result['n_train']} training frames, {result['steps']} steps "
          f"({result['train_seconds']:.0f} s); {result['n_calibration']} calibration frames; {result['seconds']:.0f} s")
    for t, fit in result["llpr"].items():
        print(f"LLPR {t}: lambda {fit['regulariser']:.3g} (eigenvalues of X^T X {fit['smallest_eigenvalue']:.3g} to "
              f"{fit['largest_eigenvalue']:.3g}), sigma^2 {fit['variance_scale']:.3g}")
    rows = []
    for name, s in result["sets"].items():
        for signal, m in s["signals"].items():
            rows.append([name, signal, f"{1000 * s['force_mae']:.1f}", f"{m['spearman']:.2f}",
                         f"{m['predicted_over_measured']:.2f}", f"{m['bound_coverage']:.0%}"])
    print(markdown_table(["set", "signal", "force MAE (meV/A)", "Spearman rho", "predicted / measured",
                          f"under the {COVERAGE:.0%} bound"], rows))
    for name, s in result["sets"].items():
        own = s["llpr_forces_own"]
        print(f"{name}: force LLPR's own Gaussian: expected MAE / measured {own['expected_mae_over_measured']:.2f}, "
              f"force components within +-1.645 sd {own['component_coverage_90']:.0%}")


if __name__ == "__main__":
    main()
