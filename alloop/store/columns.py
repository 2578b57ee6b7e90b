"""Append-only columns on zarr arrays whose valid length lives in the commit record.

A :class:`Table` is a set of equally long columns (zarr arrays in one group).
Rows are appended to in-memory buffers and written in one slice per column at
flush time (zarr's ``append`` costs milliseconds and turns integers into
floats). Arrays are pre-allocated and grow geometrically; rows beyond the
committed length are garbage or fill values and are never read. Every chunk is
written (also chunks of fill values), so a missing chunk file is damage, and
each column keeps a running CRC-32 of its rows for the commit record
(:mod:`alloop.store.integrity`). What a column holds (its name, dtype and row
shape) is :mod:`alloop.store.column_spec`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

if TYPE_CHECKING:
    from zarr.core.array_spec import ArrayConfigParams

from alloop.errors import StoreError
from alloop.store.column_spec import ColumnSpec, coerce
from alloop.store.integrity import (
    EVERY_CHUNK_ATTR,
    DamagedPart,
    crc_rows,
    join,
    open_node,
    read_rows,
    read_rows_spread,
    store_root,
)

#: zarr's runtime config of every column array: write chunks of fill values too
_ARRAY_CONFIG: ArrayConfigParams = {"write_empty_chunks": True}
#: target uncompressed bytes of one chunk (a small commit rewrites the last chunk of each column)
CHUNK_BYTES = 1 << 18
INITIAL_ROWS = 1024
#: the largest slice of a column one gathering read (Column.take) decodes at once
TAKE_BLOCK_BYTES = 64 << 20
#: a column whose committed rows take at most this many bytes keeps them in memory once read whole: committed rows
#: never change, so later reads (the ledger's tables, read at every phase) only read the rows committed since
CACHE_BYTES = 32 << 20


def _chunk_rows(spec: ColumnSpec) -> int:
    rows = max(1, CHUNK_BYTES // max(1, spec.row_nbytes))
    return 1 << (rows.bit_length() - 1)


def _fill_value(spec: ColumnSpec) -> Any:
    if spec.is_string:
        return ""
    return {"b": False, "f": np.nan}.get(spec.dtype.kind, 0)


class Column:
    """One zarr array: committed rows on disk, flushed-but-uncommitted rows on disk, pending rows in memory."""

    def __init__(self, group: zarr.Group, spec: ColumnSpec, committed: int) -> None:
        self.group = group
        self.spec = spec
        self.committed = committed
        self.flushed = committed
        #: CRC-32 of the committed / flushed rows (None: unknown, a column an older alloop committed)
        self.committed_crc: int | None = 0 if committed == 0 else None
        self.crc = self.committed_crc
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self._array: zarr.Array | None = None
        #: a prefix of the committed rows, read before (see CACHE_BYTES)
        self._cache: np.ndarray | None = None

    @property
    def part(self) -> str:
        """The array's path in the store, e.g. ``frames/positions``."""
        return join(self.group.path, self.spec.name)

    @property
    def length(self) -> int:
        return self.flushed + self._n_pending

    @property
    def pending_nbytes(self) -> int:
        return sum(p.nbytes for p in self._pending)

    @property
    def array(self) -> zarr.Array:
        """The zarr array (DamagedPart if the commit record names it but it cannot be opened)."""
        if self._array is None:
            self._array = open_node(self.group, self.spec.name).with_config(_ARRAY_CONFIG)
        return self._array

    def create(self) -> None:
        """Create (or overwrite leftovers of) the array; only for columns the commit record does not know."""
        spec = self.spec
        compressor = ZstdCodec(level=3) if spec.is_string else BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
        self._array = self.group.create_array(
            spec.name,
            shape=(INITIAL_ROWS, *spec.shape),
            chunks=(_chunk_rows(spec), *spec.shape) if spec.shape else (_chunk_rows(spec),),
            dtype=str if spec.is_string else spec.dtype,
            fill_value=_fill_value(spec),
            compressors=[compressor],
            attributes={EVERY_CHUNK_ATTR: True},
            config=_ARRAY_CONFIG,
            overwrite=True,
        )

    def append(self, values: np.ndarray) -> None:
        if len(values):
            self._pending.append(values)
            self._n_pending += len(values)

    def _pending_array(self) -> np.ndarray:
        if len(self._pending) > 1:
            self._pending = [np.concatenate(self._pending)]
        return self._pending[0] if self._pending else self._empty(0)

    def _empty(self, n: int) -> np.ndarray:
        return np.zeros((n, *self.spec.shape), dtype=self.spec.dtype)

    def flush_coroutine(self) -> Coroutine[Any, Any, None] | None:
        """Grow the array if needed and return the write of the pending rows (run them all concurrently)."""
        if not self._n_pending:
            return None
        data = self._pending_array()
        start, stop = self.flushed, self.flushed + len(data)
        array = self.array
        if stop > array.shape[0]:
            capacity = max(stop, 2 * array.shape[0], INITIAL_ROWS)
            array.resize((capacity, *self.spec.shape))
        return array.async_array.setitem(slice(start, stop), data)

    def mark_flushed(self) -> None:
        if self.crc is not None and self._n_pending:
            self.crc = crc_rows(self._pending_array(), self.crc)
        self.flushed += self._n_pending
        self._pending, self._n_pending = [], 0

    def mark_committed(self) -> None:
        self.committed, self.committed_crc = self.flushed, self.crc

    def load_crc(self, crcs: Mapping[str, int]) -> None:
        """Take the committed rows' CRC-32 from the commit record's ``crc32`` (if it has this column's)."""
        if self.committed:
            self.committed_crc = self.crc = crcs.get(self.part)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` of the valid length (committed, flushed and pending)."""
        stop = self.length if stop is None else min(stop, self.length)
        start = max(0, min(start, stop))
        parts = []
        if start < min(stop, self.flushed):
            parts.append(self._disk_rows(start, min(stop, self.flushed)))
        if stop > self.flushed:
            pending = self._pending_array()
            parts.append(pending[max(start, self.flushed) - self.flushed : stop - self.flushed])
        if not parts:
            return self._empty(0)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _cached(self, stop: int) -> np.ndarray | None:
        """The committed rows ``0:stop`` from memory (read what was committed since the last read), or None when
        they are not cached and the read does not start at row 0 or the column is too large to keep."""
        if self._cache is not None and stop <= len(self._cache):
            return self._cache
        if stop > self.committed or self.committed * max(1, self.spec.row_nbytes) > CACHE_BYTES:
            return None
        if self._cache is None:
            self._cache = read_rows(self.array, 0, self.committed) if self.committed else self._empty(0)
        elif len(self._cache) < self.committed:
            self._cache = np.concatenate([self._cache, read_rows(self.array, len(self._cache), self.committed)])
        return self._cache

    def _disk_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (``stop <= flushed``) of the array: committed ones from the cache when it holds them
        or the read covers every committed row (which fills it; a head read such as the first frame does not read the
        whole column); a copy: callers may change what they get."""
        head = min(stop, self.committed)
        whole = start == 0 and head == self.committed  # a read of every committed row fills the cache
        cache = self._cached(head) if start < head and (whole or self._cache is not None) else None
        if cache is None or head > len(cache):
            return read_rows(self.array, start, stop)
        rows = cache[start:head].copy()
        return rows if head == stop else np.concatenate([rows, read_rows(self.array, head, stop)])

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows at integer positions ``index`` (any order, repeats allowed)."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), *self.spec.shape), dtype=self.spec.dtype)
        if not len(index):
            return out
        if index.min() < 0 or index.max() >= self.length:
            raise IndexError(f"column {self.spec.name}: row index out of range 0..{self.length - 1}")
        on_disk = index < self.flushed
        cache = self._cache
        if cache is not None and on_disk.any() and int(index[on_disk].max()) < len(cache):
            out[on_disk] = cache[index[on_disk]]
        elif on_disk.any():
            wanted = index[on_disk]
            lo, hi = int(wanted.min()), int(wanted.max()) + 1
            if hi - lo <= 2 * len(wanted):
                out[on_disk] = read_rows(self.array, lo, hi)[wanted - lo]
            else:
                unique, inverse = np.unique(wanted, return_inverse=True)
                out[on_disk] = read_rows_spread(self.array, unique, TAKE_BLOCK_BYTES)[inverse]
        if (~on_disk).any():
            out[~on_disk] = self._pending_array()[index[~on_disk] - self.flushed]
        return out



class Table:
    """Equally long columns in one zarr group. ``specs`` is None for a table whose columns the first append fixes."""

    def __init__(
        self,
        name: str,
        group: Callable[[], zarr.Group],
        specs: list[ColumnSpec] | None,
        committed: int | None,
    ) -> None:
        self.name = name
        self._get_group = group
        self.known = committed is not None  # the commit record names it: its arrays exist on disk
        self.specs = specs
        self.dynamic = specs is None  # columns fixed by the first append, described in the group's attrs
        self.committed_rows = committed or 0
        self.columns: dict[str, Column] = {}
        if self.known:
            if self.specs is None:
                self.specs = self._stored_specs()
            self._build_columns()

    def _stored_specs(self) -> list[ColumnSpec]:
        """The column specs a dynamic table keeps in its group's attributes."""
        group = self.group
        try:
            columns: Any = group.attrs["columns"]  # JSON from the store: a malformed list fails below
            return [ColumnSpec.from_description(d) for d in columns]
        except (KeyError, TypeError, ValueError) as exc:
            problem = f"its zarr.json has no readable column list ({type(exc).__name__}: {exc})"
            raise DamagedPart(store_root(group), group.path, problem) from None

    @property
    def group(self) -> zarr.Group:
        return self._get_group()

    def _build_columns(self) -> None:
        assert self.specs is not None
        self.columns = {s.name: Column(self.group, s, self.committed_rows) for s in self.specs}

    @property
    def rows(self) -> int:
        return self.committed_rows + self.pending_rows

    @property
    def pending_rows(self) -> int:
        if not self.columns:
            return 0
        return next(iter(self.columns.values())).length - self.committed_rows

    @property
    def pending_nbytes(self) -> int:
        return sum(c.pending_nbytes for c in self.columns.values())

    def append(self, values: Mapping[str, Any]) -> tuple[int, int]:
        """Append rows given as one array per column (all columns, same length); returns (first, stop) row."""
        if self.specs is None:
            self.specs = [ColumnSpec.infer(name, np.asarray(v)) for name, v in values.items()]
            if not self.specs:
                raise StoreError(f"table '{self.name}': no columns given")
        names = [s.name for s in self.specs]
        if set(values) != set(names):
            missing, extra = sorted(set(names) - set(values)), sorted(set(values) - set(names))
            raise StoreError(f"table '{self.name}': columns are {names}; missing {missing}, unknown {extra}")
        n = len(np.asarray(values[names[0]]))
        coerced = {s.name: coerce(s, values[s.name], n) for s in self.specs}
        if not self.columns:
            self._build_columns()
            if not self.known:
                if self.dynamic:
                    self.group.attrs["columns"] = [s.describe() for s in self.specs]
                for column in self.columns.values():
                    column.create()
        start = self.rows
        for name, arr in coerced.items():
            self.columns[name].append(arr)
        return start, start + n

    def flush_coroutines(self) -> list[Coroutine[Any, Any, None]]:
        return [c for c in (col.flush_coroutine() for col in self.columns.values()) if c is not None]

    def mark_flushed(self) -> None:
        for column in self.columns.values():
            column.mark_flushed()

    def mark_committed(self) -> None:
        """After the commit record naming this table's flushed length is durable."""
        if self.columns:
            self.known = True
            self.committed_rows = next(iter(self.columns.values())).flushed
            for column in self.columns.values():
                column.mark_committed()

    def load_crcs(self, crcs: Mapping[str, int]) -> None:
        """Take the committed CRC-32 of each column from the commit record's ``crc32`` mapping."""
        for column in self.columns.values():
            column.load_crc(crcs)

    def crcs(self) -> dict[str, int]:
        """Array path -> CRC-32 of the flushed rows, for the commit record (columns whose CRC is known)."""
        return {c.part: c.crc for c in self.columns.values() if c.crc is not None}

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        if name not in self.columns:
            return self._empty(name)
        return self.columns[name].read(start, stop)

    def take(self, name: str, index: np.ndarray) -> np.ndarray:
        if name not in self.columns:
            if len(index):
                raise IndexError(f"table {self.name} is empty")
            return self._empty(name)
        return self.columns[name].take(index)

    def _empty(self, name: str) -> np.ndarray:
        for spec in self.specs or []:
            if spec.name == name:
                return np.zeros((0, *spec.shape), dtype=spec.dtype)
        raise KeyError(f"table {self.name} has no column '{name}'")

    def read_all(self) -> dict[str, np.ndarray]:
        return {s.name: self.read(s.name) for s in self.specs or []}


def flush_tables(tables: list[Table]) -> None:
    """Write every table's pending rows, all arrays concurrently (one zarr call each)."""
    from zarr.core.sync import sync

    coroutines = [c for t in tables for c in t.flush_coroutines()]
    if coroutines:

        async def _all() -> None:
            await asyncio.gather(*coroutines)

        sync(_all())
    for table in tables:
        table.mark_flushed()


def lazy_group(root: Callable[[], zarr.Group], path: str, known: bool) -> Callable[[], zarr.Group]:
    """A memoised getter of group ``path``: opened if the commit record knows it, else created afresh.

    Creating with ``overwrite`` wipes what an earlier, killed writer may have left there uncommitted.
    """
    cache: list[zarr.Group] = []

    def get() -> zarr.Group:
        if not cache:
            parent = root()
            cache.append(open_node(parent, path) if known else parent.create_group(path, overwrite=True))
        return cache[0]

    return get


class GrowableArray:
    """A 1-D numpy array with amortised O(1) appends (an in-memory index)."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = np.array(data)
        self._n = len(data)

    @property
    def values(self) -> np.ndarray:
        return self._data[: self._n]

    def extend(self, values: np.ndarray) -> None:
        need = self._n + len(values)
        if need > len(self._data):
            grown = np.empty(max(need, 2 * len(self._data), 1024), dtype=self._data.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = values
        self._n = need
