"""``alloop status --check``: every committed part of a store read back against its commit record.

Each column is read chunk by chunk up to its committed length: its array must
be at least that long, every chunk must be there and decode, and the rows'
CRC-32 must equal the record's (when the record has one: stores written before
checksums only get the first checks). Checkpoints and blobs are read whole and
compared with their recorded size and SHA-256. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import zarr

from alloop.store.blobs import read_blob
from alloop.store.columns import Column, Table
from alloop.store.integrity import DamagedPart, crc_rows, open_node, read_rows, store_root


@dataclass(frozen=True)
class PartCheck:
    """The verdict on one committed part: its store path, size, what was compared, and the problem (None: ok)."""

    part: str
    size: int
    unit: str  # "rows" or "bytes"
    compared: str  # "crc32", "sha256", or "decoded" (no checksum recorded)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify_column(column: Column) -> None:
    """Read a column's committed rows chunk by chunk; DamagedPart if the array is shorter than the commit
    record says, a chunk is missing or cannot be decoded, or the rows' CRC-32 differs from the recorded one."""
    array, committed, expected = column.array, column.committed, column.committed_crc
    if array.shape[0] < committed:
        problem = f"holds {array.shape[0]} rows, the commit record says {committed}"
        raise DamagedPart(store_root(array), column.part, problem)
    crc, step = 0, array.chunks[0]
    for lo in range(0, committed, step):
        rows = read_rows(array, lo, min(lo + step, committed))
        crc = crc_rows(rows, crc) if expected is not None else crc
    if expected is not None and crc != expected:
        problem = f"the CRC-32 of its {committed} rows is {crc:08x}, the commit record says {expected:08x}"
        raise DamagedPart(store_root(array), column.part, problem)


def check_parts(tables: Iterable[Table], root: zarr.Group, record: dict[str, Any]) -> list[PartCheck]:
    """One PartCheck per committed column of ``tables`` and per checkpoint and blob of ``record``."""
    checks = [_check_column(c) for t in tables if t.known for c in t.columns.values()]
    for entry in record.get("checkpoints", []):
        checks.append(_check_blob(root, f"checkpoints/v{entry['version']}", entry, f"checkpoint v{entry['version']}"))
    for name, entry in record.get("blobs", {}).items():
        checks.append(_check_blob(root, f"blobs/{name}/v{entry['version']}", entry, f"blob '{name}'"))
    return checks


def _check_column(column: Column) -> PartCheck:
    compared = "decoded" if column.committed_crc is None else "crc32"
    return _verdict(column.part, column.committed, "rows", compared, lambda: verify_column(column))


def _check_blob(root: zarr.Group, part: str, entry: dict[str, Any], what: str) -> PartCheck:
    group, key = part.rsplit("/", 1)
    return _verdict(part, int(entry["nbytes"]), "bytes", "sha256",
                    lambda: read_blob(open_node(open_node(root, group), key), entry, what))


def _verdict(part: str, size: int, unit: str, compared: str, read: Callable[[], Any]) -> PartCheck:
    try:
        read()
    except DamagedPart as exc:
        return PartCheck(part, size, unit, compared, exc.problem if exc.part == part else f"{exc.part}: {exc.problem}")
    return PartCheck(part, size, unit, compared)


def format_checks(path: str, record: dict[str, Any], checks: list[PartCheck]) -> str:
    """The checks as a report: one line per part, then the count of damaged parts."""
    width = max([len(c.part) for c in checks] + [8])
    lines = [f"checked {path} against commit #{record['seq']} ({record.get('time', '-')})"]
    for c in checks:
        line = f"  {'ok' if c.ok else 'DAMAGED':<7}  {c.part:<{width}}  {c.size:>10} {c.unit:<5}  {c.compared}"
        lines.append(line if c.ok else f"{line}: {c.problem}")
    damaged = sum(not c.ok for c in checks)
    verdict = "all ok" if not damaged else f"{damaged} damaged: restore the store from a backup"
    lines.append(f"{len(checks)} parts, {verdict}")
    return "\n".join(lines)
