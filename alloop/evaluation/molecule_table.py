"""Per molecule of a campaign of several: its frames, labels per fidelity, flagged share and evaluation errors.

A molecule is a formula (:mod:`alloop.system.molecules`), read off each frame's atomic numbers, so every store has
one without storing it. For a store whose frames (or evaluation set) hold two molecules or more,
:func:`molecule_status` counts per molecule: frames (all, and MD ones), the share of its MD frames flagged by
the uncertainty (Q-residual or predicted error above the limit), ok labels per fidelity (cheap first), and
the errors of the newest model scored on the evaluation set's frames of that molecule (``eval_molecules``).
The frames and labels of an automatic set (:func:`alloop.store.ledger.held_out_ids`) are counted there only, not
as the campaign's frames and labels.
``alloop status`` prints it (:func:`format_molecules`); ``alloop report`` writes it into summary.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alloop.evaluation.records import molecule_scores
from alloop.labeling.result import STATUS_CODES, LabelStatus
from alloop.store.campaign import CampaignStore
from alloop.store.coverage import ROLE_ORDER, fidelity_roles
from alloop.store.ledger import held_out_ids
from alloop.store.schema import ORIGIN_CODES, FrameFlag
from alloop.system.molecules import frame_molecules


def store_molecules(store: CampaignStore) -> np.ndarray:
    """The molecule (formula) of every committed frame, in frame-id order."""
    numbers = store.frame_numbers()
    offsets = np.concatenate([[0], np.cumsum(numbers["n_atoms"])])
    return frame_molecules(numbers["numbers"], offsets)


def molecule_status(store: CampaignStore) -> dict[str, Any] | None:
    """``{"fidelities": [names, cheap first], "model_version": newest model scored per molecule or None, "rows":
    [per molecule: molecule, frames, md_frames, flagged_share, labels {fidelity: ok labels}, eval_frames,
    eval_force_mae_eV_per_A, eval_energy_mae_per_atom_eV]}``; None for a store of fewer than two molecules."""
    molecules = store_molecules(store)
    scores = molecule_scores(store)
    version = max(scores) if scores else None
    evaluated = scores.get(version, {}) if version is not None else {}
    names = list(dict.fromkeys([*molecules.tolist(), *evaluated]))
    if len(names) < 2:
        return None
    meta = store.frame_meta(columns=["origin", "flags"])
    md = meta["origin"] == ORIGIN_CODES["md"]
    flagged = (meta["flags"] & int(FrameFlag.FLAGGED)) != 0
    held = held_out_ids(store)
    own = ~np.isin(np.arange(molecules.size), held)  # the automatic test set's frames are not the campaign's
    labelled = _labelled(store, molecules, held)
    rows = []
    for name in names:
        mine = (molecules == name) & own
        n_md = int((mine & md).sum())
        score = evaluated.get(name, {})
        rows.append({
            "molecule": name, "frames": int(mine.sum()), "md_frames": n_md,
            "flagged_share": float((mine & md & flagged).sum() / n_md) if n_md else None,
            "labels": {fidelity: int(counts.get(name, 0)) for fidelity, counts in labelled.items()},
            "eval_frames": score.get("n_frames"), "eval_force_mae_eV_per_A": score.get("eval_force_mae_eV_per_A"),
            "eval_energy_mae_per_atom_eV": score.get("eval_energy_mae_per_atom_eV"),
        })
    return {"fidelities": list(labelled), "model_version": version, "rows": rows}


def _labelled(store: CampaignStore, molecules: np.ndarray, held: np.ndarray) -> dict[str, dict[str, int]]:
    """Fidelity name -> molecule -> frames with an ok label of it (the campaign's cheap fidelity first), the frames
    ``held`` out left out."""
    stored, roles = store.fidelities(), fidelity_roles(store)
    out: dict[str, dict[str, int]] = {}
    for h in sorted(stored, key=lambda h: (ROLE_ORDER.index(roles.get(h, "")), stored[h]["name"])):
        table = store.label_columns(h, ["frame_id", "status"])
        ok = table["status"] == STATUS_CODES[LabelStatus.OK]
        ids = np.unique(table["frame_id"][ok])
        found, counts = np.unique(molecules[ids[~np.isin(ids, held)]], return_counts=True)
        out[stored[h]["name"]] = {str(m): int(c) for m, c in zip(found, counts, strict=True)}
    return out


def molecule_cells(row: dict[str, Any], fidelities: list[str]) -> list[str]:
    """A row of :func:`molecule_status` as table cells: molecule, frames, MD frames, flagged %, labels per
    fidelity, evaluation frames, force MAE (eV/A) and energy MAE (meV/atom) ("-" where unknown)."""
    flagged, frames = row["flagged_share"], row["eval_frames"]
    mae, energy = row["eval_force_mae_eV_per_A"], row["eval_energy_mae_per_atom_eV"]
    return [row["molecule"], str(row["frames"]), str(row["md_frames"]),
            "-" if flagged is None else f"{100 * flagged:.0f} %",
            *(str(row["labels"][f]) for f in fidelities), "-" if frames is None else str(int(frames)),
            "-" if mae is None else f"{mae:.4f}", "-" if energy is None else f"{1000 * energy:.2f}"]


def molecule_headers(fidelities: list[str]) -> list[str]:
    """The column titles of :func:`molecule_cells`."""
    return ["molecule", "frames", "MD frames", "flagged", *(f"{f} labels" for f in fidelities), "eval frames",
            "eval F-MAE eV/A", "eval E-MAE meV/atom"]


def format_molecules(part: dict[str, Any] | None) -> list[str]:
    """``alloop status`` lines: the per-molecule table (none for a store of one molecule)."""
    if part is None:
        return []
    model = "" if part["model_version"] is None else f"; errors of model v{part['model_version']} on the evaluation set"
    headers = molecule_headers(part["fidelities"])
    cells = [molecule_cells(row, part["fidelities"]) for row in part["rows"]]
    widths = [max(len(h), *(len(c[k]) for c in cells)) for k, h in enumerate(headers)]
    lines = [f"molecules    {len(cells)} (frames, MD frames flagged, ok labels per fidelity{model})"]
    for line in (headers, *cells):
        lines.append("  " + "  ".join(c.ljust(w) if k == 0 else c.rjust(w)
                                      for k, (c, w) in enumerate(zip(line, widths, strict=True))))
    return lines
