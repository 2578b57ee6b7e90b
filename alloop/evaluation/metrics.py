"""A Potential's errors on labelled frames (predictions: :mod:`alloop.potentials.inference`).

Units: energies in eV, forces in eV/Angstrom. ``force_rmse`` is the real root
mean square over all force components (sqrt(mean(dF^2))), not a mean of
per-atom L2 norms (the ASTEROID code's "RMSE"). Energy errors are absolute
(the model's references must be those of the data's fidelity); the per-atom
energy MAE divides each frame's error by its number of atoms. The force error's tails are those of the
per-frame force MAE (a frame's mean of |dF| over its atoms' components, as ``per_frame_force_mae`` of
``benchmarks/lib/common.py``): its 95th percentile (numpy's linear interpolation) and its maximum
(``force_mae_p95_eV_per_A``, ``force_mae_max_eV_per_A``). :func:`molecule_metrics` and
:func:`basin_metrics` split the errors by molecule (formula, :mod:`alloop.molecules`) and by conformer basin.

The frames are anything :class:`LabelledFrames` describes (a :class:`alloop.training.data.FrameDataset` is one), so
this module sits below training, which scores its own models with it.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.potentials.inference import PackedFrames, predict
from alloop.system.molecules import frame_molecules


class LabelledFrames(PackedFrames, Protocol):
    """Labelled frames packed end to end: what the metrics read (a FrameDataset is one)."""

    @property
    def labelled(self) -> bool: ...

    @property
    def sizes(self) -> np.ndarray: ...

    def labels(self) -> tuple[np.ndarray, np.ndarray]: ...

    def to_atoms(self) -> list[Atoms]: ...

    def __len__(self) -> int: ...


def _array_metrics(energy: np.ndarray, forces: np.ndarray, sizes: np.ndarray, energy_pred: np.ndarray,
                   forces_pred: np.ndarray) -> dict[str, Any]:
    """:func:`error_metrics` of reference and predicted arrays (frames of ``sizes`` atoms)."""
    de = energy_pred - energy
    df = forces_pred - forces
    return {
        "n_frames": int(sizes.size),
        "n_atoms": int(sizes.sum()),
        "energy_mae_eV": float(np.mean(np.abs(de))),
        "energy_rmse_eV": float(np.sqrt(np.mean(de**2))),
        "energy_mae_per_atom_eV": float(np.mean(np.abs(de) / sizes)),
        "force_mae_eV_per_A": float(np.mean(np.abs(df))),
        "force_rmse_eV_per_A": float(np.sqrt(np.mean(df**2))),
        **force_mae_tails(frame_force_mae(df, sizes)),
    }


def frame_force_mae(force_errors: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each frame's force MAE (eV/A): the mean of |dF| over the components of its atoms (``force_errors``, frames
    of ``sizes`` atoms end to end)."""
    frame_of_atom = np.repeat(np.arange(sizes.size), sizes)
    return np.bincount(frame_of_atom, weights=np.abs(force_errors).sum(-1), minlength=sizes.size) / (3.0 * sizes)


def force_mae_tails(per_frame: np.ndarray) -> dict[str, float]:
    """The 95th percentile and the maximum of per-frame force MAEs (eV/A)."""
    return {"force_mae_p95_eV_per_A": float(np.percentile(per_frame, 95)),
            "force_mae_max_eV_per_A": float(per_frame.max())}


def error_metrics(dataset: LabelledFrames, energy_pred: np.ndarray, forces_pred: np.ndarray) -> dict[str, Any]:
    """Energy and force MAE/RMSE (eV, eV/A), per-atom energy MAE, counts."""
    if not dataset.labelled:
        raise AlloopError("error metrics need a labelled dataset")
    energy, forces = dataset.labels()
    return _array_metrics(energy, forces, dataset.sizes, energy_pred, forces_pred)


def _part_metrics(dataset: LabelledFrames, energy_pred: np.ndarray, forces_pred: np.ndarray,
                  frames: np.ndarray) -> dict[str, Any]:
    """:func:`error_metrics` of the frames ``frames`` of ``dataset`` (indices, in order) and their ``share``."""
    energy, forces = dataset.labels()
    offsets = dataset.offsets
    atoms = np.concatenate([np.arange(offsets[j], offsets[j + 1]) for j in frames])
    metrics = _array_metrics(energy[frames], forces[atoms], dataset.sizes[frames], energy_pred[frames],
                             forces_pred[atoms])
    return {**metrics, "share": float(frames.size / len(dataset))}


def evaluate_model(model: Potential, dataset: LabelledFrames, batch_size: int = 32) -> dict[str, Any]:
    """:func:`error_metrics` of ``model`` on ``dataset``."""
    energy_pred, forces_pred = predict(model, dataset, batch_size)
    return error_metrics(dataset, energy_pred, forces_pred)


def basin_metrics(model: Potential, dataset: LabelledFrames, batch_size: int = 32) -> dict[str, dict[str, Any]]:
    """:func:`error_metrics` per conformer basin (:mod:`alloop.system.conformers`) of a set of one molecule with rotors.

    Empty when the frames are of several compositions, periodic, or have no non-symmetric rotor.
    """
    from alloop.system.conformers import basin_name, find_rotors, frame_basins

    structures = dataset.to_atoms()
    if len({tuple(a.numbers) for a in structures}) != 1 or structures[0].pbc.any():
        return {}
    rotors = [r for r in find_rotors(structures[0]) if not r.symmetric]
    if not rotors:
        return {}
    energy_pred, forces_pred = predict(model, dataset, batch_size)
    codes = frame_basins(np.array([a.positions for a in structures]), rotors)
    return {basin_name(int(code), len(rotors)): _part_metrics(dataset, energy_pred, forces_pred,
                                                              np.flatnonzero(codes == code))
            for code in np.unique(codes)}


def molecule_metrics(dataset: LabelledFrames, energy_pred: np.ndarray,
                     forces_pred: np.ndarray) -> dict[str, dict[str, Any]]:
    """:func:`error_metrics` per molecule (formula, :func:`alloop.system.molecules.frame_molecules`) of a labelled set and
    its predictions, with each molecule's ``share`` of the frames; molecules in the order of first appearance."""
    if not dataset.labelled:
        raise AlloopError("error metrics need a labelled dataset")
    molecules = frame_molecules(dataset.numbers, dataset.offsets)
    return {str(name): _part_metrics(dataset, energy_pred, forces_pred, np.flatnonzero(molecules == name))
            for name in dict.fromkeys(molecules.tolist())}


def per_molecule_metrics(model: Potential, dataset: LabelledFrames,
                         batch_size: int = 32) -> dict[str, dict[str, Any]]:
    """:func:`molecule_metrics` of ``model`` on ``dataset``; empty for frames of one molecule (nothing to split)."""
    if len(set(frame_molecules(dataset.numbers, dataset.offsets).tolist())) < 2:
        return {}
    return molecule_metrics(dataset, *predict(model, dataset, batch_size))
