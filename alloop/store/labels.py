"""Labels per fidelity, keyed by (frame id, fidelity hash): each written exactly once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from alloop.errors import StoreError
from alloop.labeling import provenance as prov
from alloop.labeling.result import STATUS_CODES, LabelResult, LabelStatus
from alloop.store.columns import Table, lazy_group
from alloop.store.schema import LABEL_ATOM_SPECS, LABEL_SPECS

if TYPE_CHECKING:
    from alloop.fidelity import Fidelity


@dataclass(frozen=True)
class LabelTable:
    """All labels of one fidelity, in the order added. Forces are CSR: ``forces[offset[i]:offset[i] + n_atoms[i]]``."""

    fidelity_name: str
    fidelity_hash: str
    frame_id: np.ndarray  # int64
    energy: np.ndarray  # eV, NaN unless ok
    forces: np.ndarray  # (total atoms, 3) eV/Angstrom
    offset: np.ndarray  # int64, into forces
    n_atoms: np.ndarray
    status: np.ndarray  # int8, alloop.labeling.result.STATUS_CODES
    reason: np.ndarray  # str
    cpu_seconds: np.ndarray
    wall_seconds: np.ndarray
    scf_cycles: np.ndarray
    #: software that computed the labels from row ``provenance_from`` on (alloop.labeling.provenance); {}: unknown
    provenance: dict[str, str] = field(default_factory=dict)
    provenance_from: int = 0

    def __len__(self) -> int:
        return len(self.frame_id)

    @property
    def ok(self) -> np.ndarray:
        """Mask of rows with status ok."""
        return self.status == STATUS_CODES[LabelStatus.OK]

    def frame_forces(self, row: int) -> np.ndarray:
        """Forces (n_atoms, 3) of label row ``row`` (not frame id)."""
        start = int(self.offset[row])
        return self.forces[start : start + int(self.n_atoms[row])]


class FidelityLabels:
    """``labels/<hash>/``: the label rows and the per-atom forces of one fidelity."""

    def __init__(self, root: Callable[[], zarr.Group], fidelity_hash: str, entry: dict[str, Any] | None) -> None:
        self.hash = fidelity_hash
        self.name = entry["name"] if entry else ""
        group = lazy_group(root, f"labels/{fidelity_hash}", entry is not None)
        self._group = group
        self.rows = Table(f"labels/{fidelity_hash}", group, LABEL_SPECS, entry["rows"] if entry else None)
        self.atoms = Table(f"labels/{fidelity_hash}.atoms", group, LABEL_ATOM_SPECS, entry["atoms"] if entry else None)
        self._done: np.ndarray | None = None
        #: software of the labels from row ``provenance_from`` on (older rows predate the record); {}: unknown
        self.provenance: dict[str, str] = dict(entry.get("provenance", {})) if entry else {}
        self.provenance_from: int = int(entry.get("provenance_from", 0)) if entry else 0

    def describe(self, fidelity: Fidelity) -> None:
        """Write the fidelity's name and spec into the group's attributes (a new fidelity only)."""
        self.name = fidelity.name
        self._group().attrs.update({"name": fidelity.name, "hash": self.hash, "spec": fidelity.model_dump()})

    def spec(self) -> dict[str, Any]:
        spec: Any = self._group().attrs.get("spec", {})  # the fidelity's model_dump() (describe)
        return dict(spec)

    def done(self, n_frames: int) -> np.ndarray:
        """Boolean mask over frame ids: labelled at this fidelity (committed or pending)."""
        if self._done is None:
            self._done = np.zeros(max(n_frames, 1024), dtype=bool)
            self._done[self.rows.read("frame_id")] = True
        if len(self._done) < n_frames:
            grown = np.zeros(max(n_frames, 2 * len(self._done)), dtype=bool)
            grown[: len(self._done)] = self._done
            self._done = grown
        return self._done

    def record_entry(self) -> dict[str, Any] | None:
        if not self.rows.columns:
            return None
        rows, atoms = self.rows.columns["frame_id"].flushed, self.atoms.columns["forces"].flushed
        entry: dict[str, Any] = {"name": self.name, "rows": rows, "atoms": atoms}
        if self.provenance:
            entry["provenance"] = dict(self.provenance)
        if self.provenance_from:
            entry["provenance_from"] = self.provenance_from
        return entry

    def check_provenance(self, incoming: list[dict[str, str]], fidelity: Fidelity, allow_mix: bool) -> dict[str, str]:
        """The provenance after adding labels of ``incoming`` provenances; StoreError on a mix not allowed."""
        provenance, problem = prov.combine(self.provenance, incoming, allow_mix)
        if problem and not allow_mix:
            raise StoreError(prov.mix_error(fidelity.name, self.hash, problem))
        return provenance

    def set_provenance(self, provenance: dict[str, str]) -> None:
        """Record ``provenance``; labels already present without one keep theirs unknown."""
        if provenance and not self.provenance:
            self.provenance_from = self.rows.rows
        self.provenance = provenance

    def table(self) -> LabelTable:
        data = self.rows.read_all()
        return LabelTable(
            fidelity_name=self.name,
            fidelity_hash=self.hash,
            forces=self.atoms.read("forces"),
            provenance=dict(self.provenance),
            provenance_from=self.provenance_from,
            **data,
        )


def empty_label_table(name: str, fidelity_hash: str) -> LabelTable:
    """The labels of a fidelity that has none."""
    # LabelTable's array fields, empty (Any: a **dict of arrays would be checked against its other fields too)
    data: dict[str, Any] = {s.name: np.zeros((0, *s.shape), dtype=s.dtype) for s in LABEL_SPECS}
    forces = np.zeros((0, 3))
    return LabelTable(fidelity_name=name, fidelity_hash=fidelity_hash, forces=forces, **data)


def _status_code(status: Any) -> int:
    try:
        return STATUS_CODES[LabelStatus(status)]
    except ValueError:
        known = ", ".join(s.value for s in LabelStatus)
        raise StoreError(f"unknown label status {status!r} (known: {known})") from None


def label_columns(
    fidelity: Fidelity,
    frame_ids: np.ndarray,
    results: Sequence[LabelResult],
    n_atoms: np.ndarray,
    first_offset: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """Validate results against their frames and turn them into row columns and the forces block."""
    fidelity_hash = fidelity.hash()
    forces = []
    for frame_id, result, n in zip(frame_ids, results, n_atoms, strict=True):
        if result.fidelity_hash and result.fidelity_hash != fidelity_hash:
            raise StoreError(
                f"label for frame {frame_id} was computed at fidelity {result.fidelity_hash},"
                f" not {fidelity_hash} ({fidelity.name})"
            )
        f = np.asarray(result.forces_eV_per_A, dtype=np.float64)
        if f.shape != (n, 3):
            raise StoreError(f"label for frame {frame_id}: forces of shape {f.shape} for a frame of {n} atoms")
        finite = np.isfinite(result.energy_eV) and np.isfinite(f).all()
        if LabelStatus(result.status) is LabelStatus.OK and not finite:
            raise StoreError(f"label for frame {frame_id} has status ok but non-finite energy or forces")
        forces.append(f)
    rows = {
        "frame_id": frame_ids,
        "energy": np.array([r.energy_eV for r in results], dtype=np.float64),
        "status": np.array([_status_code(r.status) for r in results], dtype=np.int8),
        "reason": np.array([str(r.reason) for r in results], dtype=str),
        "cpu_seconds": np.array([r.cpu_seconds for r in results], dtype=np.float64),
        "wall_seconds": np.array([r.wall_seconds for r in results], dtype=np.float64),
        "scf_cycles": np.array([r.scf_cycles for r in results], dtype=np.int64),
        "offset": first_offset + np.concatenate([[0], np.cumsum(n_atoms)[:-1]]).astype(np.int64),
        "n_atoms": n_atoms,
    }
    return rows, np.concatenate(forces) if forces else np.zeros((0, 3))


class LabelSection:
    """All fidelities of the store."""

    def __init__(self, root: Callable[[], zarr.Group], record: dict[str, Any]) -> None:
        self._root = root
        self.by_hash = {h: FidelityLabels(root, h, entry) for h, entry in record.get("labels", {}).items()}

    def tables(self) -> list[Table]:
        return [t for f in self.by_hash.values() for t in (f.rows, f.atoms)]

    def record_part(self) -> dict[str, Any]:
        entries = {h: f.record_entry() for h, f in self.by_hash.items()}
        return {"labels": {h: e for h, e in entries.items() if e is not None}}

    def resolve(self, name_or_hash: str) -> str:
        """The hash of a stored fidelity given its hash or its (unique) name."""
        if name_or_hash in self.by_hash:
            return name_or_hash
        found = [h for h, f in self.by_hash.items() if f.name == name_or_hash]
        if len(found) == 1:
            return found[0]
        known = ", ".join(f"{f.name} ({h})" for h, f in self.by_hash.items()) or "none"
        what = "is ambiguous" if found else "has no labels in this store"
        raise StoreError(f"fidelity '{name_or_hash}' {what} (stored: {known})")

    def table(self, fidelity: str | Fidelity) -> LabelTable:
        """All labels of a fidelity (a Fidelity, its hash, or a stored fidelity's unique name)."""
        if not isinstance(fidelity, str):  # a Fidelity
            key = fidelity.hash()
            if key not in self.by_hash:
                return empty_label_table(fidelity.name, key)
        else:
            key = self.resolve(fidelity)
        return self.by_hash[key].table()

    def columns(self, fidelity: str | Fidelity, names: list[str]) -> dict[str, np.ndarray]:
        """Columns ``names`` of the label rows of a fidelity (none stored: empty arrays)."""
        known = {s.name: s for s in LABEL_SPECS}
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise StoreError(f"unknown label columns {unknown} (known: {', '.join(known)})")
        key = self.resolve(fidelity) if isinstance(fidelity, str) else fidelity.hash()
        if key not in self.by_hash:
            return {n: np.zeros((0, *known[n].shape), dtype=known[n].dtype) for n in names}
        return {n: self.by_hash[key].rows.read(n) for n in names}

    def has(self, frame_id: int, fidelity_hash: str, n_frames: int) -> bool:
        labels = self.by_hash.get(fidelity_hash)
        if labels is None or not 0 <= frame_id < n_frames:
            return False
        return bool(labels.done(n_frames)[frame_id])

    def add(
        self,
        fidelity: Fidelity,
        frame_ids: np.ndarray,
        results: Sequence[LabelResult],
        n_atoms_of: Callable[[np.ndarray], np.ndarray],
        n_frames: int,
        allow_mix: bool = False,
    ) -> np.ndarray:
        if len(results) != len(frame_ids):
            raise StoreError(f"{len(frame_ids)} frame ids but {len(results)} label results")
        h = fidelity.hash()
        labels = self.by_hash.get(h)
        if labels is None:
            labels = FidelityLabels(self._root, h, None)
        done = labels.done(n_frames)
        _, first = np.unique(frame_ids, return_index=True)
        mask = np.zeros(len(frame_ids), dtype=bool)
        mask[first] = True
        mask &= ~done[frame_ids]
        keep = np.flatnonzero(mask)
        if not len(keep):
            return mask
        ids = frame_ids[keep]
        rows, forces = label_columns(fidelity, ids, [results[int(k)] for k in keep], n_atoms_of(ids), labels.atoms.rows)
        provenance = labels.check_provenance([dict(results[int(k)].provenance) for k in keep], fidelity, allow_mix)
        if h not in self.by_hash:
            labels.describe(fidelity)
            self.by_hash[h] = labels
        labels.set_provenance(provenance)
        labels.rows.append(rows)
        labels.atoms.append({"forces": forces})
        done[ids] = True
        return mask
