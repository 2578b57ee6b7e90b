"""Where a campaign's labels are: the conformer basins of its labelled frames, per fidelity and cycle.

For a campaign of one molecule with rotatable bonds (:func:`alloop.system.conformers.find_rotors`, symmetric
tops left out), every frame with an ok label is put in its basin combination
(:func:`alloop.system.conformers.frame_basins`: trans / gauche+ / gauche- of each rotor) and counted per
fidelity and per cycle (the bootstrap is cycle -1). A loop stuck in its first basin shows here as one
column; ``alloop status`` prints it, ``alloop report`` draws it (``coverage.png``: the shares of the frames
labelled so far after each cycle, :func:`cumulative_shares`). Computed from the store when asked (no model):
the counts are not stored, but each labelled frame's basin code is, as its label comes back (table
``frame_basins``, :class:`BasinRecorder`), so that a long campaign's status does not decode every labelled frame's
positions; frames without a recorded code (a store written before the table, imported labels) are computed.
The automatic test set's frames (:func:`alloop.store.ledger.held_out_ids`) are not the campaign's labels and are
left out.
The counting itself is :func:`basin_histogram` (positions in Angstrom).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError
from alloop.labeling.result import STATUS_CODES, LabelStatus
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.ledger import held_out_ids
from alloop.store.resolve import resolve_fidelity
from alloop.system.conformers import Rotor, basin_name, find_rotors, frame_basins

#: fidelities in this order: the campaign's roles, then any other (by name)
ROLE_ORDER = ("cheap", "expensive", "")


def store_rotors(store: CampaignStore) -> tuple[Atoms, list[Rotor]] | None:
    """The store's first frame and its molecule's non-symmetric rotors, or None when the store has no frame, its
    first frame is a periodic cell or its molecule has no rotatable bond."""
    if store.n_frames == 0:
        return None
    geometry = store.frame_geometry(0, 1)  # the first frame: its atoms, not its metadata and update log
    first = Atoms(numbers=geometry["numbers"].astype(int), positions=geometry["positions"], cell=geometry["cell"][0],
                  pbc=geometry["pbc"][0])
    if first.pbc.any():
        return None  # a periodic cell: no molecule, no torsional rotors
    rotors = [r for r in find_rotors(first) if not r.symmetric]
    return (first, rotors) if rotors else None


def frame_codes(store: CampaignStore, frames: np.ndarray, first: Atoms, rotors: list[Rotor]) -> np.ndarray | None:
    """The basin codes of ``frames`` (ids), or None when one of them is not the first frame's molecule."""
    arrays = store.frame_arrays(frames)  # a chunked read: no Atoms for the ten thousand labels of a long campaign
    if np.any(arrays["n_atoms"] != len(first)) or np.any(
            arrays["numbers"].reshape(frames.size, len(first)) != first.numbers):
        return None
    return frame_basins(arrays["positions"].reshape(frames.size, len(first), 3), rotors)


class BasinRecorder:
    """Writes the basin code of each newly labelled frame (table ``frame_basins``) as the campaign's labels come back:
    ``add`` a frame id, ``flush`` before the commit. Nothing for a store :func:`store_rotors` has none for, or once
    a frame of another molecule turns up (``alloop status`` then counts no basins)."""

    def __init__(self, store: CampaignStore) -> None:
        self.store = store
        self.pending: list[int] = []
        self.done: set[int] = set()
        self._looked_up = False
        self._rotors: tuple[Atoms, list[Rotor]] | None = None

    def add(self, frame_id: int) -> None:
        if frame_id not in self.done:
            self.pending.append(frame_id)
            self.done.add(frame_id)

    def flush(self) -> None:
        if not self.pending:
            return
        frames, self.pending = np.array(self.pending, dtype=np.int64), []
        if not self._looked_up:
            self._rotors, self._looked_up = store_rotors(self.store), True
        if self._rotors is None:
            return
        codes = frame_codes(self.store, frames, *self._rotors)
        if codes is None:
            self._rotors = None  # several molecules: no basins to count
            return
        tables.append(self.store, tables.FRAME_BASINS, frame_id=frames, code=codes)


