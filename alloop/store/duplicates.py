"""Find frames equal to known ones: same atomic numbers in the same order, same pbc, cell and every atom
within ``POSITION_TOL_A`` (Angstrom) of its position.

A frame is filed under its numbers and a bucket of one scalar projection of its positions (fixed random
weights, normalised so that equal frames differ by at most the tolerance in it); a lookup checks the
frames of its own and the two neighbouring buckets exactly. Each lookup costs O(1) on average.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Hashable, Iterator

import numpy as np

from alloop.store.campaign import CampaignStore

#: largest per-atom displacement (Angstrom) between two frames that count as the same
POSITION_TOL_A = 1e-8
#: width of a projection bucket; any width above the tolerance is correct, wider ones only hold more frames
_BUCKET = 1e-6
#: store frames read per chunk when indexing a store
_CHUNK = 100_000


@functools.lru_cache(maxsize=256)
def _weights(n_atoms: int) -> np.ndarray:
    """(n_atoms, 3) fixed weights whose per-atom norms sum to 1: |projection difference| <= max displacement."""
    w = np.random.default_rng(n_atoms).uniform(-1.0, 1.0, (n_atoms, 3))
    return w / np.linalg.norm(w, axis=1).sum()


def composition_key(numbers: np.ndarray, pbc: np.ndarray) -> bytes:
    """What must match exactly: the atomic numbers in order and the periodicity."""
    return np.asarray(numbers, dtype=np.int64).tobytes() + np.asarray(pbc, dtype=bool).tobytes()


class FrameIndex:
    """Frames by reference; :meth:`find` returns the reference of a frame equal to the query, or None."""

    def __init__(self, tol_A: float = POSITION_TOL_A) -> None:
        if not 0 <= tol_A < _BUCKET:
            raise ValueError(f"the tolerance must lie in [0, {_BUCKET}) Angstrom, not {tol_A}")
        self.tol_A = tol_A
        self._buckets: dict[tuple[bytes, int], list[int]] = defaultdict(list)
        self._frames: list[tuple[Hashable, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, ref: Hashable, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> None:
        """File a frame under ``ref``."""
        key = composition_key(numbers, pbc)
        self._buckets[(key, self._bucket(positions))].append(len(self._frames))
        self._frames.append((ref, np.asarray(positions, dtype=np.float64), np.asarray(cell, dtype=np.float64)))

    def find(self, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> Hashable | None:
        """The reference of a filed frame equal to this one (the first filed), or None."""
        key = composition_key(numbers, pbc)
        positions, cell = np.asarray(positions, dtype=np.float64), np.asarray(cell, dtype=np.float64)
        bucket = self._bucket(positions)
        candidates = sorted(k for b in (bucket - 1, bucket, bucket + 1) for k in self._buckets.get((key, b), ()))
        for k in candidates:
            ref, other, other_cell = self._frames[k]
            if self._same(positions, other) and np.abs(cell - other_cell).max(initial=0.0) <= self.tol_A:
                return ref
        return None

    def _same(self, a: np.ndarray, b: np.ndarray) -> bool:
        return bool((np.einsum("ij,ij->i", a - b, a - b) <= self.tol_A**2).all())

    @staticmethod
    def _bucket(positions: np.ndarray) -> int:
        projection = float(np.einsum("ij,ij->", _weights(len(positions)), positions))
        return int(np.floor(projection / _BUCKET))


def index_store_frames(store: CampaignStore, keys: set[bytes], index: FrameIndex) -> int:
    """File the store's frames whose composition key is in ``keys`` under their frame ids; returns how many."""
    filed = 0
    for frame_id, numbers, positions, cell, pbc in _store_frames(store):
        if composition_key(numbers, pbc) in keys:
            index.add(frame_id, numbers, positions, cell, pbc)
            filed += 1
    return filed


def _store_frames(store: CampaignStore) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(frame id, numbers, positions, cell, pbc) of every frame, read in chunks."""
    for start in range(0, store.n_frames, _CHUNK):
        geometry = store.frame_geometry(start, min(start + _CHUNK, store.n_frames))
        bounds = np.concatenate([[0], np.cumsum(geometry["n_atoms"])])
        numbers, positions = geometry["numbers"], geometry["positions"]
        for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            yield start + k, numbers[lo:hi], positions[lo:hi], geometry["cell"][k], geometry["pbc"][k]
