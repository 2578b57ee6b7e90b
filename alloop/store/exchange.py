"""Labelled structures in and out of a store as extended XYZ, losslessly.

ASE's extxyz writer prints positions and forces with 8 decimals. The writer
here prints every float with ``repr`` (shortest round-trip form) in standard
extxyz syntax, so ``ase.io.read`` gives back the stored float64 values bit for bit.

Import skips frames the store (or the file, earlier) holds already (alloop.store.duplicates) and refuses
labels made by other software versions than the store's labels of the fidelity (alloop.labeling.provenance);
export writes those versions into each frame's info.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError, StoreError
from alloop.labeling.provenance import combine, from_info, mix_error, to_info
from alloop.labeling.result import STATUS_FROM_CODE, LabelResult, LabelStatus
from alloop.store.campaign import CampaignStore
from alloop.store.duplicates import FrameIndex, composition_key, index_store_frames
from alloop.store.ledger import held_out_ids
from alloop.system.molecules import molecule_name

if TYPE_CHECKING:
    from alloop.fidelity import Fidelity

#: per-frame metadata copied into ``atoms.info`` on export when set (not -1 / NaN)
_META_KEYS = ("replica", "md_step", "cycle", "model_version", "q_score", "t2_score", "flags")


def labelled_frames(store: CampaignStore, fidelity: str | Fidelity, *, all_status: bool = False,
                    evaluation_set: bool = False) -> list[Atoms]:
    """Frames labelled at ``fidelity`` in frame-id order, with energy/forces (ok labels) and metadata in info: the
    frame's id, molecule (formula, :mod:`alloop.system.molecules`), origin (bootstrap, md, import), its MD replica, step,
    cycle, model version and scores where set, and the label's fidelity, status, cost and software. The automatic
    test set's frames (:func:`~alloop.store.ledger.held_out_ids`) are left out, or alone with ``evaluation_set``."""
    from ase.calculators.singlepoint import SinglePointCalculator

    table = store.labels(fidelity)
    rows = np.argsort(table.frame_id, kind="stable")
    if not all_status:
        rows = rows[table.ok[rows]]
    rows = rows[np.isin(table.frame_id[rows], held_out_ids(store)) == evaluation_set]
    frames = store.get_frames(table.frame_id[rows])
    out = []
    for atoms, row in zip(frames, rows, strict=True):
        meta = atoms.info
        info: dict[str, Any] = {"frame_id": meta["frame_id"], "molecule": molecule_name(atoms.numbers),
                                "origin": meta["origin"]}
        for key in _META_KEYS:
            value = meta[key]
            if (isinstance(value, float) and np.isfinite(value)) or (not isinstance(value, float) and value >= 0):
                info[key] = value
        status = STATUS_FROM_CODE[int(table.status[row])]
        info.update(
            fidelity=table.fidelity_name,
            fidelity_hash=table.fidelity_hash,
            label_status=status.value,
            cpu_seconds=float(table.cpu_seconds[row]),
            wall_seconds=float(table.wall_seconds[row]),
            scf_cycles=int(table.scf_cycles[row]),
        )
        if row >= table.provenance_from:  # older labels predate the record: their software is unknown
            info.update(to_info(table.provenance))
        if table.reason[row]:
            info["label_reason"] = str(table.reason[row])
        atoms.info = info
        if status is LabelStatus.OK:
            energy, forces = float(table.energy[row]), table.frame_forces(int(row))
            atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        out.append(atoms)
    return out


@dataclass
class ImportPlan:
    """What an import adds: new frames (file indices) and labels for frames already in the store, and what it skips.

    A frame of the file equal to a stored frame (same numbers, cell, pbc, positions within
    ``POSITION_TOL_A``) is not added again: its label is attached to the stored frame unless that frame
    has a label of the fidelity already (then it is a duplicate label). A frame equal to an earlier
    frame of the file is skipped with its label.
    """

    new: list[int] = field(default_factory=list)
    attach: list[tuple[int, int]] = field(default_factory=list)  # (file index, stored frame id)
    in_store: int = 0  # frames equal to a stored frame
    in_file: int = 0  # frames equal to an earlier new frame of the file
    labels_skipped: int = 0  # duplicates' labels not added: that frame has one of the fidelity already

    @property
    def skipped_frames(self) -> int:
        return self.in_store + self.in_file


