"""Does a calibration with fewer free parameters predict the force error better?

For each run directory and each model checkpoint that carries a calibrated error model, rebuilds that model's
calibration data as the campaign did (:func:`alloop.training.error_fit.fit_error_model`): the expensive labels of
the validation frames recorded in the checkpoint's ``split`` (minus the baseline for a Delta model), their latent
distance under a :class:`~alloop.uncertainty.latent_distance.LatentDistance` fitted on the recorded training frames,
the true per-frame force MAE (``error_fit.frame_force_mae``); with ``training.final_refit`` the validated model
(role ``validated``, same cycle) is the one calibrated. It asserts that ``ErrorCalibration.fit`` on these data gives
the stored calibration back, then fits four forms of error ~ a * distance^b on the same data, each rescaled so its
mean over the held-out frames equals their mean error, each with the same leave-one-out conformal 90 % bound:

* ``power``: b from least squares in log-log, clipped at 0 (alloop's form);
* ``linear``: b = 1;  ``constant``: b = 0 (every frame gets the held-out mean error);
* ``shrunk``: b = (Sxy + L) / (Sxx + L), clipped at 0: least squares with the penalty L (b - 1)^2 (Sxy, Sxx:
  centred log-log sums). L = 1 is fixed up front: a prior b ~ N(1, 0.5^2) with a log-error residual sd of 0.5.

Each form is applied to the model's own stored latent distance on the 500 K and 1000 K ethanol test sets (as
``alloop evaluate --json`` does; with the 500 K set, the campaigns' evaluation set, the stored form is also checked
against the predicted error the campaign recorded). Prints Markdown tables: per (run, model) and set, per form
"predicted mean (eV/A) | predicted / measured | Spearman rho | share below the bound"; the summary per form over all
(run, model) pairs and over distinct checkpoints (identical seeds give identical models); per run, the median
predicted / measured.

    python benchmarks/calibration_forms.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lib.common import DATA, data_file, markdown_table

from alloop.campaign.phases.train import labelled_arrays
from alloop.deploy.loading import TrainedModel, load_trained
from alloop.potentials.baseline import DeltaPotential, learned_part
from alloop.store import CampaignStore, find_store, resolve_fidelity, tables
from alloop.training.error_fit import fit_distance, frame_distances, frame_force_mae, frame_predictions
from alloop.training.run import load_dataset
from alloop.uncertainty.error_model import ErrorModel, spearman
from alloop.uncertainty.predicted_error import TINY, ErrorCalibration, conformal_upper

FORMS = ("power", "linear", "constant", "shrunk")
#: the shrunk form's penalty weight on (b - 1)^2, fixed before any result was seen
SHRINK = 1.0
SETS = {"500 K": data_file("ethanol_500K_eqtest_b3lyp-svp.extxyz"), "1000 K": DATA / "ethanol_1000K_eqtest_b3lyp-svp.extxyz"}
TOLERANCE = 0.25


@dataclass(frozen=True)
class Form:
    scale: float
    exponent: float
    factor: float  # the conformal bound is factor x the prediction

    def predict(self, signal: np.ndarray) -> np.ndarray:
        return self.scale * np.maximum(signal, TINY) ** self.exponent


def exponent(form: str, x: np.ndarray, y: np.ndarray) -> float:
    """b of ``form`` from log-signals ``x`` and log-errors ``y``."""
    if form in ("linear", "constant"):
        return 1.0 if form == "linear" else 0.0
    if np.ptp(x) == 0:
        return 0.0
    xc, yc = x - x.mean(), y - y.mean()
    extra = SHRINK if form == "shrunk" else 0.0
    return max(float((xc @ yc + extra) / (xc @ xc + extra)), 0.0)


def scale_exponent(form: str, x: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    b = exponent(form, x, np.log(e))
    return float(e.mean() / np.exp(b * x).mean()), b


def fit_form(form: str, signal: np.ndarray, error: np.ndarray, coverage: float) -> Form:
    """``form`` fitted on the held-out frames, with the leave-one-out conformal factor of ErrorCalibration.fit."""
    x = np.log(np.maximum(signal, TINY))
    scale, b = scale_exponent(form, x, error)
    keep = ~np.eye(x.size, dtype=bool)
    loo = np.array([scale_exponent(form, x[keep[i]], error[keep[i]]) for i in range(x.size)])
    return Form(scale, b, conformal_upper(error / (loo[:, 0] * np.exp(loo[:, 1] * x)), coverage)[0])


def calibrated_models(store: CampaignStore) -> list[tuple[int, int | None]]:
    """(model version, version of the validated model calibrated in its place or None), for every ``model``
    checkpoint: the campaign stores a refit's ``validated`` checkpoint just before the refit, with the same cycle."""
    entries = sorted(store.checkpoints(), key=lambda e: int(e["version"]))
    out, previous = [], -1
    for e in entries:
        v = int(e["version"])
        if e["role"] == "model":
            cycle = store.checkpoint(v)[1].get("cycle")
            found = [int(c["version"]) for c in entries if c["role"] == "validated" and previous < int(c["version"]) < v
                     and store.checkpoint(int(c["version"]))[1].get("cycle") == cycle]
            out.append((v, found[-1] if found else None))
            previous = v
    return out


