"""Spectral radius refinement (RR, METHODS.md section 3): a graph radius per test structure, chosen by its spectrum.

For a structure and a radius r the graph joins atoms closer than r (strictly,
as the models' neighbour lists do), with a self-loop on every atom. Its
*spectrum* is the ascending eigenvalues of the symmetric normalised Laplacian
L = I - D^-1/2 (A + I) D^-1/2 (D: the degrees of A + I), which lie in [0, 2);
elements and distances beyond "closer than r" do not enter. Spectra of
different lengths are compared zero-padded to the longer one, the zeros at the
low end: that is the spectrum of the same graph plus isolated atoms, so a
padded spectrum stays sorted. The reference is the mean padded spectrum of the
training frames at the model's training cutoff.

For each test structure RR takes the radius of a grid (default 3 to 9 A in
0.25 A steps, plus the training cutoff) whose spectrum has the smallest squared
distance to the reference. Ties go to the radius nearest the training cutoff:
a structure whose graph is the same over a range of radii (a small molecule
well inside the cutoff has a complete graph) keeps the training cutoff, so its
predictions are unchanged. Predictions use the chosen radius through
:meth:`Potential.using_graph_radius`, which only architectures with
``accepts_graph_radius`` (EGNN, and two-head models of it) allow; for the
others (SevenNet, the pair potential: radial functions tied to their cutoff)
RR is not applicable and :func:`refine_radius_predict` raises AlloopError.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.potentials.inference import Frames, pack, pack_cells, predict

#: the default grid of radii (Angstrom): METHODS.md's range, 0.25 A apart
GRID_RANGE = (3.0, 9.0, 0.25)
#: distances within this (relative) of the smallest count as ties
TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class _Packed:
    """Frames packed end to end (satisfies :class:`alloop.potentials.inference.PackedFrames`)."""

    numbers: np.ndarray
    positions: np.ndarray
    offsets: np.ndarray


@dataclass
class RadiusRefinement:
    """Per frame the chosen radius [M] (A), energies [M] (eV) and forces [N, 3] (eV/A) predicted with it."""

    radii: np.ndarray
    energies: np.ndarray
    forces: np.ndarray
    cutoff: float  # the model's training cutoff
    grid: np.ndarray
    reference: np.ndarray  # the mean training spectrum
    choose_cpu_seconds: float  # CPU time of the spectra and the choice (not of the predictions)

    @property
    def moved(self) -> np.ndarray:
        """Per frame, whether the chosen radius differs from the training cutoff."""
        return self.radii != self.cutoff


def _positions(structure: Atoms | np.ndarray) -> np.ndarray:
    positions = structure.positions if isinstance(structure, Atoms) else structure
    return np.asarray(positions, dtype=np.float64).reshape(-1, 3)


def _distances(positions: np.ndarray) -> np.ndarray:
    return np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)


def _spectrum(distances: np.ndarray, radius: float) -> np.ndarray:
    n = distances.shape[0]
    adjacency = (distances < radius).astype(np.float64)  # the diagonal (distance 0) is the self-loop
    np.fill_diagonal(adjacency, 1.0)
    scale = 1.0 / np.sqrt(adjacency.sum(axis=1))
    return np.linalg.eigvalsh(np.eye(n) - scale[:, None] * adjacency * scale[None, :])


def laplacian_spectrum(structure: Atoms | np.ndarray, radius: float) -> np.ndarray:
    """Ascending eigenvalues [N] of I - D^-1/2 (A + I) D^-1/2, atoms (positions [N, 3], A) joined below ``radius``."""
    if not radius > 0:
        raise AlloopError(f"the radius must be positive, got {radius}")
    return _spectrum(_distances(_positions(structure)), float(radius))


def spectra_over_grid(structure: Atoms | np.ndarray, grid: Sequence[float] | np.ndarray) -> list[np.ndarray]:
    """The spectrum at every radius of ``grid``; one eigendecomposition per distinct graph."""
    distances = _distances(_positions(structure))
    pairs = np.sort(distances[np.triu_indices(distances.shape[0], 1)])
    edges = np.searchsorted(pairs, np.asarray(grid, dtype=np.float64), side="left")  # pairs closer than r
    cache: dict[int, np.ndarray] = {}
    for count, radius in zip(edges.tolist(), grid, strict=True):
        if count not in cache:
            cache[count] = _spectrum(distances, float(radius))
    return [cache[count] for count in edges.tolist()]


def padded(spectrum: np.ndarray, length: int) -> np.ndarray:
    """``spectrum`` with zeros in front up to ``length`` (the spectrum of the graph plus isolated atoms)."""
    return np.concatenate([np.zeros(max(0, length - spectrum.size)), spectrum])


def spectral_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Squared distance between two spectra, the shorter zero-padded."""
    n = max(a.size, b.size)
    return float(np.sum((padded(a, n) - padded(b, n)) ** 2))