def labelled_basins(store: CampaignStore) -> dict[str, Any] | None:
    """``{"rotors": [atom indices a-b-c-d], "rotor_names": [elements], "basins": [...], "fidelities": {name: {cycle:
    [count per basin]}}, "roles": {name: cheap | expensive}}`` (cheap first), or None when the store has no labels,
    holds more than one molecule or periodic frames, or its molecule has no rotatable bond. The codes of frames in
    table ``frame_basins`` are read from it, the others (a store written before it, imported labels) computed."""
    meta = store.frame_meta(columns=["n_atoms", "cycle"])
    found = store_rotors(store) if meta["frame_id"].size else None
    if found is None:
        return None
    first, rotors = found
    if np.any(meta["n_atoms"] != len(first)):
        return None
    names = [basin_name(code, len(rotors)) for code in range(3 ** len(rotors))]
    stored, roles, held = store.fidelities(), fidelity_roles(store), held_out_ids(store)
    labelled: dict[str, np.ndarray] = {}
    for h in sorted(stored, key=lambda h: (ROLE_ORDER.index(roles.get(h, "")), stored[h]["name"])):
        table = store.label_columns(h, ["frame_id", "status"])
        ids = np.unique(table["frame_id"][table["status"] == STATUS_CODES[LabelStatus.OK]])
        ids = ids[~np.isin(ids, held)]  # the test set is not the campaign's labels
        if ids.size:
            labelled[stored[h]["name"]] = ids
    if not labelled:
        return None
    frames = np.unique(np.concatenate(list(labelled.values())))  # read each frame once, whatever labels it has
    codes = _known_codes(store, frames)
    missing = codes < 0
    if missing.any():
        computed = frame_codes(store, frames[missing], first, rotors)
        if computed is None:
            return None
        codes[missing] = computed
    out = {name: _code_histogram(codes[np.searchsorted(frames, ids)], meta["cycle"][ids], len(names))
           for name, ids in labelled.items()}
    return {"rotors": [r.label for r in rotors], "rotor_names": [r.name(first) for r in rotors], "basins": names,
            "fidelities": out, "roles": {stored[h]["name"]: r for h, r in roles.items() if stored[h]["name"] in out}}


def _known_codes(store: CampaignStore, frames: np.ndarray) -> np.ndarray:
    """The recorded basin codes of ``frames`` (sorted ids), -1 where none was recorded."""
    rows = tables.read(store, tables.FRAME_BASINS)
    codes = np.full(frames.size, -1, dtype=np.int64)
    if rows:
        ids, first_row = np.unique(rows["frame_id"], return_index=True)
        pos = np.searchsorted(ids, frames)
        hit = (pos < ids.size) & (ids[np.minimum(pos, ids.size - 1)] == frames)
        codes[hit] = rows["code"][first_row[pos[hit]]]
    return codes


def fidelity_roles(store: CampaignStore) -> dict[str, str]:
    """Stored fidelity hash -> its campaign role (``cheap``, ``expensive``), for the roles the store's config names.

    A role whose spec in the stored config (or whose preset name) exactly one stored fidelity has is that one: no
    fidelity model is built, so ``alloop status`` does not import pydantic; any other role is resolved as
    ``--fidelity`` is."""
    stored = store.fidelities()
    specs = (store.config or {}).get("fidelities") or {}
    out = {}
    for role in ROLE_ORDER[:2]:
        spec = specs.get(role) if isinstance(specs, dict) else None
        named = [h for h, info in stored.items() if spec == (info["name"] if isinstance(spec, str) else info["spec"])]
        if len(named) == 1:
            out[named[0]] = role
            continue
        try:
            h = resolve_fidelity(role, store.config, stored).hash()
        except (AlloopError, ValueError):  # no campaign config (``alloop import``), or a role it cannot resolve
            continue
        if h in stored:
            out[h] = role
    return out