def calibration_data(run: Path, trained: TrainedModel, held: TrainedModel) -> tuple[np.ndarray, np.ndarray]:
    """The campaign's calibration signals and errors (:func:`alloop.campaign.execution.train_task._error_frames`)."""
    with CampaignStore.open(find_store(run), "r") as store:
        labels = labelled_arrays(store, resolve_fidelity("expensive", store.config, store.fidelities()))
    assert len(set(labels.frame_ids.tolist())) == len(labels), f"{run}: several ok expensive labels of one frame"
    row = {int(f): k for k, f in enumerate(labels.frame_ids)}
    split = trained.metadata["split"]["expensive"]
    expensive = labels.dataset()
    train, val = (expensive.subset([row[f] for f in split[side]]) for side in ("train", "val"))
    if isinstance(trained.model, DeltaPotential):  # labels minus the baseline, as labels.minus(baseline)
        val = trained.model.baseline.subtract(val)
    model = learned_part(held.model)
    signal = frame_distances(fit_distance(model, train), model, val)
    return signal, np.maximum(frame_force_mae(model, val), 1e-12)


def check_stored(run: Path, version: int, stored: ErrorCalibration, signal: np.ndarray, error: np.ndarray) -> float:
    """The refit power law must give the stored calibration back (and this script's power form must match it); returns
    the largest relative deviation of (scale, exponent, factor) from the stored ones."""
    refit = ErrorCalibration.fit(signal, error, stored.coverage)
    mine = fit_form("power", signal, error, stored.coverage)
    got, want = [refit.scale, refit.exponent, refit.factor], [stored.scale, stored.exponent, stored.factor]
    assert refit.n == stored.n and np.allclose(got, want, rtol=1e-4, atol=1e-6), f"{run} v{version}: {refit} != {stored}"
    assert np.allclose([mine.scale, mine.exponent, mine.factor], got, rtol=1e-9), f"{run} v{version}: {mine} != {refit}"
    return float(np.max(np.abs(np.subtract(got, want)) / np.maximum(np.abs(want), 1e-6)))


