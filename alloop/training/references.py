"""Per-fidelity, per-element reference energies: E_frame ~ sum_Z n_Z(frame) * e_Z.

Cheap and expensive levels of theory differ by tens of eV per molecule in
absolute energy, so each fidelity gets its own references, fitted by least
squares of the frame energies on the element counts, and the network learns
only the residual. The fitted references are written into the model's
``atomic_energies`` buffer before it trains on (or predicts) that fidelity.

Rank deficiency: when the compositions do not determine every element's
energy (the common active-learning case: all frames are one molecule), the
fit is degenerate. A tiny ridge then picks the minimum-norm solution, which
reproduces the mean energy of each composition exactly; the split between
elements is arbitrary and the network's residual is relative to that mean.
:class:`ReferenceFit` reports ``degenerate`` so callers can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.potentials.inference import predict_energies
from alloop.training.data import FrameDataset


@dataclass(frozen=True)
class ReferenceFit:
    """Fitted references ``energies`` {Z: eV}, the rank of the count matrix and the fit's RMS residual (eV)."""

    energies: dict[int, float]
    rank: int
    degenerate: bool
    residual_rms_eV: float
    fidelity: str = ""


def element_counts(dataset: FrameDataset, elements: tuple[int, ...]) -> np.ndarray:
    """Count matrix [M, len(elements)]: atoms of each element per frame."""
    col = {z: k for k, z in enumerate(elements)}
    counts = np.zeros((len(dataset), len(elements)))
    frame_of_atom = np.repeat(np.arange(len(dataset)), dataset.sizes)
    cols = np.array([col[int(z)] for z in dataset.numbers])
    np.add.at(counts, (frame_of_atom, cols), 1.0)
    return counts


def fit_references(dataset: FrameDataset, ridge: float = 1e-10) -> ReferenceFit:
    """Least-squares per-element energies (eV) of a labelled dataset's elements.

    Solves ``min |C e - E|^2 + lambda |e|^2`` with ``lambda = ridge * mean(diag(C^T C))``
    as an augmented least-squares problem (stable for energies of thousands of eV).
    """
    if dataset.energy is None:
        raise AlloopError("reference energies need a labelled dataset")
    return _fit_counts(dataset, dataset.energy, ridge)


def refit_references(model: Potential, dataset: FrameDataset, ridge: float = 1e-10, batch_size: int = 64) -> ReferenceFit:
    """Shift the model's references so its energy errors on ``dataset`` have no per-element offset.

    The force loss does not see a constant energy offset, and a small energy weight
    moves it only slowly, so after training the network's mean energy can sit eV
    away from the labels. This fits the residuals ``E_label - E_model`` on the element
    counts (as :func:`fit_references`) and adds the result to the model's references:
    forces are unchanged, and the residuals have no component left along the element
    counts (one composition: the mean energy error becomes zero). Frame weights are
    not used. Returns the fit with the new references.
    """
    if not dataset.labelled:
        raise AlloopError("reference energies need a labelled dataset")
    residual = dataset.energy - predict_energies(model, dataset, batch_size)
    shift = _fit_counts(dataset, residual, ridge)
    current = model_references(model)
    energies = {z: current.get(z, 0.0) + de for z, de in shift.energies.items()}
    apply_references(model, {**current, **energies})
    return ReferenceFit(energies, shift.rank, shift.degenerate, shift.residual_rms_eV, dataset.fidelity)


def without_element_offsets(dataset: FrameDataset, energy: np.ndarray, ridge: float = 1e-10) -> np.ndarray:
    """``energy`` [M] (eV) minus its least-squares fit on the element counts of ``dataset``'s frames.

    What is left of per-frame energies (or energy differences) once any per-element
    constant is removed: zero for energies that differ only by such constants.
    """
    energy = np.asarray(energy, dtype=np.float64).reshape(-1)
    fit = _fit_counts(dataset, energy, ridge)
    counts = element_counts(dataset, dataset.elements)
    return energy - counts @ np.array([fit.energies[z] for z in dataset.elements])


def _fit_counts(dataset: FrameDataset, energy: np.ndarray, ridge: float) -> ReferenceFit:
    """Per-element energies fitting ``energy`` [M] on the element counts of ``dataset``."""
    elements = dataset.elements
    counts = element_counts(dataset, elements)
    lam = ridge * max(1.0, float(np.mean(np.sum(counts**2, axis=0))))
    n_el = len(elements)
    a = np.vstack([counts, np.sqrt(lam) * np.eye(n_el)])
    b = np.concatenate([energy, np.zeros(n_el)])
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    rank = int(np.linalg.matrix_rank(counts))
    residual = energy - counts @ solution
    return ReferenceFit(
        energies={int(z): float(e) for z, e in zip(elements, solution, strict=True)},
        rank=rank,
        degenerate=rank < n_el,
        residual_rms_eV=float(np.sqrt(np.mean(residual**2))),
        fidelity=dataset.fidelity,
    )


def apply_references(model: Potential, energies: dict[int, float]) -> None:
    """Write references {Z: eV} into ``model.atomic_energies``; every other element is set to 0."""
    missing = set(energies) - set(model.elements)
    if missing:
        raise AlloopError(f"references for elements {sorted(missing)} that the model does not know {list(model.elements)}")
    with torch.no_grad():
        model.atomic_energies.zero_()
        for z, e in energies.items():
            model.atomic_energies[int(z)] = float(e)


def model_references(model: Potential) -> dict[int, float]:
    """The model's current references {Z: eV} for its elements."""
    return {int(z): float(model.atomic_energies[int(z)]) for z in model.elements}
