"""Distance of a frame's atoms to the training atoms in the model's normalised latent features (per element).

The Q-residual keeps only what lies outside the k leading principal directions of the training features (and
T^2 only what lies inside them). This signal uses every direction at once: per element, the training atoms'
features are standardised (mean and standard deviation per feature) and their covariance C, regularised by
``ridge`` x its mean eigenvalue, is inverted; an atom's distance is ``sqrt(z^T (C + ridge I)^-1 z / D)``
(z: its standardised features, D: their number), the Mahalanobis distance per dimension. It is the
last-layer form of the prediction-rigidity (LLPR) and latent-distance uncertainties of the literature, with no
committee. A frame's score is the mean (``reduce="mean"``) or the maximum of its atoms' distances. An element
the training atoms do not hold scores infinity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alloop.errors import AlloopError

#: regularisation of the covariance, x its mean eigenvalue (keeps directions the training atoms do not span finite)
DEFAULT_RIDGE = 1e-2
REDUCTIONS = ("mean", "max")


@dataclass(frozen=True)
class _Element:
    mean: np.ndarray  # [D]
    scale: np.ndarray  # [D]
    precision: np.ndarray  # [D, D]


class LatentDistance:
    """Per-element Mahalanobis distance to the training atoms; build it with :meth:`fit`."""

    def __init__(self, elements: dict[int, _Element], reduce: str = "mean") -> None:
        if reduce not in REDUCTIONS:
            raise AlloopError(f"unknown reduction '{reduce}': use one of {', '.join(REDUCTIONS)}")
        self.elements, self.reduce = elements, reduce

    @classmethod
    def fit(cls, numbers: np.ndarray, features: np.ndarray, ridge: float = DEFAULT_RIDGE,
            reduce: str = "mean") -> LatentDistance:
        """Fit on the training atoms' atomic numbers [N] and latent features [N, D]."""
        numbers, features = np.asarray(numbers), np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or len(numbers) != len(features):
            raise AlloopError(f"features must be [N, D] with one row per atom, got {features.shape} for {len(numbers)}")
        if ridge <= 0:
            raise AlloopError(f"ridge must be > 0, got {ridge}")
        elements = {}
        for z in np.unique(numbers):
            rows = features[numbers == z]
            mean = rows.mean(axis=0)
            scale = rows.std(axis=0)
            scale = np.where(scale > 1e-12 * max(1.0, float(scale.max(initial=0.0))), scale, 1.0)
            std = (rows - mean) / scale
            cov = std.T @ std / max(1, len(rows) - 1)
            level = max(float(np.trace(cov)) / cov.shape[0], 1e-12)
            precision = np.linalg.inv(cov + ridge * level * np.eye(cov.shape[0]))
            elements[int(z)] = _Element(mean, scale, precision)
        return cls(elements, reduce)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted statistics as flat arrays (``z<Z>.mean``, ``.scale``, ``.precision`` per element)."""
        return {f"z{z}.{name}": getattr(e, name) for z, e in self.elements.items()
                for name in ("mean", "scale", "precision")}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], reduce: str = "mean") -> LatentDistance:
        """Rebuild from :meth:`to_arrays`."""
        keys = sorted({k.split(".")[0] for k in arrays})
        try:
            elements = {int(k[1:]): _Element(*(np.asarray(arrays[f"{k}.{n}"], dtype=np.float64)
                                                for n in ("mean", "scale", "precision"))) for k in keys}
        except (KeyError, ValueError) as exc:
            raise AlloopError(f"not a serialised latent distance: {exc}") from None
        return cls(elements, reduce)

    def atom_distances(self, numbers: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Each atom's distance [N] (infinity for an element the fit did not see)."""
        numbers, features = np.asarray(numbers), np.asarray(features, dtype=np.float64)
        out = np.full(len(numbers), np.inf)
        for z, element in self.elements.items():
            rows = numbers == z
            if not rows.any():
                continue
            std = (features[rows] - element.mean) / element.scale
            d2 = np.einsum("ij,jk,ik->i", std, element.precision, std) / std.shape[1]
            out[rows] = np.sqrt(np.maximum(d2, 0.0))
        return out

    def frame_scores(self, numbers: np.ndarray, features: np.ndarray, ptr: np.ndarray) -> np.ndarray:
        """Each frame's score [M]: the mean or maximum of its atoms' distances (``ptr``: frame offsets [M + 1])."""
        atoms = self.atom_distances(numbers, features)
        ptr = np.asarray(ptr, dtype=np.int64)
        if ptr.ndim != 1 or ptr[0] != 0 or ptr[-1] != len(atoms) or np.any(np.diff(ptr) < 1):
            raise AlloopError(f"ptr must be increasing frame offsets from 0 to {len(atoms)}")
        reduce = np.maximum if self.reduce == "max" else np.add
        scores = reduce.reduceat(atoms, ptr[:-1])
        return scores if self.reduce == "max" else scores / np.diff(ptr)
