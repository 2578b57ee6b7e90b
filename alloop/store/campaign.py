"""CampaignStore: one crash-safe Zarr v3 store per campaign, with a single writer.

Commit protocol: appended rows are buffered in memory and written into pre-allocated arrays at commit (data
first, fsync'd), then the commit record (the ``commit`` attribute of the root ``zarr.json``) is replaced
atomically. On open the record is the truth: rows, labels, tables and blobs beyond it are ignored and later
overwritten. A commit that fails (a full disk, a kill) leaves the previous record and everything it names intact.
The record also holds a CRC-32 of every column's committed rows (``crc32``), which :meth:`CampaignStore.verify`
checks. See docs/store.md for the layout.

The store's parts are sections, each in its module: frames (:mod:`~alloop.store.frames`), labels
(:mod:`~alloop.store.labels`), generic tables (:mod:`~alloop.store.generic_tables`), checkpoints and blobs
(:mod:`~alloop.store.blobs`); the root ``zarr.json`` and its commit record are :mod:`~alloop.store.record`.
:class:`CampaignStore` opens them, checks that the store is open (and writable), and commits.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from ase import Atoms
from zarr.storage import LocalStore

from alloop.errors import StoreError
from alloop.labeling.result import LabelResult
from alloop.store.blobs import BlobSection, json_normalise
from alloop.store.check import PartCheck, check_parts
from alloop.store.cleanup import remove_uncommitted_nodes
from alloop.store.columns import Table, flush_tables
from alloop.store.durable import (
    PARTIAL_SUFFIX,
    DirectoryLock,
    DurableLocalStore,
    atomic_write_json,
    disk_full_error,
    remove_partials,
)
from alloop.store.frames import FrameSection
from alloop.store.generic_tables import TableSection
from alloop.store.labels import LabelSection, LabelTable
from alloop.store.record import new_record, new_root_meta, read_root_meta
from alloop.store.schema import FrameFlag

if TYPE_CHECKING:
    from alloop.fidelity import Fidelity

#: in-memory rows beyond this many bytes are written out (not committed) before the next add
FLUSH_BYTES = 64 << 20


class CampaignStore:
    """Frames, labels, tables, checkpoints and blobs of one campaign. Use :meth:`create` or :meth:`open`."""

    def __init__(self, path: Path, mode: str, lock: DirectoryLock | None, durable: bool) -> None:
        self.path = path
        self.mode = mode
        self.durable = durable
        self._lock = lock
        self._broken: str | None = None
        self._closed = False
        #: accept labels of a fidelity made by other software versions than the stored ones (recording both)
        self.allow_version_mix = False
        self._root_meta = read_root_meta(path)
        self._record: dict[str, Any] = self._root_meta["attributes"]["commit"]
        store = DurableLocalStore(path) if mode == "a" else LocalStore(path, read_only=True)
        self._zstore = store
        self._root_group: zarr.Group | None = None
        record = self._record
        self._frames = FrameSection(self._root, record)
        self._labels = LabelSection(self._root, record)
        self._blobs = BlobSection(self._root, record)
        self._tables = TableSection(self._root, record)
        for table in self._all_tables():
            table.load_crcs(record.get("crc32", {}))

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | Path, config: dict[str, Any] | None = None, *, exist_ok: bool = False, durable: bool = True
    ) -> CampaignStore:
        """Create a store at ``path`` (a new or empty directory) and open it for writing.

        With ``exist_ok`` an existing store is opened for writing instead (its stored config is kept).
        """
        path = Path(path)
        if (path / "zarr.json").exists():
            read_root_meta(path)  # raises if it is not an alloop store
            if not exist_ok:
                raise StoreError(f"a campaign store already exists at {path}")
            return cls.open(path, "a", durable=durable)
        leftovers = [p for p in path.iterdir() if not p.name.endswith(PARTIAL_SUFFIX)] if path.is_dir() else [path]
        if path.exists() and leftovers:
            raise StoreError(f"{path} exists and is not an empty directory; choose a new path for the store")
        config = json_normalise(config or {}, "the campaign config")
        if not isinstance(config, dict):
            raise StoreError("the campaign config must be a mapping")
        path.mkdir(parents=True, exist_ok=True)
        lock = DirectoryLock(path)
        lock.acquire()
        if (path / "zarr.json").exists():  # another process created it meanwhile
            lock.release()
            return cls.create(path, config, exist_ok=exist_ok, durable=durable)
        try:
            meta = new_root_meta(config, new_record(0, {}, cycle=None, phase="created", note=None))
            atomic_write_json(path / "zarr.json", meta, durable=durable)
            return cls(path, "a", lock, durable)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(cls, path: str | Path, mode: str = "r", *, durable: bool = True) -> CampaignStore:
        """Open an existing store: ``mode='r'`` (no lock; readers may run beside the writer) or ``'a'`` (the writer)."""
        if mode not in ("r", "a"):
            raise StoreError(f"mode must be 'r' or 'a', not {mode!r}")
        path = Path(path)
        read_root_meta(path)
        lock = None
        if mode == "a":
            lock = DirectoryLock(path)
            lock.acquire()
            try:
                remove_partials(path)
                remove_uncommitted_nodes(path, read_root_meta(path)["attributes"]["commit"])
            except BaseException:
                lock.release()
                raise
        try:
            return cls(path, mode, lock, durable)
        except BaseException:
            if lock:
                lock.release()
            raise

    def close(self) -> None:
        """Release the writer lock. Changes since the last commit are discarded (with a warning)."""
        if self._closed:
            return
        if self.mode == "a" and self.has_pending_changes and self._broken is None:
            warnings.warn(f"closing {self.path} with uncommitted changes; they are discarded", stacklevel=2)
        self._closed = True
        if self._lock:
            self._lock.release()

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CampaignStore({str(self.path)!r}, mode={self.mode!r}, seq={self.seq}, frames={self.n_frames})"

    # -- state -------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._root_meta["attributes"]["config"]))

    def set_config(self, config: dict[str, Any]) -> None:
        """Replace the stored campaign config (made durable by the next commit)."""
        self._check_writable()
        config = json_normalise(config, "the campaign config")
        if not isinstance(config, dict):
            raise StoreError("the campaign config must be a mapping")
        self._root_meta = {**self._root_meta, "attributes": {**self._root_meta["attributes"], "config": config}}

    @property
    def record(self) -> dict[str, Any]:
        """The last commit record (a copy)."""
        return json.loads(json.dumps(self._record))

    @property
    def seq(self) -> int:
        return int(self._record["seq"])

    @property
    def n_frames(self) -> int:
        """Frames committed plus frames added since the last commit."""
        return self._frames.n_frames

    @property
    def committed_frames(self) -> int:
        return int(self._record.get("frames", {}).get("rows", 0))

    @property
    def has_pending_changes(self) -> bool:
        return self._blobs.pending or any(t.pending_rows for t in self._all_tables())

    # -- frames ------------------------------------------------------------------------
    def add_frames(self, structures: Sequence[Atoms], **meta: Any) -> np.ndarray:
        """Add frames (any sizes); ``meta``: origin, replica, md_step, cycle, model_version, q_score, t2_score, flags
        (a scalar or one value per frame). Returns the new frame ids."""
        self._check_writable()
        ids = self._frames.add(list(structures), meta)
        self._maybe_flush()
        return ids

    def get_frames(self, ids: Sequence[int] | np.ndarray | None = None) -> list[Atoms]:
        """Frames as ASE Atoms (metadata in ``atoms.info``), in the order of ``ids`` (default: all)."""
        self._check_open()
        ids = np.arange(self.n_frames) if ids is None else self._frames.check_ids(ids)
        return self._frames.get(ids)

    def frame_arrays(self, ids: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """Frames ``ids`` as arrays: n_atoms per frame; numbers, positions per atom (concatenated in ``ids`` order).
        A chunked read, far cheaper than :meth:`get_frames` for thousands of frames."""
        self._check_open()
        return self._frames.arrays(self._frames.check_ids(ids))

    def frame_geometry(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Frames ``start:stop`` as arrays: n_atoms, cell, pbc per frame; numbers, positions per atom (concatenated)."""
        self._check_open()
        return self._frames.geometry(start, self.n_frames if stop is None else min(stop, self.n_frames))

    def frame_numbers(self) -> dict[str, np.ndarray]:
        """Every frame's atom count and the atomic numbers of all atoms (concatenated): no positions read."""
        self._check_open()
        _, counts = self._frames.index()
        return {"n_atoms": counts.copy(), "numbers": self._frames.atoms.read("numbers", 0, self._frames.atoms.rows)}

    def frame_meta(self, ids: Sequence[int] | np.ndarray | None = None,
                   columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Per-frame arrays: frame_id, offset, n_atoms, origin (code), replica, md_step, cycle, model_version,
        q_score, t2_score, flags, with updates applied (``columns``: only these, and frame_id)."""
        self._check_open()
        return self._frames.meta(None if ids is None else self._frames.check_ids(ids), columns)

    def update_frame_meta(self, ids: Sequence[int] | np.ndarray, **values: Any) -> None:
        """Change updatable metadata of existing frames (kept as an append-only log; last value wins)."""
        self._check_writable()
        self._frames.update(ids, values)

    def set_flags(self, ids: Sequence[int] | np.ndarray, flags: int | FrameFlag) -> None:
        """OR ``flags`` into the flags of frames ``ids``."""
        self._check_writable()
        ids = self._frames.check_ids(ids)
        current = self._frames.meta(ids, ["flags"])["flags"]
        self.update_frame_meta(ids, flags=current | np.uint32(int(flags)))

    # -- labels ------------------------------------------------------------------------
    def add_labels(
        self, fidelity: Fidelity, frame_ids: Sequence[int] | np.ndarray, results: Sequence[LabelResult]
    ) -> np.ndarray:
        """Add labels keyed by (frame id, fidelity hash); returns the mask of rows added (False: already labelled)."""
        self._check_writable()
        ids = self._frames.check_ids(frame_ids)
        mask = self._labels.add(fidelity, ids, list(results), lambda i: self._frames.index()[1][i], self.n_frames,
                                allow_mix=self.allow_version_mix)
        self._maybe_flush()
        return mask

    def label_columns(self, fidelity: str | Fidelity, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """Some per-label columns of a fidelity (a Fidelity, its hash, or a stored fidelity's unique name), e.g.
        ``["status", "cpu_seconds"]``: what :meth:`labels` holds, without reading the rest (the forces)."""
        self._check_open()
        return self._labels.columns(fidelity, list(columns))

    def label_provenance(self, fidelity_hash: str) -> dict[str, str]:
        """Software that computed the labels of a fidelity (alloop.labeling.provenance); {}: unknown or none."""
        labels = self._labels.by_hash.get(fidelity_hash)
        return dict(labels.provenance) if labels else {}

    def has_label(self, frame_id: int, fidelity_hash: str) -> bool:
        self._check_open()
        return self._labels.has(int(frame_id), fidelity_hash, self.n_frames)

    def labels(self, fidelity: str | Fidelity) -> LabelTable:
        """All labels of a fidelity (a Fidelity, its hash, or a stored fidelity's unique name)."""
        self._check_open()
        return self._labels.table(fidelity)

    def fidelity_hash(self, name_or_hash: str) -> str:
        """The hash of a stored fidelity given its hash or its (unique) name."""
        return self._labels.resolve(name_or_hash)

    def fidelities(self) -> dict[str, dict[str, Any]]:
        """hash -> {"name", "spec"} of every fidelity with labels."""
        return {h: {"name": f.name, "spec": f.spec()} for h, f in self._labels.by_hash.items()}

    # -- tables ------------------------------------------------------------------------
    def append_rows(self, table: str, /, **columns: Any) -> None:
        """Append rows to table ``table`` (one array per column; columns and dtypes fixed by the first append)."""
        self._check_writable()
        self._tables.append(table, columns)
        self._maybe_flush()

    def table(self, name: str) -> dict[str, np.ndarray]:
        self._check_open()
        return self._tables.read(name)

    def table_names(self) -> list[str]:
        return self._tables.names()

    # -- checkpoints and blobs ----------------------------------------------------------
    def add_checkpoint(self, blob: bytes, metadata: dict[str, Any] | None = None, role: str = "model") -> int:
        """Store a model checkpoint (opaque bytes plus JSON metadata); returns its version (0, 1, 2, ...)."""
        self._check_writable()
        return self._blobs.add_checkpoint(blob, metadata or {}, role)

    def checkpoint(self, version: int = -1, role: str | None = None) -> tuple[bytes, dict[str, Any]]:
        """(bytes, metadata) of checkpoint ``version`` (negative: counted from the newest, of ``role`` if given)."""
        self._check_open()
        return self._blobs.checkpoint(version, role)

    def checkpoints(self) -> list[dict[str, Any]]:
        """version, role, nbytes, sha256 of every checkpoint."""
        return [dict(e) for e in self._blobs.checkpoint_entries]

    def put_blob(self, name: str, blob: bytes) -> None:
        """Store bytes under ``name`` (e.g. an MD replica state); replaces the previous value at commit."""
        self._check_writable()
        self._blobs.put(name, blob)

    def get_blob(self, name: str) -> bytes | None:
        self._check_open()
        return self._blobs.get(name)

    def blob_names(self) -> list[str]:
        return sorted(self._blobs.blob_entries)

    # -- commit ------------------------------------------------------------------------
    def commit(self, *, cycle: int | None = None, phase: str | None = None, note: dict[str, Any] | None = None) -> int:
        """Make everything added so far durable and visible; returns the new sequence number.

        ``cycle``/``phase`` default to the previous commit's values."""
        self._check_writable()
        try:
            flush_tables(self._all_tables())
            if self.durable:
                assert isinstance(self._zstore, DurableLocalStore)  # a writable store (mode "a")
                self._zstore.sync_written()
            counts: dict[str, Any] = {**self._frames.record_part(), **self._labels.record_part(),
                                      **self._blobs.record_part(), **self._tables.record_part()}
            counts["crc32"] = {part: crc for t in self._all_tables() for part, crc in t.crcs().items()}
            record = new_record(
                self.seq + 1,
                counts,
                cycle=self._record.get("cycle") if cycle is None else int(cycle),
                phase=self._record.get("phase") if phase is None else str(phase),
                note=None if note is None else json_normalise(note, "the commit note"),
            )
            meta = dict(self._root_meta)
            meta["attributes"] = {**meta["attributes"], "commit": record}
            atomic_write_json(self.path / "zarr.json", meta, durable=self.durable)
        except BaseException as exc:
            self._broken = f"{type(exc).__name__}: {exc}"
            full = disk_full_error(exc, self.path, self.seq)
            if full:
                raise full from exc
            raise
        self._root_meta, self._record = meta, record
        for table in self._all_tables():
            table.mark_committed()
        self._blobs.mark_committed()
        return record["seq"]

    # -- integrity ---------------------------------------------------------------------
    def verify(self) -> list[PartCheck]:
        """Read every committed column and blob back against the commit record (length, chunks, CRC-32,
        SHA-256); one :class:`PartCheck` per part, damaged ones with their problem. Writes nothing."""
        self._check_open()
        return check_parts(self._all_tables(), self._root(), self._record)

    # -- internals -----------------------------------------------------------------------
    def _root(self) -> zarr.Group:
        if self._root_group is None:
            self._root_group = zarr.open_group(store=self._zstore, mode="r" if self.mode == "r" else "r+")
        return self._root_group

    def _all_tables(self) -> list[Table]:
        return [*self._frames.tables(), *self._labels.tables(), *self._tables.tables()]

    def _maybe_flush(self) -> None:
        if sum(t.pending_nbytes for t in self._all_tables()) > FLUSH_BYTES:
            try:
                flush_tables(self._all_tables())
            except OSError as exc:
                full = disk_full_error(exc, self.path, self.seq)
                if not full:
                    raise
                self._broken = f"{type(exc).__name__}: {exc}"
                raise full from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.mode != "a":
            raise StoreError(f"the store {self.path} is open read-only; open it with mode='a' to write")
        if self._broken:
            raise StoreError(f"a commit to {self.path} failed ({self._broken}); reopen the store")