def plan_import(store: CampaignStore, fidelity_hash: str, structures: Sequence[Atoms]) -> ImportPlan:
    """Sort the structures into new frames, labels for stored frames and duplicates (see :class:`ImportPlan`)."""
    index = FrameIndex()
    index_store_frames(store, {composition_key(a.numbers, a.pbc) for a in structures}, index,
                       [(a.numbers, a.positions) for a in structures])
    plan, attached = ImportPlan(), set()
    for k, atoms in enumerate(structures):
        ref = index.find(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc)
        if ref is None:
            index.add(("file", k), atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc)
            plan.new.append(k)
        elif isinstance(ref, tuple):
            plan.in_file += 1
            plan.labels_skipped += 1
        else:
            assert isinstance(ref, int)  # index_store_frames files the store's frames by frame id
            plan.in_store += 1
            if ref in attached or store.has_label(int(ref), fidelity_hash):
                plan.labels_skipped += 1
            else:
                plan.attach.append((k, int(ref)))
                attached.add(ref)
    return plan


def import_labelled(
    store: CampaignStore,
    fidelity: Fidelity,
    structures: Sequence[Atoms],
    *,
    results: Sequence[LabelResult] | None = None,
    plan: ImportPlan | None = None,
    batch: int = 1000,
    progress: Callable[[int, int, int], None] | None = None,
) -> ImportPlan:
    """Add labelled structures (energy and forces as calculator results) as ``import`` frames with ok labels,
    skipping duplicates (:func:`plan_import`); returns the plan carried out.

    Commits every ``batch`` frames; ``progress(done, total, seq)`` is called after each commit.
    Everything is validated before the first write (``results``: those of :func:`label_results`, if done),
    including the software versions against the store's (StoreError unless ``store.allow_version_mix``).
    """
    results = label_results(structures) if results is None else results
    plan = plan_import(store, fidelity.hash(), structures) if plan is None else plan
    items = [(k, -1) for k in plan.new] + plan.attach
    check_import_provenance(store, fidelity, [results[k].provenance for k, _ in items])
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        new = [k for k, frame_id in chunk if frame_id < 0]
        known = [(k, frame_id) for k, frame_id in chunk if frame_id >= 0]
        ids = store.add_frames([structures[k] for k in new], origin="import")
        ids = np.concatenate([ids, np.array([frame_id for _, frame_id in known], dtype=np.int64)])
        store.add_labels(fidelity, ids, [results[k] for k in new] + [results[k] for k, _ in known])
        seq = store.commit(phase="import")
        if progress:
            progress(start + len(chunk), len(items), seq)
    return plan


def check_import_provenance(store: CampaignStore, fidelity: Fidelity, provenances: Sequence[Mapping[str, str]]) -> None:
    """StoreError before anything is written if these labels' software differs from the store's for the fidelity."""
    _, problem = combine(store.label_provenance(fidelity.hash()), provenances, store.allow_version_mix)
    if problem and not store.allow_version_mix:
        raise StoreError(mix_error(fidelity.name, fidelity.hash(), problem))


def label_results(structures: Sequence[Atoms]) -> list[LabelResult]:
    """Ok labels from the structures' calculator results; AlloopError names the first frame without them."""
    return [_label_of(k, atoms) for k, atoms in enumerate(structures)]


def _label_of(k: int, atoms: Atoms) -> LabelResult:
    results = atoms.calc.results if atoms.calc is not None else {}
    if "energy" not in results or "forces" not in results:
        raise AlloopError(f"frame {k} has no energy and forces")
    energy, forces = float(results["energy"]), np.asarray(results["forces"], dtype=np.float64)
    if forces.shape != (len(atoms), 3):
        raise AlloopError(f"frame {k}: forces of shape {forces.shape} for {len(atoms)} atoms")
    if not (np.isfinite(energy) and np.isfinite(forces).all()):
        raise AlloopError(f"frame {k} has a non-finite energy or forces")
    return LabelResult(
        energy_eV=energy,
        forces_eV_per_A=forces,
        status=LabelStatus.OK,
        cpu_seconds=float(atoms.info.get("cpu_seconds", 0.0)),
        wall_seconds=float(atoms.info.get("wall_seconds", 0.0)),
        scf_cycles=int(atoms.info.get("scf_cycles", 0)),
        provenance=from_info(atoms.info),
    )
