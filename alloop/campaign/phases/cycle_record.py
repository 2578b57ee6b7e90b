"""A cycle's row of the ``cycles`` table: its model, MD frames and flag rate, spend, and the model's scores."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from alloop.campaign.phases import original as originals
from alloop.campaign.phases.context import PhaseContext
from alloop.evaluation.campaign import cycle_columns
from alloop.store import ledger, tables
from alloop.store.schema import FrameFlag


def record_cycle(ctx: PhaseContext, cycle: int, version: int, metrics: dict[str, Any], seconds: float,
                 original: originals.Original | None, evaluation: dict[str, float] | None = None) -> None:
    """Append the row of ``cycle`` (model ``version``, -1: none trained) to ``cycles`` (committed by the caller);
    ``evaluation``: the model's scores on the evaluation set if the training task computed them."""
    store = ctx.store
    sp = ledger.spend(store, ctx.fidelities)
    meta = store.frame_meta()
    md = (meta["origin"] == 2) & (meta["cycle"] == cycle)
    flagged = md & ((meta["flags"] & int(FrameFlag.FLAGGED)) > 0)
    tables.append(
        store, tables.CYCLES, cycle=[cycle], model_version=[version], md_frames=[int(md.sum())],
        flag_rate=[flagged.sum() / max(1, md.sum())], labels_cheap=[sp.labels["cheap"]],
        labels_expensive=[sp.labels["expensive"]], cpu_cheap_s=[sp.cpu_seconds["cheap"]],
        cpu_expensive_s=[sp.cpu_seconds["expensive"]],
        val_force_mae_eV_per_A=np.array([metrics.get("force_mae_eV_per_A", np.nan)], float),
        val_energy_mae_eV=np.array([metrics.get("energy_mae_eV", np.nan)], float), train_seconds=[seconds],
        time=[time.time()],
        **cycle_columns(store, version, cycle, ctx.log, evaluation),  # on the evaluation set (NaN without one)
        **originals.forgetting_columns(store, original, version, ctx.log),  # NaN without an original
    )