_EVAL_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def set_frames(trained: TrainedModel, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stored distance, stored calibration's prediction, true per-frame force MAE) on a test set, per frame."""
    key = (trained.sha256, name)
    if key not in _EVAL_CACHE:
        data = load_dataset(SETS[name], "data")
        found = frame_predictions(trained.model, trained.metadata, data)
        assert found is not None
        assert np.all(data.sizes == data.sizes[0]), "frames of one size: the mean per-frame MAE is the force MAE"
        _EVAL_CACHE[key] = (found[0].distance, found[0].predicted, found[1])
    return _EVAL_CACHE[key]


def evaluate(run: Path, version: int, validated: int | None) -> dict | None:
    """One model's forms and their scores per test set; None for a model without a calibrated error model."""
    trained = load_trained(run, version, None)
    error_model = ErrorModel.from_metadata(trained.metadata)
    if error_model is None or error_model.calibration is None:
        return None
    assert ("refit_train_force_mae_eV_per_A" in trained.metadata["metrics"]) == (validated is not None), run
    held = trained if validated is None else load_trained(run, validated, None)
    signal, error = calibration_data(run, trained, held)
    stored = error_model.calibration
    deviation = check_stored(run, version, stored, signal, error)
    forms = {f: fit_form(f, signal, error, stored.coverage) for f in FORMS}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for name in SETS:
        distance, predicted, true = set_frames(trained, name)
        assert np.allclose(forms["power"].predict(distance), predicted, rtol=1e-6)
        scores[name] = {f: {"predicted": float(form.predict(distance).mean()), "measured": float(true.mean()),
                            "rho": spearman(form.predict(distance), true),
                            "coverage": float(np.mean(true <= form.factor * form.predict(distance)))}
                        for f, form in forms.items()}
    _check_recorded(run, version, scores["500 K"]["power"]["predicted"], trained)
    return {"run": run, "version": version, "validated": validated, "n": stored.n, "sha": trained.sha256,
            "deviation": deviation, "forms": forms, "scores": scores}


def _check_recorded(run: Path, version: int, predicted: float, trained: TrainedModel) -> None:
    """On the campaign's own evaluation set, the stored form must give the predicted error the campaign recorded."""
    evaluation = (trained.campaign_config or {}).get("evaluation") or {}
    if evaluation.get("sha256") != hashlib.sha256(SETS["500 K"].read_bytes()).hexdigest():
        return
    with CampaignStore.open(find_store(run), "r") as store:
        rows = tables.read(store, tables.EVAL_PREDICTED)
    recorded = rows["predicted_force_mae_eV_per_A"][rows["model_version"] == version]
    assert recorded.size == 1 and np.isclose(recorded[0], predicted, rtol=1e-4), f"{run} v{version}: {recorded}"


def num(value: float, fmt: str = "{:.2f}") -> str:
    return "-" if not np.isfinite(value) else fmt.format(value)


def mean_finite(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def pair_table(results: list[dict], names: dict[Path, str]) -> str:
    rows = []
    for r in results:
        model = f"v{r['version']}" + ("" if r["validated"] is None else f" (cal. v{r['validated']})")
        bs = " / ".join(f"{r['forms'][f].exponent:.2f}" for f in ("power", "shrunk"))
        for name, by_form in r["scores"].items():
            rows.append([names[r["run"]], model, r["n"], bs, name, f"{by_form['power']['measured']:.4f}",
                         *(f"{s['predicted']:.4f} · {s['predicted'] / s['measured']:.2f} · {num(s['rho'])} · "
                           f"{100 * s['coverage']:.0f} %" for s in (by_form[f] for f in FORMS))])
    return markdown_table(["run", "model", "held-out", "b power / shrunk", "set", "measured MAE (eV/Å)", *FORMS], rows)


def summary_table(results: list[dict]) -> str:
    rows = []
    for name in SETS:
        for f in FORMS:
            s = [r["scores"][name][f] for r in results]
            ratio = np.array([x["predicted"] / x["measured"] for x in s])
            power = np.array([x["predicted"] / x["measured"] for x in (r["scores"][name]["power"] for r in results)])
            closer = int(np.sum(np.abs(np.log(ratio)) < np.abs(np.log(power)) - 1e-12))
            rows.append([name, f, len(s), f"{np.mean(np.abs(ratio - 1) <= TOLERANCE):.0%}", f"{np.median(ratio):.2f}",
                         f"{ratio.min():.2f}-{ratio.max():.2f}", f"{np.mean(np.abs(np.log(ratio))):.3f}",
                         "-" if f == "power" else closer, num(mean_finite([x["rho"] for x in s])),
                         f"{np.mean([x['coverage'] for x in s]):.2f}"])
    return markdown_table(["set", "form", "models", f"within ±{100 * TOLERANCE:.0f} %", "median pred/meas", "range",
                           "mean abs log ratio", "closer than power", "mean rho", "mean share below 90 % bound"], rows)


def per_run_table(results: list[dict], names: dict[Path, str]) -> str:
    rows = []
    for run, name in names.items():
        mine = [r["scores"] for r in results if r["run"] == run]
        rows.append([name, len(mine), *(f"{np.median([x[s][f]['predicted'] / x[s][f]['measured'] for x in mine]):.2f}"
                                        for s in SETS for f in FORMS)])
    return markdown_table(["run", "models", *(f"{s} {f}" for s in SETS for f in FORMS)], rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+", help="finished campaign run directories (only read)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    names = {run: f"{run.parent.name}/{run.name}" for run in args.runs}
    results = []
    for run in args.runs:
        with CampaignStore.open(find_store(run), "r") as store:
            models = calibrated_models(store)
        for version, validated in models:
            found = evaluate(run, version, validated)
            if found is not None:
                results.append(found)
                print(f"{names[run]} v{version}: calibration rebuilt ({found['n']} held-out frames), "
                      f"largest relative deviation from the stored one {found['deviation']:.1e}",
                      file=sys.stderr)
    if not results:
        print("no model with a calibrated error model", file=sys.stderr)
        return 1
    print("Per (run, model) and test set: b of the power and shrunk forms; per form: predicted mean force error (eV/Å) "
          "· predicted / measured · Spearman rho (per frame) · share of frames below the 90 % bound\n")
    print(pair_table(results, names))
    distinct = list({r["sha"]: r for r in results}.values())
    print(f"\nSummary over all {len(results)} (run, model) pairs:\n")
    print(summary_table(results))
    print(f"\nSummary over the {len(distinct)} distinct checkpoints (SHA-256; runs with the same seed share models):\n")
    print(summary_table(distinct))
    print("\nPer run: median predicted / measured\n")
    print(per_run_table(results, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
