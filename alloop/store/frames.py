"""Frames of different sizes (CSR) with their per-frame metadata and its append-only update log."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import zarr
from ase import Atoms

from alloop.errors import StoreError
from alloop.store.column_spec import ColumnSpec, coerce
from alloop.store.columns import GrowableArray, Table, lazy_group
from alloop.store.schema import (
    ATOM_SPECS,
    FRAME_SPECS,
    META_DEFAULTS,
    ORIGIN_NAMES,
    UPDATABLE_META,
    origin_codes,
)

_FRAME_SPEC = {s.name: s for s in FRAME_SPECS}
MAX_Z = 118


class FrameSection:
    """``frames/``: per-frame columns, per-atom ``numbers``/``positions``; ``frame_updates/<column>``: later changes."""

    def __init__(self, root: Callable[[], zarr.Group], record: dict[str, Any]) -> None:
        self._root = root
        counts = record.get("frames")
        group = lazy_group(root, "frames", counts is not None)
        self.frames = Table("frames", group, FRAME_SPECS, counts["rows"] if counts else None)
        self.atoms = Table("frames.atoms", group, ATOM_SPECS, counts["atoms"] if counts else None)
        self.updates = {
            col: self._update_table(col, rows) for col, rows in record.get("frame_updates", {}).items()
        }
        self._index: tuple[GrowableArray, GrowableArray] | None = None

    def _update_table(self, column: str, committed: int | None) -> Table:
        specs = [ColumnSpec("frame_id", np.dtype(np.int64)), ColumnSpec("value", _FRAME_SPEC[column].dtype)]
        group = lazy_group(self._root, f"frame_updates/{column}", committed is not None)
        return Table(f"frame_updates/{column}", group, specs, committed)

    # -- counts and record -------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return self.frames.rows

    def tables(self) -> list[Table]:
        return [self.frames, self.atoms, *self.updates.values()]

    def record_part(self) -> dict[str, Any]:
        part: dict[str, Any] = {}
        if self.frames.columns:
            rows, atoms = self.frames.columns["offset"].flushed, self.atoms.columns["numbers"].flushed
            part["frames"] = {"rows": rows, "atoms": atoms}
        updates = {col: t.columns["frame_id"].flushed for col, t in self.updates.items() if t.columns}
        if updates:
            part["frame_updates"] = updates
        return part

    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame atom offsets and counts (committed and pending), kept in memory."""
        if self._index is None:
            self._index = (
                GrowableArray(self.frames.read("offset")),
                GrowableArray(self.frames.read("n_atoms").astype(np.int64)),
            )
        return self._index[0].values, self._index[1].values

    def check_ids(self, ids: Any) -> np.ndarray:
        arr = np.asarray(ids)
        if arr.size and arr.dtype.kind not in "iu":
            raise StoreError(f"frame ids must be integers, got {arr.dtype}")
        arr = arr.astype(np.int64).ravel()
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_frames):
            bad = arr[(arr < 0) | (arr >= self.n_frames)][0]
            raise StoreError(f"frame id {bad} does not exist (the store holds {self.n_frames} frames)")
        return arr

    # -- writing -----------------------------------------------------------------------
    def add(self, structures: Sequence[Atoms], meta: dict[str, Any]) -> np.ndarray:
        n = len(structures)
        unknown = sorted(set(meta) - set(META_DEFAULTS))
        if unknown:
            raise StoreError(f"unknown frame metadata {unknown} (known: {', '.join(META_DEFAULTS)})")
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        n_atoms = np.array([len(a) for a in structures], dtype=np.int64)
        if (n_atoms == 0).any():
            raise StoreError(f"frame {int(np.argmin(n_atoms))} of the batch has no atoms")
        numbers = np.concatenate([a.numbers for a in structures])
        positions = np.concatenate([a.positions for a in structures]).astype(np.float64)
        if numbers.min() < 1 or numbers.max() > MAX_Z:
            raise StoreError(f"atomic numbers must lie in 1..{MAX_Z}, got {numbers.min()}..{numbers.max()}")
        if not np.isfinite(positions).all():
            raise StoreError("positions must be finite")
        columns: dict[str, Any] = {
            "offset": self.atoms.rows + np.concatenate([[0], np.cumsum(n_atoms)[:-1]]),
            "n_atoms": n_atoms,
            "cell": np.array([a.cell.array for a in structures], dtype=np.float64),
            "pbc": np.array([a.pbc for a in structures], dtype=bool),
        }
        for key, default in META_DEFAULTS.items():
            value = meta.get(key, default)
            if key == "origin":
                columns[key] = origin_codes(value, n)
            else:
                columns[key] = _per_frame(_FRAME_SPEC[key], value, n)
        self.index()  # load the committed index before the new rows become visible
        assert self._index is not None  # loaded by index()
        start, _ = self.frames.append(columns)
        self.atoms.append({"numbers": numbers, "positions": positions})
        self._index[0].extend(columns["offset"])
        self._index[1].extend(n_atoms)
        return np.arange(start, start + n, dtype=np.int64)

    def update(self, ids: Any, values: dict[str, Any]) -> None:
        """Record new values of updatable metadata; read back by :meth:`meta`."""
        bad = sorted(set(values) - set(UPDATABLE_META))
        if bad:
            raise StoreError(f"metadata {bad} cannot be updated (updatable: {', '.join(UPDATABLE_META)})")
        ids = self.check_ids(ids)
        for column, value in values.items():
            coerced = _per_frame(_FRAME_SPEC[column], value, len(ids))
            if column not in self.updates:
                self.updates[column] = self._update_table(column, None)
            self.updates[column].append({"frame_id": ids, "value": coerced})

    # -- reading -----------------------------------------------------------------------
    def meta(self, ids: np.ndarray | None = None, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Per-frame metadata (all columns or ``names``) with later updates applied (last update wins)."""
        names = ["offset", "n_atoms", *META_DEFAULTS] if names is None else list(names)
        unknown = sorted(set(names) - {"offset", "n_atoms", *META_DEFAULTS})
        if unknown:
            raise StoreError(f"unknown frame metadata {unknown} (known: offset, n_atoms, {', '.join(META_DEFAULTS)})")
        if ids is None:
            out = {name: self.frames.read(name) for name in names}
            ids = np.arange(self.n_frames, dtype=np.int64)
        else:
            out = {name: self.frames.take(name, ids) for name in names}
        for column, table in self.updates.items():
            if column not in out:
                continue
            fid, value = table.read("frame_id"), table.read("value")
            if not len(fid):
                continue
            last, first = np.unique(fid[::-1], return_index=True)
            latest = value[::-1][first]
            pos = np.clip(np.searchsorted(last, ids), 0, len(last) - 1)
            hit = last[pos] == ids
            out[column] = out[column].copy()
            out[column][hit] = latest[pos[hit]]
        out["frame_id"] = ids
        return out

    def geometry(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """numbers and positions (per atom) and n_atoms, cell, pbc (per frame) of frames ``start:stop``."""
        offsets, counts = self.index()
        lo = int(offsets[start]) if start < stop else 0
        hi = int(offsets[stop - 1] + counts[stop - 1]) if start < stop else 0
        return {
            "n_atoms": counts[start:stop].copy(),
            "cell": self.frames.read("cell", start, stop),
            "pbc": self.frames.read("pbc", start, stop),
            "numbers": self.atoms.read("numbers", lo, hi),
            "positions": self.atoms.read("positions", lo, hi),
        }

    def _atom_index(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The atom rows of frames ``ids`` (concatenated in their order) and each frame's atom count."""
        offsets, counts = self.index()
        start, n = offsets[ids], counts[ids]
        return np.repeat(start - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(int(n.sum())), n

    def arrays(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """n_atoms per frame, numbers and positions per atom (concatenated in the order of ``ids``): no Atoms built."""
        atom_index, n = self._atom_index(ids)
        return {"n_atoms": n.copy(), "numbers": self.atoms.take("numbers", atom_index).astype(int),
                "positions": self.atoms.take("positions", atom_index)}

    def get(self, ids: np.ndarray) -> list[Atoms]:
        atom_index, n = self._atom_index(ids)
        numbers = self.atoms.take("numbers", atom_index)
        positions = self.atoms.take("positions", atom_index)
        cell, pbc = self.frames.take("cell", ids), self.frames.take("pbc", ids)
        meta = self.meta(ids)
        out = []
        bounds = np.concatenate([[0], np.cumsum(n)])
        for k, frame_id in enumerate(ids):
            lo, hi = bounds[k], bounds[k + 1]
            atoms = Atoms(numbers=numbers[lo:hi].astype(int), positions=positions[lo:hi], cell=cell[k], pbc=pbc[k])
            atoms.info["frame_id"] = int(frame_id)
            atoms.info["origin"] = ORIGIN_NAMES.get(int(meta["origin"][k]), "unknown")
            for key in META_DEFAULTS:
                if key != "origin":
                    atoms.info[key] = meta[key][k].item()
            out.append(atoms)
        return out


def _per_frame(spec: ColumnSpec, value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    try:
        return coerce(spec, arr, n)
    except StoreError as exc:
        raise StoreError(f"frame metadata {exc}") from None
