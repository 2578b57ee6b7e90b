"""The expensive selection: of a cycle's cheap-labelled frames, those with the largest ASTEROID bias B.

B is the bias of the newest stage-1 model (role ``theta0``; the newest model when
there is none) against the frames' cheap forces; frames outside the thermal
energy window (``selection.energy_window_sigma``) are never chosen. The chosen
frames are recorded in the ledger and flagged (committed by the caller).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from alloop.campaign import ledger
from alloop.campaign.context import PhaseContext
from alloop.potentials.base import Potential
from alloop.potentials.checkpoint import model_from_bytes
from alloop.store.campaign import CampaignStore
from alloop.store.labels import LabelTable
from alloop.store.schema import FrameFlag
from alloop.uncertainty.bias import model_bias
from alloop.uncertainty.energy_window import within_thermal_window
from alloop.uncertainty.selection import select_expensive as top_bias


def select_expensive(ctx: PhaseContext, cycle: int, budget: int) -> None:
    """Choose up to ``budget`` of the frames cheap-labelled in ``cycle`` (not expensive-labelled yet)."""
    store, cheap, expensive = ctx.store, ctx.fidelities["cheap"], ctx.fidelities["expensive"]
    ids = ledger.selected(store, "cheap", cycle)
    table = store.labels(cheap.hash()) if cheap.hash() in store.fidelities() else None
    if table is None or budget == 0 or ids.size == 0:
        return
    rows = np.flatnonzero(np.isin(table.frame_id, ids) & table.ok)
    rows = rows[~np.isin(table.frame_id[rows], ledger.labelled_ids(store, expensive))]
    if rows.size == 0:
        return
    frame_ids = table.frame_id[rows]
    frames = store.get_frames(frame_ids)
    forces = np.concatenate([table.frame_forces(int(r)) for r in rows])
    bias = model_bias(latest_model(store, "theta0") or latest_model(store, "model"), frames, forces)
    window = ""
    sigma = ctx.settings.selection.energy_window_sigma
    if sigma is not None:
        inside = _thermal_mask(ctx, table, rows, frames, sigma)
        bias = np.where(inside, bias, np.nan)  # never selected
        window = f"; {int((~inside).sum())} outside the thermal energy window"
    chosen = top_bias(bias, budget)
    ledger.select(store, cycle, frame_ids[chosen.indices], "expensive", chosen.reasons)
    store.set_flags(frame_ids[chosen.indices], FrameFlag.SELECTED_EXPENSIVE)
    median = f"{np.nanmedian(bias):.3f}" if np.isfinite(bias).any() else "n/a"
    ctx.log(f"cycle {cycle}: {len(chosen.indices)} of {rows.size} cheap-labelled frames go to "
            f"'{expensive.name}' (top bias B, median B {median} eV/A{window})")


def latest_model(store: CampaignStore, role: str = "model") -> Potential | None:
    """The newest checkpoint of ``role`` as a model, or None."""
    versions = [c for c in store.checkpoints() if c.get("role") == role]
    if not versions:
        return None
    blob, _ = store.checkpoint(int(versions[-1]["version"]))
    return model_from_bytes(blob)[0]


def _thermal_mask(ctx: PhaseContext, table: LabelTable, rows: np.ndarray, frames: list[Atoms],
                  n_sigma: float) -> np.ndarray:
    """Which of the cheap-labelled ``rows`` lie within the thermal energy window (see energy_window)."""
    ok = np.flatnonzero(table.ok)
    reference = ctx.store.get_frames(table.frame_id[ok])
    return within_thermal_window(table.energy[rows], [a.numbers for a in frames], table.energy[ok],
                                 [a.numbers for a in reference], ctx.settings.selection.temperature_K, n_sigma)