def basin_histogram(positions: np.ndarray, cycles: np.ndarray, rotors: Sequence[Rotor]) -> dict[int, list[int]]:
    """Frames per cycle and basin combination: ``{cycle: [count of basin code 0, 1, ...]}`` (3 ** n codes for
    the n non-symmetric ``rotors``, in :func:`alloop.system.conformers.frame_basins` order), for frames [f, atoms, 3]
    in Angstrom and their cycles [f]; cycles in increasing order, only those with frames."""
    n_codes = 3 ** sum(not r.symmetric for r in rotors)
    return _code_histogram(frame_basins(np.asarray(positions, float), rotors), np.asarray(cycles), n_codes)


def _code_histogram(codes: np.ndarray, cycles: np.ndarray, n_codes: int) -> dict[int, list[int]]:
    """:func:`basin_histogram` of frames given by their basin codes (one count over cycles x codes)."""
    found, which = np.unique(cycles, return_inverse=True)
    counts = np.bincount(np.asarray(which).ravel() * n_codes + codes, minlength=found.size * n_codes)
    return {int(c): row.tolist() for c, row in zip(found, counts.reshape(found.size, n_codes), strict=True)}


def cumulative_shares(
    per_cycle: dict[int, list[int]], cycles: Sequence[int] = ()
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The frames labelled so far after each cycle of :func:`basin_histogram` and of ``cycles`` (a cycle without
    frames adds none): (cycles in order, shares [cycles, basins] summing to 1 per row or 0 before any frame,
    frame counts [cycles])."""
    n_codes = len(next(iter(per_cycle.values()))) if per_cycle else 0
    cycles = sorted(set(per_cycle) | {int(c) for c in cycles})
    counts = np.array([per_cycle.get(c, [0] * n_codes) for c in cycles], float).reshape(len(cycles), n_codes)
    totals = np.cumsum(counts, axis=0)
    n = totals.sum(axis=1)
    return cycles, totals / np.maximum(n, 1)[:, None], n.astype(int)


def fidelity_label(coverage: dict[str, Any], name: str) -> str:
    """A fidelity's name with its campaign role, e.g. ``hf-sto3g (cheap)`` (the name alone without a role)."""
    role = coverage.get("roles", {}).get(name)
    return f"{name} ({role})" if role else name


#: the most recent cycles ``alloop status`` lists one by one (the earlier ones are summed)
SHOWN_CYCLES = 5


def format_basins(coverage: dict[str, Any] | None) -> list[str]:
    """``alloop status`` lines: per fidelity, the labelled frames by basin of the bootstrap, of the earlier cycles
    summed and of the last :data:`SHOWN_CYCLES` cycles each, and the shares of all of them."""
    if coverage is None:
        return []
    names = coverage.get("rotor_names") or coverage["rotors"]
    rotors = ", ".join(f"{n} (atoms {a})" for n, a in zip(names, coverage["rotors"], strict=True))
    lines = [f"labelled frames by conformer basin of {rotors}: {' / '.join(coverage['basins'])}"]
    for name, per_cycle in coverage["fidelities"].items():
        total = np.sum(list(per_cycle.values()), axis=0)
        parts = [f"{label} {'/'.join(map(str, n))}" for label, n in _shown(per_cycle)]
        share = " / ".join(f"{100 * x / max(total.sum(), 1):.0f}" for x in total)
        lines.append(f"  {fidelity_label(coverage, name):<22} {', '.join(parts)}; all {share} %")
    return lines


def _shown(per_cycle: dict[int, list[int]]) -> list[tuple[str, list[int]]]:
    """(label, counts) of the bootstrap and of the last :data:`SHOWN_CYCLES` cycles, the earlier ones summed under
    one label (``cycles 0-94``)."""
    boot = [("bootstrap", per_cycle[c]) for c in sorted(per_cycle) if c < 0]
    cycles = sorted(c for c in per_cycle if c >= 0)
    if len(cycles) > SHOWN_CYCLES + 1:
        early, cycles = cycles[:-SHOWN_CYCLES], cycles[-SHOWN_CYCLES:]
        boot.append((f"cycles {early[0]}-{early[-1]}", np.sum([per_cycle[c] for c in early], axis=0).tolist()))
    return [*boot, *((f"cycle {c}", per_cycle[c]) for c in cycles)]
