"""What a column holds: its name, dtype and per-row shape (:class:`ColumnSpec`), and the checked conversion of
given values to them (:func:`coerce`).

Columns hold booleans, integers, floats (native byte order) or strings (numpy's
variable-width ``StringDType``), with any fixed per-row shape. Values are cast
to their column's dtype only from the same kind or an integer one: booleans to
booleans, integers to integers (within range), integers and floats to floats,
strings to strings. How columns are written to disk is :mod:`alloop.store.columns`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from alloop.errors import StoreError

STRING_DTYPE = np.dtypes.StringDType()


@dataclass(frozen=True)
class ColumnSpec:
    """Name, dtype and per-row shape of one column."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...] = ()

    @property
    def is_string(self) -> bool:
        return self.dtype.kind in "TUO"

    @property
    def row_nbytes(self) -> int:
        return (32 if self.is_string else self.dtype.itemsize) * int(np.prod(self.shape, dtype=np.int64))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": "str" if self.is_string else self.dtype.str, "shape": list(self.shape)}

    @classmethod
    def from_description(cls, data: Mapping[str, Any]) -> ColumnSpec:
        dtype = STRING_DTYPE if data["dtype"] == "str" else np.dtype(data["dtype"])
        return cls(str(data["name"]), dtype, tuple(int(s) for s in data["shape"]))

    @classmethod
    def infer(cls, name: str, values: np.ndarray) -> ColumnSpec:
        """The spec of a column first written with ``values`` (one row per leading index)."""
        if values.ndim == 0:
            raise StoreError(f"column '{name}': give one value per row, not a scalar")
        kind = values.dtype.kind
        if kind in "TUO":
            if kind == "O" and not all(isinstance(v, str) for v in values.ravel()):
                raise StoreError(f"column '{name}': object arrays must hold strings only")
            return cls(name, STRING_DTYPE, values.shape[1:])
        if kind not in "biuf":
            raise StoreError(f"column '{name}': dtype {values.dtype} is not storable (use bool, int, float or str)")
        return cls(name, values.dtype.newbyteorder("="), values.shape[1:])


def coerce(spec: ColumnSpec, values: Any, n_rows: int | None = None) -> np.ndarray:
    """``values`` as this column's dtype; refuses lossy kind changes (float -> int, str -> number, ...)."""
    arr = np.asarray(values)
    if arr.shape[1:] != spec.shape or arr.ndim == 0:
        raise StoreError(f"column '{spec.name}': rows of shape {arr.shape[1:]} given, {spec.shape} expected")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise StoreError(f"column '{spec.name}': {arr.shape[0]} rows given, {n_rows} expected")
    if spec.is_string:
        if arr.dtype.kind not in "TUO" or (arr.dtype.kind == "O" and not all(isinstance(v, str) for v in arr.ravel())):
            raise StoreError(f"column '{spec.name}' holds strings, got {arr.dtype}")
        return arr.astype(STRING_DTYPE)
    kind, target = arr.dtype.kind, spec.dtype.kind
    allowed = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}[target]
    if arr.size and kind not in allowed:
        raise StoreError(f"column '{spec.name}' holds {spec.dtype}, got {arr.dtype}")
    if target in "iu" and arr.size:
        info = np.iinfo(spec.dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise StoreError(f"column '{spec.name}': values outside the range of {spec.dtype}")
    return arr.astype(spec.dtype, copy=False)
