"""The expensive selection phase: of a cycle's cheap-labelled frames, those with a large ASTEROID bias B, spread out.

This module orchestrates (the task, the store, the ledger, the log); what is eligible, what ranks and how the frames
are picked is :mod:`alloop.uncertainty.expensive_pick`, next to the cheap pick.

A method without a stage-1 model (``training.method: standard``) has no theta_0; its B is the delivered model
against the cheap level, which measures where the cheap level is wrong. ``selection.expensive_pick:
predicted-error`` ranks by the model's own predicted force error instead (its error model,
:mod:`alloop.uncertainty.error_model`), in the same score x distance rule (B when the model has no error model).

B is the bias of the newest stage-1 model (role ``theta0``; the newest model when
there is none) against the frames' cheap forces, computed by a task on a worker
(:func:`alloop.campaign.execution.bias_task.bias_task`: the driver never loads a model); frames
outside the thermal energy window (``selection.energy_window_sigma``) are never
chosen. With ``selection.diversity: fps`` the same task returns the frames'
descriptors under the newest model (the latent features the explore phase
selects with) and the pick is bias-weighted farthest-point sampling
(:func:`alloop.uncertainty.selection.select_expensive`); with ``none``, the
top-B. With ``selection.expensive_pick: coverage`` the task also describes the
frames already expensive-labelled, and the pick is the greedy max-min coverage
of feature space from them (B unused but for failed cheap labels). With
``committee`` the task computes the force deviation of the newest model and the
committee trained with it (role ``committee``), which replaces B in the
deviation x distance pick (query by committee). :func:`start_selection`
submits the task, :func:`finish_selection` records the chosen frames in the
ledger and flags them (committed by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from alloop.campaign.execution.bias_task import BiasTaskResult, bias_task
from alloop.campaign.execution.taskrun import BackgroundTask
from alloop.campaign.phases import representative
from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.train import committee_blobs
from alloop.store import ledger
from alloop.store.campaign import CampaignStore
from alloop.store.labels import LabelTable
from alloop.store.schema import FrameFlag
from alloop.uncertainty.energy_window import within_thermal_window
from alloop.uncertainty.expensive_pick import candidate_rows, pick_expensive, pick_rule, pick_score
from alloop.uncertainty.herding import information_density, representative_quota
from alloop.uncertainty.pick_draw import Draw
from alloop.uncertainty.selection import GEOMETRY_RULES, KMEANSPP_POWER

#: the draws' seed salt (``selection.pick_beta``; with the campaign seed and the cycle)
DRAW_SALT = 11


@dataclass
class SelectionRun:
    """A cycle's cheap-labelled frames awaiting their bias B (the task computing it)."""

    cycle: int
    table: LabelTable  # the cheap labels when the selection started
    rows: np.ndarray  # rows of ``table``
    frame_ids: np.ndarray
    frames: list[Atoms]
    task: BackgroundTask


def select_expensive(ctx: PhaseContext, cycle: int, budget: int, priority: int = 0) -> None:
    """Choose up to ``budget`` of the frames cheap-labelled in ``cycle`` (not expensive-labelled yet); waits."""
    run = start_selection(ctx, cycle, budget, priority)
    if run is not None:
        finish_selection(ctx, run, budget)


def start_selection(ctx: PhaseContext, cycle: int, budget: int, priority: int = 0) -> SelectionRun | None:
    """Submit the bias B of ``cycle``'s candidates; None when there is nothing to choose from."""
    store, cheap, expensive = ctx.store, ctx.fidelities["cheap"], ctx.fidelities["expensive"]
    ids = ledger.selected(store, "cheap", cycle)
    table = store.labels(cheap.hash()) if cheap.hash() in store.fidelities() else None
    if table is None or budget == 0 or ids.size == 0:
        return None
    rows = candidate_rows(table.frame_id, table.ok, ids, ledger.labelled_ids(store, expensive))
    if rows.size == 0:
        return None
    frame_ids = table.frame_id[rows]
    frames = store.get_frames(frame_ids)
    forces = np.concatenate([table.frame_forces(int(r)) for r in rows])
    model = latest_blob(store, "model")
    selection = ctx.settings.selection
    herding = representative_quota(selection.exploration, budget) > 0
    target = representative.target_frames(ctx, cycle) if herding or selection.density_weight is not None else []
    features = model if selection.diversity == "fps" or target else None
    labelled = (ctx.reference_frames("expensive", cycle)
                if selection.expensive_pick in GEOMETRY_RULES or target else None)
    committee = None
    if selection.expensive_pick == "committee":
        members = committee_blobs(store, selection.committee_size - 1)
        committee = [model, *members] if model is not None and members else None
    theta0 = latest_blob(store, "theta0")
    own = selection.expensive_pick == "predicted-error"  # the model's own predicted error, not B
    task = BackgroundTask(ctx.client, bias_task, (theta0 or model, frames, forces, ctx.settings.threads_per_worker, features,
                                                  labelled, committee, model if own else None, target or None),
                          ctx.settings.max_task_retries, priority)
    return SelectionRun(cycle, table, rows, frame_ids, frames, task)


