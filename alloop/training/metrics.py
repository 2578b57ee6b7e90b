"""Training's own measures on labelled data: the weighted Eq. 1 validation loss (:func:`validation_metrics`), the
per-frame losses behind it (:func:`per_frame_errors`), and a model's predictions as labels (:func:`pseudo_labelled`).

Units: energies in eV, forces in eV/Angstrom. A model's errors on labelled frames (MAE, RMSE, per molecule, per
basin) are :mod:`alloop.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.potentials.inference import predict, predict_energies
from alloop.training.data import FrameDataset
from alloop.training.loss import HUBER_DELTA, LOSS_TYPES


def pseudo_labelled(model: Potential, structures: Sequence[Atoms], fidelity: str = "original") -> FrameDataset:
    """``structures`` labelled with the energies (eV) and forces (eV/A) that ``model`` predicts."""
    if not structures:
        raise AlloopError("no structures to label")
    unlabelled = FrameDataset.from_atoms(structures, fidelity=fidelity, labelled=False)
    energy, forces = predict(model, unlabelled)
    return FrameDataset(unlabelled.numbers, unlabelled.positions, unlabelled.offsets, energy=energy, forces=forces,
                        fidelity=fidelity, cells=unlabelled.cells, pbc=unlabelled.pbc)


def per_frame_errors(dataset: FrameDataset, energy_pred: np.ndarray, forces_pred: np.ndarray,
                     kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame force loss (mean over atoms and xyz) and per-atom energy loss, as in :mod:`loss`."""
    if kind not in LOSS_TYPES:
        raise AlloopError(f"unknown loss type '{kind}' (use one of {', '.join(LOSS_TYPES)})")
    losses: dict[str, Callable[[np.ndarray], np.ndarray]] = {"mae": np.abs, "mse": np.square, "huber": _huber}
    fn = losses[kind]
    energy, forces = dataset.labels()
    per_atom = fn(forces_pred - forces).sum(-1)
    frame_of_atom = np.repeat(np.arange(len(dataset)), dataset.sizes)
    lf = np.bincount(frame_of_atom, weights=per_atom, minlength=len(dataset)) / (3.0 * dataset.sizes)
    le = fn((energy_pred - energy) / dataset.sizes)
    return lf, le


def _huber(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return np.where(a < HUBER_DELTA, 0.5 * a * a, HUBER_DELTA * (a - 0.5 * HUBER_DELTA))


def validation_metrics(
    model: Potential, dataset: FrameDataset, energy_weight: float, kind: str, batch_size: int = 32
) -> dict[str, float]:
    """Weighted Eq. 1 loss and weighted force/energy MAE of a validation set.

    Frames count with their weights (force MAE weights each frame by ``w_j * 3 k_j``
    components); with unit weights these are the plain MAEs.
    """
    energy_pred, forces_pred = predict(model, dataset, batch_size)
    w = _validation_weights(dataset)
    lf, le = per_frame_errors(dataset, energy_pred, forces_pred, kind)
    mae_f, mae_e = per_frame_errors(dataset, energy_pred, forces_pred, "mae") if kind != "mae" else (lf, le)
    n3 = 3.0 * dataset.sizes
    return {
        "loss": float(np.sum(w * ((1.0 - energy_weight) * lf + energy_weight * le)) / w.sum()),
        "force_mae": float(np.sum(w * n3 * mae_f) / np.sum(w * n3)),
        "energy_mae": _energy_mae(dataset, mae_e),
    }


def validation_energy_mae(model: Potential, dataset: FrameDataset, batch_size: int = 32) -> float:
    """:func:`validation_metrics`'s ``energy_mae`` (eV) from the energies alone: the same number at the same
    ``batch_size``, without the force pass."""
    _validation_weights(dataset)
    energy, _ = dataset.labels()
    return _energy_mae(dataset, np.abs((predict_energies(model, dataset, batch_size) - energy) / dataset.sizes))


def _validation_weights(dataset: FrameDataset) -> np.ndarray:
    """The frames' weights; AlloopError when they sum to zero."""
    if dataset.weight.sum() <= 0:
        raise AlloopError("validation weights sum to zero")
    return dataset.weight


def _energy_mae(dataset: FrameDataset, per_atom_error: np.ndarray) -> float:
    """Weighted mean absolute energy error (eV) from the per-frame absolute per-atom errors (eV/atom)."""
    w = dataset.weight
    return float(np.sum(w * per_atom_error * dataset.sizes) / w.sum())
