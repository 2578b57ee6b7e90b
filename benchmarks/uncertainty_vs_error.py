"""Which uncertainty signal predicts a model's per-frame force error on the equilibrium ensembles?

Models: per ``--models`` entry (a preset, or ``PRESET+BASELINE`` for a Delta model: ``small+gfn2-xtb`` is the
quickstart's EGNN, ``sevennet-0+gfn2-xtb`` the universal quickstart's model) and seed, ``alloop train --method
standard`` on ``--n-train`` random B3LYP frames of the 500 K equilibrium pool (the quickstarts' label budget;
cached in ``--runs``). ``--calibration`` other pool frames, never trained on, calibrate the predicted error.

Test sets: the 500 K and 1000 K equilibrium sets (independent GFN2-xTB Langevin runs from the three rotamers,
B3LYP/def2-SVP labels; ``benchmarks/make_equilibrium_sets.py``). The true error of a frame is its force MAE
against B3LYP.

Signals, each a per-frame score (higher: less trusted):

- ``q-residual``: the loop's Q-residual (per-element PCA of the model's latent features fitted on its training
  frames, 5 components, frame score = max over atoms, normalised by its held-out limit);
- ``latent-mean`` / ``latent-max``: the per-element Mahalanobis distance in normalised latent features to the
  training atoms (:mod:`alloop.uncertainty.latent_distance`), mean or max over the frame's atoms;
- ``committee``: the force standard deviation over the seeds' models of one ``--models`` entry (needs >= 2 seeds;
  the committee is the same for every seed, so its spread over seeds is 0);
- ``xtb-distance``: the model's mean force distance to GFN2-xTB labels of the frame (what the loop's bias B
  measures without a theta_0 and a GFN2-xTB cheap level).

Per set, signal and model: Spearman rho with the true error (mean +- std over seeds), the share of the 10 % worst
frames found in the signal's top 10 %, and for the predicted error (:mod:`alloop.uncertainty.predicted_error`,
fitted on the calibration frames) the mean predicted force error against the measured MAE and the coverage of its
90 % bound. The 1000 K set is outside the training ensemble, so its calibration is not exchangeable: its
coverage says how the bound degrades there.

The result file (``--results``, default ``benchmarks/results/uncertainty-vs-error/MODELS.json``) holds every seed's
numbers and the run record; ``python benchmarks/docs_tables.py`` writes its tables into docs/benchmarks.md.

    python benchmarks/uncertainty_vs_error.py                                   # the EGNN on GFN2-xTB, 3 seeds
    python benchmarks/uncertainty_vs_error.py --models small+gfn2-xtb sevennet-0+gfn2-xtb --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lib.common import DATA, ROOT, alloop, data_file, model_args
from lib.run_record import finish_record, start_record
from lib.uncertainty_table import uncertainty_lines

POOL = DATA / "ethanol_500K_eqpool_b3lyp-svp.extxyz"
POOL_XTB = DATA / "ethanol_500K_eqpool_gfn2-xtb.extxyz"
SETS = {"500 K": (data_file("ethanol_500K_eqtest_b3lyp-svp.extxyz"), DATA / "ethanol_500K_eqtest_gfn2-xtb.extxyz"),
        "1000 K": (DATA / "ethanol_1000K_eqtest_b3lyp-svp.extxyz", DATA / "ethanol_1000K_eqtest_gfn2-xtb.extxyz")}
RESULTS = ROOT / "benchmarks" / "results" / "uncertainty-vs-error"
SIGNALS = ("q-residual", "latent-mean", "latent-max", "committee", "xtb-distance")
TOP = 0.1
COVERAGE = 0.9


@dataclass
class Scored:
    """One model on one set: true per-frame errors and each signal's per-frame scores."""

    error: np.ndarray
    signals: dict[str, np.ndarray]
    forces: np.ndarray  # [N atoms, 3], for the committee


def frame_ptr(frames: list) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([len(a) for a in frames])])


def per_frame(values: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, ptr[:-1]) / np.diff(ptr)


