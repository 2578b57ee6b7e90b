"""Restarts of a fresh model that learned nothing (:func:`train_fresh`).

A run from a new initialisation, with a budget of ``STALL_MIN_STEPS`` steps or more, whose last validation force
MAE is above ``STALLED_FRACTION`` of its start (a network that died at a high learning rate, early or after a few
epochs, and stays at zero forces) is run again from another initialisation at a lower learning rate, at most
``MAX_FRESH_RESTARTS`` times; the best attempt is returned and every restart is logged. Warm starts are never
restarted (their start may be the best).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from alloop.potentials.base import Potential
from alloop.training.data import FrameDataset
from alloop.training.epochs import AuxiliaryLoss
from alloop.training.settings import TrainSettings
from alloop.training.trainer import Logger, TrainResult, train

#: a fresh run with a budget of at least STALL_MIN_STEPS optimiser steps whose last validation force MAE is above
#: this fraction of its starting one learned nothing (shorter runs are not judged: they may just be slow)
STALLED_FRACTION = 0.9
STALL_MIN_STEPS = 200
#: restarts of a stalled fresh run, each from a new initialisation with the learning rate x RESTART_LR_FACTOR
MAX_FRESH_RESTARTS = 2
RESTART_LR_FACTOR = 0.3
#: seed offset between the initialisations of a fresh run's attempts
RESTART_SEED_STEP = 1000


def stalled(result: TrainResult) -> bool:
    """Whether a run with a budget of at least ``STALL_MIN_STEPS`` steps ended no better than it started: its last
    validation force MAE above ``STALLED_FRACTION`` of its first (or not finite). A network that learned for a few
    epochs and then died ends where it started, although its best epoch, which an early stop returns, is early."""
    if len(result.history) < 2 or result.planned_steps < STALL_MIN_STEPS:
        return False
    start, last = result.history[0].val_force_mae, result.history[-1].val_force_mae
    return not math.isfinite(last) or last > STALLED_FRACTION * start


def train_fresh(
    new_model: Callable[[int], Potential],
    train_set: FrameDataset,
    val_set: FrameDataset,
    settings: TrainSettings,
    log: Logger | None = None,
    tag: str = "",
    replay: FrameDataset | None = None,
    auxiliary: AuxiliaryLoss | None = None,
) -> tuple[Potential, TrainResult]:
    """Train ``new_model(attempt)`` (a fresh initialisation; ``attempt`` = 0, 1, ... must give different ones);
    restart a stalled attempt (:func:`stalled`) at ``RESTART_LR_FACTOR`` x the learning rate, at most
    ``MAX_FRESH_RESTARTS`` times. Returns the attempt with the lowest validation force MAE and its result
    (``restarts``: how many new initialisations were tried)."""
    prefix = f"{tag} " if tag else ""
    s = settings
    best: tuple[Potential, TrainResult] | None = None
    for attempt in range(MAX_FRESH_RESTARTS + 1):
        model = new_model(attempt)
        result = train(model, train_set, val_set, s, log=log, tag=tag, replay=replay, auxiliary=auxiliary)
        if best is None or result.best_val_force_mae < best[1].best_val_force_mae:
            best = (model, result)
        if not stalled(result):
            break
        start = result.history[0].val_force_mae
        if attempt == MAX_FRESH_RESTARTS:
            if log:
                log(f"{prefix}WARNING: still stalled after {attempt} restarts (validation F-MAE "
                    f"{best[1].best_val_force_mae:.4f} eV/A, start {start:.4f}): the best attempt is kept")
            break
        s = replace(s, lr=max(s.lr * RESTART_LR_FACTOR, s.min_lr), seed=s.seed + RESTART_SEED_STEP)
        if log:
            log(f"{prefix}stalled: validation F-MAE {result.history[-1].val_force_mae:.4f} eV/A at the end, above "
                f"{STALLED_FRACTION:g} x its start {start:.4f}; "
                f"restart {attempt + 1}/{MAX_FRESH_RESTARTS} from a new initialisation at lr {s.lr:.2e}")
    assert best is not None  # the loop ran at least once
    model, result = best
    result.restarts = attempt
    return model, result
