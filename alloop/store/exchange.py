"""Labelled structures in and out of a store as extended XYZ, losslessly.

ASE's extxyz writer prints positions and forces with 8 decimals. The writer
here prints every float with ``repr`` (shortest round-trip form) in standard
extxyz syntax, so ``ase.io.read`` gives back the stored float64 values bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.io.extxyz import key_val_dict_to_str

from alloop.errors import AlloopError
from alloop.io import write_extxyz as write_extxyz_exact
from alloop.fidelity import Fidelity
from alloop.labeling.result import STATUS_FROM_CODE, LabelResult, LabelStatus
from alloop.store.campaign import CampaignStore

#: per-frame metadata copied into ``atoms.info`` on export when set (not -1 / NaN)
_META_KEYS = ("replica", "md_step", "cycle", "model_version", "q_score", "t2_score", "flags")


def labelled_frames(store: CampaignStore, fidelity: str | Fidelity, *, all_status: bool = False) -> list[Atoms]:
    """Frames labelled at ``fidelity`` in frame-id order, with energy/forces (ok labels) and metadata in info."""
    from ase.calculators.singlepoint import SinglePointCalculator

    table = store.labels(fidelity)
    rows = np.argsort(table.frame_id, kind="stable")
    if not all_status:
        rows = rows[table.ok[rows]]
    frames = store.get_frames(table.frame_id[rows])
    out = []
    for atoms, row in zip(frames, rows):
        meta = atoms.info
        info: dict[str, Any] = {"frame_id": meta["frame_id"], "origin": meta["origin"]}
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
        if table.reason[row]:
            info["label_reason"] = str(table.reason[row])
        atoms.info = info
        if status is LabelStatus.OK:
            energy, forces = float(table.energy[row]), table.frame_forces(int(row))
            atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        out.append(atoms)
    return out


def import_labelled(
    store: CampaignStore,
    fidelity: Fidelity,
    structures: Sequence[Atoms],
    *,
    results: Sequence[LabelResult] | None = None,
    batch: int = 1000,
    progress: Callable[[int, int, int], None] | None = None,
) -> int:
    """Add labelled structures (energy and forces as calculator results) as ``import`` frames with ok labels.

    Commits every ``batch`` frames; ``progress(done, total, seq)`` is called after each commit.
    Everything is validated before the first write (``results``: those of :func:`label_results`, if done).
    """
    results = label_results(structures) if results is None else results
    total = len(structures)
    for start in range(0, total, batch):
        chunk = structures[start : start + batch]
        ids = store.add_frames(chunk, origin="import")
        store.add_labels(fidelity, ids, results[start : start + batch])
        seq = store.commit(phase="import")
        if progress:
            progress(start + len(chunk), total, seq)
    return total


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
    )
