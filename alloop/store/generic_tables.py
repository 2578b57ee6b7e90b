"""``tables/<name>/``: the store's generic append-only tables, one zarr group each.

A table's columns and dtypes are fixed by its first append and kept in its
group's attributes; the commit record names each table's committed rows
(``tables``). The campaign's ledger tables are written and read through their
schemas in :mod:`alloop.store.tables`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import zarr

from alloop.errors import StoreError
from alloop.store.columns import Table, lazy_group

_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class TableSection:
    """All generic tables of the store, by name."""

    def __init__(self, root: Callable[[], zarr.Group], record: dict[str, Any]) -> None:
        self._root = root
        self.by_name = {name: self._make_table(name, rows) for name, rows in record.get("tables", {}).items()}

    def _make_table(self, name: str, rows: int | None) -> Table:
        return Table(name, lazy_group(self._root, f"tables/{name}", rows is not None), None, rows)

    def tables(self) -> list[Table]:
        return list(self.by_name.values())

    def append(self, name: str, columns: Mapping[str, Any]) -> None:
        """Append rows to table ``name``, creating it (its columns are those of this first append)."""
        if name not in self.by_name:
            if not _TABLE_NAME.match(name):
                raise StoreError(f"table name {name!r} must match {_TABLE_NAME.pattern}")
            self.by_name[name] = self._make_table(name, None)
        self.by_name[name].append(columns)

    def names(self) -> list[str]:
        """Tables with columns (a table whose first append failed has none)."""
        return sorted(name for name, t in self.by_name.items() if t.specs)

    def read(self, name: str) -> dict[str, np.ndarray]:
        if name not in self.by_name or not self.by_name[name].specs:
            raise StoreError(f"no table '{name}' (tables: {', '.join(self.names()) or 'none'})")
        return self.by_name[name].read_all()

    def record_part(self) -> dict[str, Any]:
        rows = {n: t.columns[t.specs[0].name].flushed for n, t in self.by_name.items() if t.columns and t.specs}
        return {"tables": rows} if rows else {}