def _structures(frames: Frames) -> list[np.ndarray]:
    """Positions [n_i, 3] of each frame."""
    _, positions, offsets = pack(frames)
    return [positions[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def mean_spectrum(frames: Frames, radius: float) -> np.ndarray:
    """Mean of the frames' spectra at ``radius``, each zero-padded to the longest."""
    spectra = [laplacian_spectrum(p, radius) for p in _structures(frames)]
    n = max(s.size for s in spectra)
    return np.mean([padded(s, n) for s in spectra], axis=0)


def radius_grid(cutoff: float, low: float = GRID_RANGE[0], high: float = GRID_RANGE[1],
                step: float = GRID_RANGE[2]) -> np.ndarray:
    """Radii ``low``, ``low + step``, ... up to ``high`` (A), and the training ``cutoff``, ascending."""
    if not (0 < low <= high and step > 0):
        raise AlloopError(f"the radius grid needs 0 < low <= high and step > 0, got {low}:{high}:{step}")
    n = int(np.floor((high - low) / step + 1e-9)) + 1
    return np.unique(np.append(np.round(low + step * np.arange(n), 10), float(cutoff)))


def choose_radius(structure: Atoms | np.ndarray, reference: np.ndarray, grid: Sequence[float] | np.ndarray,
                  cutoff: float) -> float:
    """The radius of ``grid`` whose spectrum is nearest ``reference``; ties go to the one nearest ``cutoff``."""
    radii = np.asarray(grid, dtype=np.float64)
    if radii.size == 0:
        raise AlloopError("the radius grid is empty")
    distance = np.array([spectral_distance(s, reference) for s in spectra_over_grid(structure, radii)])
    best = distance.min()
    ties = np.flatnonzero(distance <= best + TIE_TOLERANCE * max(1.0, best))
    return float(radii[ties[np.argmin(np.abs(radii[ties] - cutoff))]])


def check_applicable(model: Potential) -> None:
    """AlloopError unless ``model`` can build its graph at another radius than its training cutoff."""
    if not model.accepts_graph_radius:
        body = getattr(model, "body", None)
        name = body.registry_name if isinstance(body, Potential) else model.registry_name
        raise AlloopError(f"spectral radius refinement is not applicable to a '{name}' model: its radial functions "
                          f"are tied to its training cutoff ({model.cutoff:g} A), it cannot take another graph radius")


def _subset(numbers: np.ndarray, positions: np.ndarray, offsets: np.ndarray, index: np.ndarray) -> _Packed:
    parts = [np.arange(offsets[k], offsets[k + 1]) for k in index]
    atoms = np.concatenate(parts)
    sizes = np.array([p.size for p in parts], dtype=np.int64)
    return _Packed(numbers[atoms], positions[atoms], np.concatenate([[0], np.cumsum(sizes)]))


def refine_radius_predict(model: Potential, frames: Frames, training_frames: Frames,
                          grid: Sequence[float] | np.ndarray | None = None, batch_size: int = 32) -> RadiusRefinement:
    """RR: per frame the radius whose spectrum matches the training frames' (at ``model.cutoff``), and predictions.

    Frames that chose the same radius are predicted together (:func:`alloop.potentials.inference.predict`);
    energies and forces come back in frame order. AlloopError if the model does not accept another radius.
    """
    check_applicable(model)
    if pack_cells(frames) is not None or pack_cells(training_frames) is not None:
        raise AlloopError("radius refinement handles molecules only (its graph spectra have no periodic images)")
    start = time.process_time()
    grid_ = radius_grid(model.cutoff) if grid is None else np.asarray(grid, dtype=np.float64)
    reference = mean_spectrum(training_frames, model.cutoff)
    numbers, positions, offsets = pack(frames)
    radii = np.array([choose_radius(positions[a:b], reference, grid_, model.cutoff)
                      for a, b in zip(offsets[:-1], offsets[1:], strict=True)])
    seconds = time.process_time() - start
    energies = np.zeros(radii.size)
    forces = np.zeros_like(positions)
    for radius in np.unique(radii):
        index = np.flatnonzero(radii == radius)
        group = _subset(numbers, positions, offsets, index)
        with model.using_graph_radius(float(radius)):
            energy, force = predict(model, group, batch_size=batch_size)
        energies[index] = energy
        for k, frame in enumerate(index):
            forces[offsets[frame]:offsets[frame + 1]] = force[group.offsets[k]:group.offsets[k + 1]]
    return RadiusRefinement(radii=radii, energies=energies, forces=forces, cutoff=model.cutoff, grid=grid_,
                            reference=reference, choose_cpu_seconds=seconds)
