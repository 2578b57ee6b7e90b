"""Error metrics of a Potential on a labelled dataset (predictions: :mod:`alloop.potentials.inference`).

Units: energies in eV, forces in eV/Angstrom. ``force_rmse`` is the real root
mean square over all force components (sqrt(mean(dF^2))), not a mean of
per-atom L2 norms (the ASTEROID code's "RMSE"). Energy errors are absolute
(the model's references must be those of the data's fidelity); the per-atom
energy MAE divides each frame's error by its number of atoms. :func:`molecule_metrics` and
:func:`basin_metrics` split the errors by molecule (formula, :mod:`alloop.molecules`) and by conformer basin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError
from alloop.molecules import frame_molecules
from alloop.potentials.base import Potential
from alloop.potentials.inference import predict
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


def error_metrics(dataset: FrameDataset, energy_pred: np.ndarray, forces_pred: np.ndarray) -> dict[str, Any]:
    """Energy and force MAE/RMSE (eV, eV/A), per-atom energy MAE, counts."""
    if not dataset.labelled:
        raise AlloopError("error metrics need a labelled dataset")
    de = energy_pred - dataset.energy
    df = forces_pred - dataset.forces
    return {
        "n_frames": len(dataset),
        "n_atoms": int(dataset.numbers.size),
        "energy_mae_eV": float(np.mean(np.abs(de))),
        "energy_rmse_eV": float(np.sqrt(np.mean(de**2))),
        "energy_mae_per_atom_eV": float(np.mean(np.abs(de) / dataset.sizes)),
        "force_mae_eV_per_A": float(np.mean(np.abs(df))),
        "force_rmse_eV_per_A": float(np.sqrt(np.mean(df**2))),
    }


def validation_metrics(
    model: Potential, dataset: FrameDataset, energy_weight: float, kind: str, batch_size: int = 32
) -> dict[str, float]:
    """Weighted Eq. 1 loss and weighted force/energy MAE of a validation set.

    Frames count with their weights (force MAE weights each frame by ``w_j * 3 k_j``
    components); with unit weights these are the plain MAEs.
    """
    energy_pred, forces_pred = predict(model, dataset, batch_size)
    w = dataset.weight
    if w.sum() <= 0:
        raise AlloopError("validation weights sum to zero")
    lf, le = per_frame_errors(dataset, energy_pred, forces_pred, kind)
    mae_f, mae_e = per_frame_errors(dataset, energy_pred, forces_pred, "mae") if kind != "mae" else (lf, le)
    n3 = 3.0 * dataset.sizes
    return {
        "loss": float(np.sum(w * ((1.0 - energy_weight) * lf + energy_weight * le)) / w.sum()),
        "force_mae": float(np.sum(w * n3 * mae_f) / np.sum(w * n3)),
        "energy_mae": float(np.sum(w * mae_e * dataset.sizes) / w.sum()),
    }


def evaluate_model(model: Potential, dataset: FrameDataset, batch_size: int = 32) -> dict[str, Any]:
    """:func:`error_metrics` of ``model`` on ``dataset``."""
    energy_pred, forces_pred = predict(model, dataset, batch_size)
    return error_metrics(dataset, energy_pred, forces_pred)


def basin_metrics(model: Potential, dataset: FrameDataset, batch_size: int = 32) -> dict[str, dict[str, Any]]:
    """:func:`error_metrics` per conformer basin (:mod:`alloop.conformers`) of a set of one molecule with rotors.

    Empty when the frames are of several compositions, periodic, or have no non-symmetric rotor.
    """
    from alloop.conformers import basin_name, find_rotors, frame_basins

    structures = dataset.to_atoms()
    if len({tuple(a.numbers) for a in structures}) != 1 or structures[0].pbc.any():
        return {}
    rotors = [r for r in find_rotors(structures[0]) if not r.symmetric]
    if not rotors:
        return {}
    energy_pred, forces_pred = predict(model, dataset, batch_size)
    codes = frame_basins(np.array([a.positions for a in structures]), rotors)
    n = len(structures[0])
    out = {}
    for code in np.unique(codes):
        frames = np.flatnonzero(codes == code)
        atoms = (frames[:, None] * n + np.arange(n)[None, :]).ravel()
        metrics = error_metrics(dataset.subset(frames), energy_pred[frames], forces_pred[atoms])
        out[basin_name(int(code), len(rotors))] = {**metrics, "share": float(frames.size / len(structures))}
    return out


def molecule_metrics(dataset: FrameDataset, energy_pred: np.ndarray, forces_pred: np.ndarray) -> dict[str, dict[str, Any]]:
    """:func:`error_metrics` per molecule (formula, :func:`alloop.molecules.frame_molecules`) of a labelled set and
    its predictions, with each molecule's ``share`` of the frames; molecules in the order of first appearance."""
    molecules = frame_molecules(dataset.numbers, dataset.offsets)
    atom_of_frame = np.repeat(molecules, dataset.sizes)
    out = {}
    for name in dict.fromkeys(molecules.tolist()):
        frames = np.flatnonzero(molecules == name)
        metrics = error_metrics(dataset.subset(frames), energy_pred[frames], forces_pred[atom_of_frame == name])
        out[str(name)] = {**metrics, "share": float(frames.size / len(dataset))}
    return out


def per_molecule_metrics(model: Potential, dataset: FrameDataset, batch_size: int = 32) -> dict[str, dict[str, Any]]:
    """:func:`molecule_metrics` of ``model`` on ``dataset``; empty for frames of one molecule (nothing to split)."""
    if len(set(frame_molecules(dataset.numbers, dataset.offsets).tolist())) < 2:
        return {}
    return molecule_metrics(dataset, *predict(model, dataset, batch_size))
