"""``predicted.png``: each model's predicted force error against the measured one (its error model,
:mod:`alloop.uncertainty.error_model`).

Left: per frame of the campaign's evaluation set, the newest model's predicted force error against its true
force MAE (log-log, the diagonal and the predicted bound's coverage in the title). Right: per cycle, the mean
predicted error of the MD frames, and the evaluation set's predicted and measured force MAE of the model trained
in that cycle. Nothing when no model carries a calibrated error model.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from alloop.evaluation import predicted_errors  # noqa: E402
from alloop.store.campaign import CampaignStore  # noqa: E402


def plot_predicted(store: CampaignStore, path: Path) -> Path | None:
    rows = predicted_errors.status(store)
    frames = _newest_frames(store)
    if not rows and frames is None:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    if frames is not None:
        version, predicted, upper, true = frames
        left.scatter(true, predicted, s=8, alpha=0.6, label="predicted")
        lo, hi = float(min(true.min(), predicted.min())) * 0.8, float(max(true.max(), upper.max())) * 1.2
        left.plot([lo, hi], [lo, hi], "k--", lw=1)
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_xlabel("true force MAE per frame (eV/Å)")
        left.set_ylabel("predicted force error (eV/Å)")
        left.set_title(f"model v{version} on the evaluation set: {100 * np.mean(true <= upper):.0f} % of frames "
                       "below the bound", fontsize=9)
    for key, marker, name in (("md_predicted_eV_per_A", "o-", "MD frames, predicted"),
                              ("eval_predicted_eV_per_A", "s--", "evaluation set, predicted"),
                              ("eval_measured_eV_per_A", "D-", "evaluation set, measured")):
        points = [(r["cycle"], r[key]) for r in rows if r[key] is not None]
        if points:
            right.plot(*zip(*points, strict=True), marker, label=name)
    right.set_xlabel("cycle (-1: bootstrap)")
    right.set_ylabel("force error (eV/Å)")
    right.set_title("predicted and measured force error per cycle", fontsize=9)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _newest_frames(store: CampaignStore) -> tuple[int, np.ndarray, np.ndarray, np.ndarray] | None:
    """The newest model's per-frame predicted errors, bounds and true force MAE on the evaluation set, or None."""
    from alloop.evaluation.records import stored_set
    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.training.data import FrameDataset
    from alloop.training.error_fit import frame_predictions

    models = [c for c in store.checkpoints() if c["role"] == "model"]
    evaluation = stored_set(store)
    if not models or evaluation is None:
        return None
    version = int(models[-1]["version"])
    model, metadata = model_from_bytes(store.checkpoint(version)[0])
    data = FrameDataset(**evaluation.dataset_arrays(), energy=evaluation.energy_eV,
                        forces=evaluation.forces_eV_per_A, fidelity="evaluation")
    found = frame_predictions(model, metadata, data)
    if found is None:
        return None
    errors, true = found
    return version, errors.predicted, errors.upper, true
