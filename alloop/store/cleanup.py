"""Remove what a killed writer left beyond the commit record, so plain-zarr readers see only committed nodes.

Only whole nodes the record does not name are removed (uncommitted label
groups, tables, checkpoint versions, superseded blob versions); rows beyond
the committed length inside known arrays stay and are overwritten by later appends.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def remove_uncommitted_nodes(root: Path, record: dict[str, Any]) -> list[str]:
    """Delete node directories the commit record does not name; returns their paths relative to ``root``."""
    keep_versions = {f"v{e['version']}" for e in record.get("checkpoints", [])}
    blobs = {name: f"v{e['version']}" for name, e in record.get("blobs", {}).items()}
    doomed: list[Path] = []
    if "frames" not in record:
        doomed.append(root / "frames")
    doomed += _unnamed(root / "labels", set(record.get("labels", {})))
    doomed += _unnamed(root / "tables", set(record.get("tables", {})))
    doomed += _unnamed(root / "frame_updates", set(record.get("frame_updates", {})))
    doomed += _unnamed(root / "checkpoints", keep_versions)
    doomed += _unnamed(root / "blobs", set(blobs))
    for name, version in blobs.items():
        doomed += _unnamed(root / "blobs" / name, {version})
    removed = []
    for path in doomed:
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(str(path.relative_to(root)))
    return removed


def _unnamed(group: Path, names: set[str]) -> list[Path]:
    if not group.is_dir():
        return []
    return [p for p in group.iterdir() if p.is_dir() and p.name not in names]
