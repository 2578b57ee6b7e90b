"""The store's root ``zarr.json``: its format tag, the campaign config and the commit record.

The commit record (attribute ``commit``) is the truth of the store: its sequence
number, time, cycle, phase and note, and the committed length of every part
(frames, labels, tables, checkpoints, blobs) with their CRC-32s. Rows, labels,
tables and blobs beyond it are ignored. :class:`~alloop.store.campaign.CampaignStore`
replaces the whole file atomically at each commit. See docs/store.md.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alloop.errors import StoreError
from alloop.store.schema import FORMAT, FORMAT_VERSION


def read_root_meta(path: Path) -> dict[str, Any]:
    """The root ``zarr.json`` of the store at ``path``; StoreError if it is not an alloop store of this format."""
    meta_path = path / "zarr.json"
    if not path.is_dir():
        raise StoreError(f"no campaign store at {path} (not a directory)")
    if not meta_path.is_file():
        raise StoreError(f"{path} is not a campaign store (no zarr.json)")
    try:
        meta = json.loads(meta_path.read_bytes())
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError: truncated or overwritten
        raise StoreError(
            f"the commit record {meta_path} is damaged (truncated or not JSON: {exc}); the store cannot be"
            " opened without it: restore the store from a backup"
        ) from None
    try:
        attrs = meta["attributes"]
        fmt, record = attrs["alloop_format"], attrs["commit"]
    except (KeyError, TypeError):
        raise StoreError(f"{path} is a Zarr group but not an alloop campaign store") from None
    if fmt != f"{FORMAT}/{FORMAT_VERSION}":
        raise StoreError(f"{path}: unsupported store format {fmt!r} (this alloop reads {FORMAT}/{FORMAT_VERSION})")
    if not isinstance(record, dict) or "seq" not in record:
        raise StoreError(f"{path}: the commit record is malformed")
    return meta


def new_root_meta(config: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The root ``zarr.json`` of a new store: a Zarr v3 group holding the format tag, ``config`` and ``record``."""
    return {
        "zarr_format": 3,
        "node_type": "group",
        "consolidated_metadata": None,
        "attributes": {"alloop_format": f"{FORMAT}/{FORMAT_VERSION}", "config": config, "commit": record},
    }


def new_record(seq: int, counts: dict[str, Any], *, cycle: int | None, phase: str | None, note: Any) -> dict[str, Any]:
    """Commit record ``seq``, stamped now, naming the committed lengths ``counts`` of every part."""
    now = time.time()
    return {
        "seq": seq,
        "time": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
        "time_unix": now,
        "cycle": cycle,
        "phase": phase,
        "note": note,
        **counts,
    }
