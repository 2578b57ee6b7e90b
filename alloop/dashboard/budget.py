"""What is left of a campaign's limits, and where its stopping targets stand, from the config stored with it.

The limits are the campaign's ``schedule``: cycles (``n_cycles``), the CPU-second budget over both fidelities
(``budget_cpu_seconds``) and the label caps per fidelity (``max_labels``, bootstrap included, failures counted
as the loop counts them); spent is what the committed labels cost, and frames selected for a label that is not
committed yet are shown as in flight (the loop plans with them). The targets (validation force MAE, flag rate,
predicted force error of the MD) are compared with the latest cycle's value, as the loop does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from alloop.config import CampaignConfig
from alloop.config.campaign import ROLES
from alloop.errors import AlloopError
from alloop.fidelity import Fidelity
from alloop.store import ledger, tables
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import resolve_fidelity


def campaign_config(store: CampaignStore) -> CampaignConfig | None:
    """The campaign config stored with ``store``, or None (a store made by ``alloop import``, or one that does not
    validate any more)."""
    if not store.config:
        return None
    try:
        return CampaignConfig.from_dict(store.config, check_files=False)
    except (AlloopError, ValueError):
        return None


def role_fidelities(store: CampaignStore) -> dict[str, Fidelity]:
    """Campaign role -> its fidelity as stored (charge and spin as labelled), for the roles the config names."""
    out = {}
    for role in ROLES:
        try:
            out[role] = resolve_fidelity(role, store.config, store.fidelities())
        except (AlloopError, ValueError):  # no campaign config, or a role it cannot resolve
            continue
    return out


def role_of_hash(store: CampaignStore) -> dict[str, str]:
    """Stored fidelity hash -> its campaign role (``cheap``, ``expensive``)."""
    stored = store.fidelities()
    return {f.hash(): role for role, f in role_fidelities(store).items() if f.hash() in stored}


def _row(item: str, spent: float, limit: float | None, in_flight: int | None = None) -> dict[str, Any]:
    left = None if limit is None else max(0.0, float(limit) - float(spent))
    return {"item": item, "spent": float(spent), "limit": None if limit is None else float(limit), "left": left,
            "in_flight": in_flight}


def budget_left(store: CampaignStore, cycles: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """``{"limits": [{item, spent, limit, left, in_flight}], "targets": [{item, latest, target}]}`` (a limit or
    target of None: not set), or None for a store without a campaign config. ``cycles``: the ``cycles`` table."""
    cfg = campaign_config(store)
    if cfg is None:
        return None
    schedule = cfg.schedule
    fidelities = role_fidelities(store)
    spent = ledger.spend(store, fidelities)
    recorded = int(np.sum(cycles["cycle"] >= 0)) if cycles else 0
    limits = [_row("cycles", recorded, schedule.n_cycles),
              _row("labelling CPU s (both fidelities)", spent.total_cpu, schedule.budget_cpu_seconds)]
    caps = {"cheap": schedule.max_labels.cheap, "expensive": schedule.max_labels.expensive}
    for role, fid in fidelities.items():
        pending = np.setdiff1d(ledger.selected(store, role), ledger.labelled_ids(store, fid)).size
        limits.append(_row(f"{role} labels ({fid.name})", spent.labels[role], caps[role], int(pending)))
    return {"limits": limits, "targets": _targets(store, cfg, cycles)}


def _targets(store: CampaignStore, cfg: CampaignConfig, cycles: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The stopping targets with the latest recorded cycle's value (NaN before any)."""
    s = cfg.schedule
    last = int(np.flatnonzero(cycles["cycle"] >= 0)[-1]) if cycles and np.any(cycles["cycle"] >= 0) else None

    def latest(column: str) -> float:
        return math.nan if last is None else float(cycles[column][last])

    md_predicted = None if last is None else tables.cycle_predicted_error(store, int(cycles["cycle"][last]))
    return [
        {"item": "validation force MAE (eV/A), stops at or below", "latest": latest("val_force_mae_eV_per_A"),
         "target": s.target_val_force_mae_eV_per_A},
        {"item": "flag rate, stops below", "latest": latest("flag_rate"), "target": s.min_flag_rate},
        {"item": "predicted force error of the MD (eV/A), stops at or below",
         "latest": math.nan if md_predicted is None else md_predicted,
         "target": s.target_predicted_force_error_eV_per_A},
    ]
