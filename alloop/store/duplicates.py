"""Find frames equal to known ones: same atomic numbers in the same order, same pbc, cell and every atom
within ``POSITION_TOL_A`` (Angstrom) of its position.

A frame is filed under its numbers and a bucket of one scalar projection of its positions (fixed random
weights, normalised so that equal frames differ by at most the tolerance in it); a lookup checks the
frames of its own and the two neighbouring buckets exactly. Each lookup costs O(1) on average.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Hashable, Sequence

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


def index_store_frames(store: CampaignStore, keys: set[bytes], index: FrameIndex,
                       queries: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> int:
    """File the store's frames whose composition key is in ``keys`` under their frame ids; returns how many.

    With ``queries`` (the numbers and positions of the frames that will be looked up) only the store frames that
    could equal one of them are filed: those in a projection bucket next to a query's of the same atom count,
    found with one vectorised pass per chunk of the store (no Python work per stored frame)."""
    wanted = None if queries is None else _query_buckets(queries)
    filed = 0
    for start in range(0, store.n_frames, _CHUNK):
        geometry = store.frame_geometry(start, min(start + _CHUNK, store.n_frames))
        bounds = np.concatenate([[0], np.cumsum(geometry["n_atoms"])])
        numbers, positions = geometry["numbers"], geometry["positions"]
        rows = range(len(geometry["n_atoms"])) if wanted is None else _candidates(geometry, bounds, wanted)
        for k in rows:
            lo, hi = bounds[k], bounds[k + 1]
            if composition_key(numbers[lo:hi], geometry["pbc"][k]) in keys:
                index.add(start + k, numbers[lo:hi], positions[lo:hi], geometry["cell"][k], geometry["pbc"][k])
                filed += 1
    return filed


def _query_buckets(queries: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[int, np.ndarray]:
    """atom count -> the projection buckets a stored frame of that size may be in to equal a query: each query's
    bucket and its two neighbours (as :meth:`FrameIndex.find` looks), and one more each side (the vectorised
    projection may round to the next bucket where the filed one does not)."""
    out: dict[int, set[int]] = defaultdict(set)
    for _, positions in queries:
        b = FrameIndex._bucket(np.asarray(positions, dtype=np.float64))
        out[len(positions)].update(range(b - 2, b + 3))
    return {n: np.array(sorted(b), dtype=np.int64) for n, b in out.items()}


def _candidates(geometry: dict[str, np.ndarray], bounds: np.ndarray, wanted: dict[int, np.ndarray]) -> list[int]:
    """The frames of a chunk (indices into it, ascending) whose bucket is one of ``wanted`` for their size."""
    sizes = geometry["n_atoms"]
    found = []
    for n, buckets in wanted.items():
        mine = np.flatnonzero(sizes == n)
        if not mine.size:
            continue
        atoms = bounds[mine][:, None] + np.arange(n)
        projection = np.einsum("fij,ij->f", geometry["positions"][atoms], _weights(n))
        found.append(mine[np.isin(np.floor(projection / _BUCKET).astype(np.int64), buckets)])
    return sorted(int(k) for k in np.concatenate(found)) if found else []