def split_pool(n_pool: int, n_calibration: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows the training frames are drawn from, calibration rows): one fixed split for every seed, so the
    calibration frames are the same for every model (the committee needs that) and no model trained on them."""
    order = np.random.default_rng(29_999).permutation(n_pool)
    return np.sort(order[n_calibration:]), np.sort(order[:n_calibration])


def train(model: str, seed: int, args: argparse.Namespace, pool: list, available: np.ndarray) -> tuple[Path, list[int]]:
    """The model of (model, seed), trained once on ``args.n_train`` random rows of ``available``; those rows."""
    from alloop.io import write_extxyz

    rows = sorted(np.random.default_rng(30_000 + seed).choice(available, args.n_train, replace=False).tolist())
    data = args.runs / f"pool-{args.n_train}-s{seed}.extxyz"
    if not data.is_file():
        write_extxyz(data, [pool[i] for i in rows])
    steps = f"-steps{args.steps}" if args.steps else ""
    out = args.runs / f"{model}-n{args.n_train}{steps}-s{seed}.safetensors"
    if not out.is_file():
        print(f"training {model} seed {seed} on {args.n_train} frames ...", file=sys.stderr, flush=True)
        budget = ["--steps", str(args.steps)] if args.steps else []
        alloop("train", "--expensive", str(data), "--method", "standard", *model_args(model), "--seed", str(seed),
               "--threads", str(args.threads), "--quiet", *budget, "-o", str(out))
    return out, rows


def score(path: Path, train_frames: list, sets: dict[str, tuple[list, list]]) -> dict[str, Scored]:
    """Every signal but the committee, and the true errors, of one model on every set."""
    from alloop.deploy.loading import load_trained
    from alloop.potentials.inference import predict, predict_features
    from alloop.uncertainty.latent_distance import LatentDistance
    from alloop.uncertainty.qresidual import QResidualModel, QResidualSettings

    model = load_trained(path, fidelity=None).model.eval()
    numbers = np.concatenate([a.numbers for a in train_frames])
    features = predict_features(model, train_frames)
    ptr = frame_ptr(train_frames)
    q_model = QResidualModel.fit(numbers, features, ptr, QResidualSettings())
    latent = {r: LatentDistance.fit(numbers, features, reduce=r) for r in ("mean", "max")}
    out = {}
    for name, (frames, xtb) in sets.items():
        n, f, p = np.concatenate([a.numbers for a in frames]), predict_features(model, frames), frame_ptr(frames)
        _, forces = predict(model, frames)
        truth = np.concatenate([a.get_forces() for a in frames])
        reference = np.concatenate([a.get_forces() for a in xtb])
        signals = {"q-residual": q_model.frame_scores(n, f, p).q,
                   "latent-mean": latent["mean"].frame_scores(n, f, p),
                   "latent-max": latent["max"].frame_scores(n, f, p),
                   "xtb-distance": per_frame(np.abs(forces - reference).mean(axis=1), p)}
        out[name] = Scored(per_frame(np.abs(forces - truth).mean(axis=1), p), signals, forces)
    return out


def add_committee(scored: list[dict[str, Scored]], ptrs: dict[str, np.ndarray]) -> None:
    """The force standard deviation over the models of one entry, per frame (the same for each of them)."""
    if len(scored) < 2:
        return
    for name, ptr in ptrs.items():
        spread = np.stack([s[name].forces for s in scored]).std(axis=0, ddof=1)  # [N atoms, 3]
        deviation = per_frame(spread.mean(axis=1), ptr)
        for s in scored:
            s[name].signals["committee"] = deviation


def metrics(error: np.ndarray, signal: np.ndarray) -> tuple[float, float]:
    """(Spearman rho, share of the TOP worst frames in the signal's TOP)."""
    from scipy.stats import spearmanr

    k = max(1, int(round(TOP * error.size)))
    worst, flagged = set(np.argsort(-error)[:k]), set(np.argsort(-signal)[:k])
    return float(spearmanr(signal, error).statistic), len(worst & flagged) / k


def calibration_check(cal: Scored, test: Scored, signal: str) -> tuple[float, float, float]:
    """(mean predicted error, measured MAE, coverage of the bound) on ``test``, calibrated on ``cal``."""
    from alloop.uncertainty.predicted_error import ErrorCalibration

    fit = ErrorCalibration.fit(cal.signals[signal], cal.error, COVERAGE)
    predicted = fit.predict(test.signals[signal])
    return float(predicted.mean()), float(test.error.mean()), float(np.mean(test.error <= fit.upper(test.signals[signal])))


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["small+gfn2-xtb"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n-train", type=int, default=30, help="B3LYP training frames per model (default 30)")
    ap.add_argument("--calibration", type=int, default=40, help="other pool frames that calibrate (default 40)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the recipe's; few: a smoke run)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "uncertainty-vs-error")
    ap.add_argument("--results", type=Path, default=None,
                    help=f"the result file (default {RESULTS.relative_to(ROOT)}/MODELS.json, the models joined by _)")
    return ap


def model_rows(model: str, args: argparse.Namespace, pool: list, pool_xtb: list,
               sets: dict[str, tuple[list, list]]) -> dict[tuple[str, str], list[list[float]]]:
    """(set, signal) -> per seed [rho, recall, predicted MAE, measured MAE, coverage] of one ``--models`` entry."""
    available, cal_rows = split_pool(len(pool), args.calibration)
    cal = ([pool[i] for i in cal_rows], [pool_xtb[i] for i in cal_rows])
    scored = []
    for seed in args.seeds:
        path, rows = train(model, seed, args, pool, available)
        scored.append(score(path, [pool[i] for i in rows], {**sets, "cal": cal}))
    add_committee(scored, {name: frame_ptr(frames) for name, (frames, _) in {**sets, "cal": cal}.items()})
    table: dict[tuple[str, str], list[list[float]]] = {}
    for s in scored:
        calibration = s.pop("cal")
        for name, res in s.items():
            for signal in (sig for sig in SIGNALS if sig in res.signals):
                rho, recall = metrics(res.error, res.signals[signal])
                extra = (calibration_check(calibration, res, signal) if signal in calibration.signals
                         else (np.nan, res.error.mean(), np.nan))
                table.setdefault((name, signal), []).append([float(rho), float(recall), *map(float, extra)])
    return table


def main(argv: list[str] | None = None) -> int:
    from alloop.allocator import reuse_freed_memory

    reuse_freed_memory()  # in-process training and MD, as the alloop command (docs/benchmarks.md: Memory reuse)
    args = parser().parse_args(argv)
    record = start_record(__file__, argv, packages=("torch", "tblite"))
    from ase.io import read

    args.runs.mkdir(parents=True, exist_ok=True)
    pool, pool_xtb = read(POOL, ":"), read(POOL_XTB, ":")
    if len(pool) != len(pool_xtb) or any(np.abs(a.positions - b.positions).max() > 1e-6
                                         for a, b in zip(pool, pool_xtb, strict=True)):
        raise SystemExit(f"{POOL_XTB.name} does not hold {POOL.name}'s frames in its order")
    if args.n_train + args.calibration > len(pool):
        raise SystemExit(f"--n-train + --calibration must be <= the pool's {len(pool)} frames")
    sets = {name: (read(b3lyp, ":"), read(xtb, ":")) for name, (b3lyp, xtb) in SETS.items()}
    result: dict[str, Any] = {"seeds": args.seeds, "n_train": args.n_train, "calibration": args.calibration,
                              "sets": {name: paths[0].name for name, paths in SETS.items()}, "models": {}}
    for model in args.models:
        rows = model_rows(model, args, pool, pool_xtb, sets)
        result["models"][model] = [{"set": name, "signal": signal, "per_seed": values}
                                   for (name, signal), values in rows.items()]
    result["record"] = finish_record(record)
    path = args.results or RESULTS / f"{'_'.join(args.models)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"Uncertainty against the per-frame force error (eV/A): models trained on {args.n_train} B3LYP frames of "
          f"the 500 K pool, seeds {args.seeds}; predicted error calibrated on {args.calibration} other pool frames")
    for model in args.models:
        print(f"\n{model}:\n")
        print("\n".join(uncertainty_lines(result, model)))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
