"""Damage to a store's files (truncated, not JSON, missing) as one-line StoreErrors naming the part.

The commit protocol protects a store against kills and full disks; it cannot
protect files that something else truncates or deletes afterwards. Every read
of a committed part goes through the helpers here, so a damaged part ends in a
:class:`DamagedPart` naming it instead of a decoder's traceback or, for a
missing chunk, silent fill values. Arrays created with :data:`EVERY_CHUNK_ATTR`
have every chunk on disk (also chunks of fill values), so a missing chunk file
is damage; older arrays skip chunks of fill values and cannot be checked for
missing chunks. Columns also carry a CRC-32 of their committed rows in the
commit record (``crc32``; absent in older stores), which ``alloop status
--check`` compares.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.storage import LocalStore

from alloop.errors import StoreError

#: array attribute of arrays written with ``write_empty_chunks``: a missing chunk file is damage
EVERY_CHUNK_ATTR = "alloop_every_chunk_written"


class DamagedPart(StoreError):
    """A part of the store (array, group, blob) that cannot be read as its commit record says."""

    def __init__(self, store: Path, part: str, problem: str) -> None:
        self.store, self.part, self.problem = Path(store), part, problem
        super().__init__(
            f"the store {store} is damaged: {part}: {problem}; `alloop status --check {store}` lists every"
            " damaged part; restore the store from a backup (alloop cannot rebuild lost data)"
        )


def store_root(node: zarr.Group | zarr.Array) -> Path:
    """The directory of the (local) store holding ``node``."""
    store = node.store_path.store
    assert isinstance(store, LocalStore)  # alloop's stores are local directories
    return Path(store.root)


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def open_node(parent: zarr.Group, name: str) -> Any:
    """``parent[name]`` for a node the commit record names: DamagedPart if its zarr.json is missing or unreadable."""
    try:
        return parent[name]
    except KeyError:
        part, root = join(parent.path, name), store_root(parent)
        problem = "its zarr.json cannot be read" if (root / part / "zarr.json").is_file() else "missing (no zarr.json)"
        raise DamagedPart(root, part, problem) from None
    except (ValueError, TypeError) as exc:  # truncated or invalid JSON, metadata zarr cannot parse
        part = join(parent.path, name)
        raise DamagedPart(store_root(parent), part, f"its zarr.json cannot be read ({_describe(exc)})") from None


@contextmanager
def reading_chunks(array: zarr.Array, first: int, last: int) -> Iterator[None]:
    """Turn a decoder's error while reading chunks ``first..last`` (along rows) into DamagedPart."""
    try:
        yield
    except (ValueError, RuntimeError) as exc:  # blosc/zstd on truncated data; a wrong-sized raw chunk
        which = chunk_key(array, first)
        if last != first:
            which = f"one of {which}..{chunk_key(array, last)}"
        problem = f"chunk {which} cannot be decoded ({_describe(exc)})"
        raise DamagedPart(store_root(array), array.path, problem) from None


def check_chunks_present(array: zarr.Array, chunks: Iterable[int]) -> None:
    """DamagedPart if a chunk (by index along rows) of an every-chunk-written array has no file."""
    if not array.attrs.get(EVERY_CHUNK_ATTR):
        return
    base = store_root(array) / array.path
    for index in chunks:
        key = chunk_key(array, int(index))
        if not (base / key).is_file():
            raise DamagedPart(store_root(array), array.path, f"chunk {key} is missing")


def read_rows(array: zarr.Array, lo: int, hi: int) -> np.ndarray:
    """Rows ``lo:hi`` (``lo < hi``) of a committed array; DamagedPart if a chunk is missing or cannot be decoded."""
    rows = array.chunks[0]
    first, last = lo // rows, (hi - 1) // rows
    check_chunks_present(array, range(first, last + 1))
    with reading_chunks(array, first, last):
        return np.asarray(array[lo:hi])


def read_rows_at(array: zarr.Array, index: np.ndarray) -> np.ndarray:
    """Rows at the sorted, unique, non-empty positions ``index``, checked like :func:`read_rows`."""
    chunks = np.unique(index // array.chunks[0])
    check_chunks_present(array, chunks)
    with reading_chunks(array, int(chunks[0]), int(chunks[-1])):
        return np.asarray(array.oindex[index])


def chunk_key(array: zarr.Array, index: int) -> str:
    """The store key (relative to the array) of chunk ``index`` along the rows."""
    return array.metadata.encode_chunk_key((index, *([0] * (array.ndim - 1))))


def crc_rows(rows: np.ndarray, crc: int) -> int:
    """CRC-32 of ``rows`` continued from ``crc`` (so a column's checksum grows with its appends).

    Numbers as their little-endian bytes; strings as UTF-8, each followed by a NUL.
    """
    if rows.dtype.kind in "TUO":
        items = rows.ravel().tolist()
        return zlib.crc32(("\0".join(items) + "\0").encode() if items else b"", crc)
    data = np.ascontiguousarray(rows, dtype=rows.dtype.newbyteorder("<"))
    return zlib.crc32(data.data.cast("B"), crc)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def read_rows_spread(array: zarr.Array, unique: np.ndarray, block_bytes: int) -> np.ndarray:
    """Rows at sorted, distinct positions. When their chunks are most of the span they lie in (e.g. every tenth
    frame), the span is read in slices of at most ``block_bytes`` (zarr decodes whole chunks either way; its
    orthogonal indexing of a million positions costs more than the decoding); else only the chunks holding them."""
    rows = array.chunks[0]
    lo, hi = int(unique[0]), int(unique[-1]) + 1
    if np.unique(unique // rows).size * rows < (hi - lo) // 2:
        return read_rows_at(array, unique)
    out = np.empty((len(unique), *array.shape[1:]), dtype=array.dtype)
    row_bytes = max(1, int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize)
    step = max(rows, block_bytes // row_bytes // rows * rows)
    for start in range(lo - lo % rows, hi, step):
        a, b = np.searchsorted(unique, [start, start + step])
        if a < b:
            out[a:b] = read_rows(array, start, min(start + step, hi))[unique[a:b] - start]
    return out
