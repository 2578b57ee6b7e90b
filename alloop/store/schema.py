"""Every array of the store, with its dtype, per-row shape and unit, in one place.

Units: positions and cell in Angstrom, energies in eV, forces in eV/Angstrom,
times in seconds. Per-frame columns have one row per frame; per-atom columns
one row per atom, frames concatenated (CSR: ``offset`` and ``n_atoms``).
"""

from __future__ import annotations

import enum

import numpy as np

from alloop.store.column_spec import STRING_DTYPE, ColumnSpec

FORMAT = "alloop-campaign-store"
FORMAT_VERSION = 1

#: origin of a frame; stored as int8 in ``frames/origin``
#: (``evaluation``: the automatic evaluation set's frames, held out of training and selection)
ORIGIN_CODES: dict[str, int] = {"unknown": 0, "bootstrap": 1, "md": 2, "import": 3, "test": 4, "evaluation": 5}
ORIGIN_NAMES: dict[int, str] = {v: k for k, v in ORIGIN_CODES.items()}


class FrameFlag(enum.IntFlag):
    """Bits of ``frames/flags`` (uint32)."""

    FLAGGED = 1  #: uncertainty (Q-residual / T^2) above its limit
    UNSTABLE = 2  #: an MD stability check failed at this frame
    SELECTED_CHEAP = 4  #: chosen for a cheap label
    SELECTED_EXPENSIVE = 8  #: chosen for an expensive label


def _spec(name: str, dtype: type, shape: tuple[int, ...] = ()) -> ColumnSpec:
    return ColumnSpec(name, STRING_DTYPE if dtype is str else np.dtype(dtype), shape)


#: per-frame columns (``frames/``); ``offset``/``n_atoms`` index the per-atom columns
FRAME_SPECS = [
    _spec("offset", np.int64),
    _spec("n_atoms", np.int32),
    _spec("cell", np.float64, (3, 3)),  # Angstrom, rows are the cell vectors (ASE)
    _spec("pbc", np.bool_, (3,)),
    _spec("origin", np.int8),  # ORIGIN_CODES
    _spec("replica", np.int32),  # -1: none
    _spec("md_step", np.int64),  # -1: none
    _spec("cycle", np.int32),  # -1: none
    _spec("model_version", np.int32),  # -1: none
    _spec("q_score", np.float64),  # NaN: not scored
    _spec("t2_score", np.float64),  # NaN: not scored
    _spec("flags", np.uint32),  # FrameFlag bits
]
#: per-atom columns of the frames (``frames/``)
ATOM_SPECS = [_spec("numbers", np.int16), _spec("positions", np.float64, (3,))]

#: per-frame metadata a caller may give to add_frames, with the value used when absent
META_DEFAULTS: dict[str, object] = {
    "origin": ORIGIN_CODES["unknown"],
    "replica": -1,
    "md_step": -1,
    "cycle": -1,
    "model_version": -1,
    "q_score": np.nan,
    "t2_score": np.nan,
    "flags": 0,
}
#: metadata that may change after a frame was added (kept as an append-only update log)
UPDATABLE_META = ("replica", "md_step", "cycle", "model_version", "q_score", "t2_score", "flags")

#: per-label columns (``labels/<fidelity hash>/``); status codes from alloop.labeling.result.STATUS_CODES
LABEL_SPECS = [
    _spec("frame_id", np.int64),
    _spec("energy", np.float64),  # eV, NaN unless status is ok
    _spec("status", np.int8),
    _spec("reason", str),
    _spec("cpu_seconds", np.float64),
    _spec("wall_seconds", np.float64),
    _spec("scf_cycles", np.int32),
    _spec("offset", np.int64),  # into labels/<hash>/forces
    _spec("n_atoms", np.int32),
]
#: per-atom label columns (``labels/<fidelity hash>/``)
LABEL_ATOM_SPECS = [_spec("forces", np.float64, (3,))]  # eV/Angstrom


def origin_codes(values: object, n: int) -> np.ndarray:
    """Origin names (or codes) as int8 codes; unknown names raise StoreError."""
    from alloop.errors import StoreError

    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.full(n, arr.item() if arr.dtype.kind not in "US" else str(arr))
    if arr.dtype.kind in "USTO":
        try:
            return np.array([ORIGIN_CODES[str(v)] for v in arr], dtype=np.int8)
        except KeyError as exc:
            raise StoreError(f"unknown frame origin {exc.args[0]!r} (known: {', '.join(ORIGIN_CODES)})") from None
    if arr.size and not np.isin(arr, list(ORIGIN_NAMES)).all():
        raise StoreError(f"unknown frame origin code in {sorted(set(arr.tolist()))} (known: {ORIGIN_NAMES})")
    return arr.astype(np.int8)
