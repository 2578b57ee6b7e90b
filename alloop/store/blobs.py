"""Opaque byte blobs: model checkpoints (numbered versions) and named states (e.g. MD replicas).

Each blob is a uint8 zarr array written when it is added; it counts only once
a commit record names it (with its size and SHA-256, checked on every read).
Checkpoints are kept forever; a named blob keeps only its committed version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import zarr

from alloop.errors import StoreError
from alloop.store.integrity import EVERY_CHUNK_ATTR, DamagedPart, open_node, read_rows, store_root

BLOB_CHUNK = 4 << 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def json_normalise(value: Any, what: str) -> Any:
    """``value`` after a JSON round trip (numpy scalars and arrays become numbers and lists)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")

    try:
        return json.loads(json.dumps(value, default=default))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} must be JSON-serialisable: {exc}") from None


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise StoreError(f"{what} name {name!r} must match {_NAME.pattern}")
    return name


def _write(group: zarr.Group, key: str, blob: bytes, attrs: dict[str, Any]) -> dict[str, Any]:
    data = np.frombuffer(memoryview(blob), dtype=np.uint8)
    entry: dict[str, Any] = {"nbytes": int(data.size), "sha256": hashlib.sha256(blob).hexdigest()}
    array = group.create_array(
        key,
        shape=(data.size,),
        chunks=(max(1, min(BLOB_CHUNK, data.size)),),
        dtype=np.uint8,
        fill_value=0,
        compressors=None,
        attributes={**attrs, **entry, EVERY_CHUNK_ATTR: True},
        config={"write_empty_chunks": True},
        overwrite=True,
    )
    if data.size:
        array[:] = data
    return entry


def read_blob(array: zarr.Array, entry: dict[str, Any], what: str) -> bytes:
    """The bytes of a committed blob array; DamagedPart if they are not those the commit record describes."""
    n = int(entry["nbytes"])
    blob = read_rows(array, 0, min(n, array.shape[0])).tobytes() if n and array.shape[0] else b""
    if len(blob) != n or hashlib.sha256(blob).hexdigest() != entry["sha256"]:
        problem = f"{what} is corrupt (size or SHA-256 differs from the commit record)"
        raise DamagedPart(store_root(array), array.path, problem)
    return blob


class BlobSection:
    """``checkpoints/v<version>`` and ``blobs/<name>/v<version>``."""

    def __init__(self, root: Callable[[], zarr.Group], record: dict[str, Any]) -> None:
        self._root = root
        self.checkpoint_entries: list[dict[str, Any]] = [dict(e) for e in record.get("checkpoints", [])]
        self.n_committed_checkpoints = len(self.checkpoint_entries)
        self.blob_entries: dict[str, dict[str, Any]] = {k: dict(v) for k, v in record.get("blobs", {}).items()}
        self._committed_blobs = {k: dict(v) for k, v in self.blob_entries.items()}
        self._pending_blobs: set[str] = set()

    @property
    def pending(self) -> bool:
        return len(self.checkpoint_entries) > self.n_committed_checkpoints or bool(self._pending_blobs)

    def _group(self, path: str) -> zarr.Group:
        return self._root().require_group(path)

    # -- checkpoints -----------------------------------------------------------------
    def add_checkpoint(self, blob: bytes, metadata: dict[str, Any], role: str) -> int:
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise StoreError(f"a checkpoint is bytes, not {type(blob).__name__}")
        check_name(role, "checkpoint role")
        metadata = json_normalise(metadata or {}, "checkpoint metadata")
        version = len(self.checkpoint_entries)
        entry = _write(self._group("checkpoints"), f"v{version}", bytes(blob), {"role": role, "metadata": metadata})
        self.checkpoint_entries.append({"version": version, "role": role, **entry})
        return version

    def checkpoint(self, version: int = -1, role: str | None = None) -> tuple[bytes, dict[str, Any]]:
        entries = [e for e in self.checkpoint_entries if role is None or e["role"] == role]
        if not entries:
            raise StoreError("the store holds no checkpoint" + (f" with role '{role}'" if role else ""))
        if version < 0:
            if -version > len(entries):
                raise StoreError(f"only {len(entries)} checkpoints")
            entry = entries[version]
        else:
            found = [e for e in entries if e["version"] == version]
            if not found:
                raise StoreError(f"no checkpoint version {version} (versions 0..{len(self.checkpoint_entries) - 1})")
            entry = found[0]
        array = open_node(open_node(self._root(), "checkpoints"), f"v{entry['version']}")
        blob = read_blob(array, entry, f"checkpoint v{entry['version']}")
        return blob, dict(array.attrs["metadata"])

    # -- named blobs -----------------------------------------------------------------
    def put(self, name: str, blob: bytes) -> None:
        check_name(name, "blob")
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise StoreError(f"blob '{name}' must be bytes, not {type(blob).__name__}")
        committed = self._committed_blobs.get(name)
        version = committed["version"] + 1 if committed else 0
        entry = _write(self._group(f"blobs/{name}"), f"v{version}", bytes(blob), {"name": name})
        self.blob_entries[name] = {"version": version, **entry}
        self._pending_blobs.add(name)

    def get(self, name: str) -> bytes | None:
        entry = self.blob_entries.get(name)
        if entry is None:
            return None
        array = open_node(open_node(self._root(), f"blobs/{name}"), f"v{entry['version']}")
        return read_blob(array, entry, f"blob '{name}'")

    # -- commit ------------------------------------------------------------------------
    def record_part(self) -> dict[str, Any]:
        return {"checkpoints": self.checkpoint_entries, "blobs": self.blob_entries}

    def mark_committed(self) -> None:
        """Drop the superseded versions of the blobs this commit replaced."""
        self.n_committed_checkpoints = len(self.checkpoint_entries)
        for name in self._pending_blobs:
            group = self._root()[f"blobs/{name}"]
            assert isinstance(group, zarr.Group)  # blobs/<name> holds the versions' arrays
            current = f"v{self.blob_entries[name]['version']}"
            for key in list(group.array_keys()):
                if key != current:
                    del group[key]
        self._committed_blobs = {k: dict(v) for k, v in self.blob_entries.items()}
        self._pending_blobs.clear()