def finish_selection(ctx: PhaseContext, run: SelectionRun, budget: int) -> None:
    """Choose the frames of a :class:`SelectionRun` by B (waits for its bias B if not back yet)."""
    store, expensive = ctx.store, ctx.fidelities["expensive"]
    result: BiasTaskResult = run.task.result()
    rule = pick_rule(ctx.settings.selection.expensive_pick, result.deviation)
    window, inside = "", None
    sigma = ctx.settings.selection.energy_window_sigma
    if sigma is not None:
        inside = _thermal_mask(ctx, run.table, run.rows, run.frames, sigma)
        window = f"; {int((~inside).sum())} outside the thermal energy window"
    score, what = pick_score(result.bias, result.predicted, result.deviation, inside)
    selection = ctx.settings.selection
    score, what = density_weighted(score, what, selection.density_weight, result.descriptors, result.target)
    herded = representative.expensive_quota(ctx, run.frame_ids, result.target, result.descriptors, result.labelled,
                                            score, budget)
    descriptors = result.descriptors if selection.diversity == "fps" else None  # herding may have asked for them
    labelled = result.labelled if rule in GEOMETRY_RULES else None
    beta = KMEANSPP_POWER if rule == "kmeans++" else selection.pick_beta
    draw = None if beta is None else Draw(beta, np.random.default_rng((ctx.settings.seed, DRAW_SALT, run.cycle)))
    chosen, name = pick_expensive(score, what, rule, budget, descriptors, labelled, preselected=herded, draw=draw)
    ledger.select(store, run.cycle, run.frame_ids[chosen.indices], "expensive", chosen.reasons)
    store.set_flags(run.frame_ids[chosen.indices], FrameFlag.SELECTED_EXPENSIVE)
    median = f"{np.nanmedian(score):.3f}" if np.isfinite(score).any() else "n/a"
    ctx.log(f"cycle {run.cycle}: {len(chosen.indices)} of {run.rows.size} cheap-labelled frames go to "
            f"'{expensive.name}' ({name}, median {what} {median} eV/A{window})")


def density_weighted(score: np.ndarray, what: str, weight: float | None, descriptors: np.ndarray | None,
                     target: np.ndarray | None) -> tuple[np.ndarray, str]:
    """``score`` x (each candidate's information density in the cycle's MD target)^``weight``
    (``selection.density_weight``) and its name; unchanged without a weight, or without a target (a cycle whose MD
    ran no frame at the campaign temperature)."""
    if weight is None or descriptors is None or target is None or len(target) == 0:
        return score, what
    return score * information_density(descriptors, target) ** weight, f"{what} x density^{weight:g}"


def latest_blob(store: CampaignStore, role: str = "model") -> bytes | None:
    """The newest checkpoint of ``role`` as checkpoint bytes, or None."""
    versions = [c for c in store.checkpoints() if c.get("role") == role]
    if not versions:
        return None
    return store.checkpoint(int(versions[-1]["version"]))[0]


def _thermal_mask(ctx: PhaseContext, table: LabelTable, rows: np.ndarray, frames: list[Atoms],
                  n_sigma: float) -> np.ndarray:
    """Which of the cheap-labelled ``rows`` lie within the thermal energy window (see energy_window)."""
    ok = np.flatnonzero(table.ok)
    reference = ctx.store.frame_arrays(table.frame_id[ok])  # every cheap label: arrays, no Atoms
    numbers = np.split(reference["numbers"], np.cumsum(reference["n_atoms"])[:-1])
    return within_thermal_window(table.energy[rows], [a.numbers for a in frames], table.energy[ok],
                                 numbers, ctx.settings.selection.temperature_K, n_sigma,
                                 periodic=[bool(a.pbc.all()) for a in frames])
