"""The automatic evaluation set's phase (``evaluation: {auto: N}``): sample, label once, store; before the bootstrap.

Three steps, each skipped when the store says it is done, so a resumed campaign never redraws nor relabels: the
MD runs (one task per starting structure, :func:`~alloop.campaign.phases.surface_md.surface_md_samples` with the
set's own seeds) whose frames are stored and selected in the ledger's held-out cycle (marked ``sampled``); their
expensive labels through the campaign's label phase (marked ``labelled``); the set packed from the ok labels into
the store's evaluation set blob, which the training task scores every model on. What the set is:
:mod:`alloop.evaluation.auto`.
"""

from __future__ import annotations

from collections.abc import Callable

from alloop.campaign.execution.labeling_pool import LabelingPool
from alloop.campaign.execution.taskrun import run_tasks
from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.label import label
from alloop.campaign.phases.surface_md import SurfaceMD, surface_md_samples
from alloop.evaluation.auto import AutoSet, build_set, frames_per_run, run_seed, store_frames
from alloop.evaluation.records import BLOB
from alloop.store import ledger


def make_evaluation_set(ctx: PhaseContext, pool: LabelingPool, mark: Callable[[int, str], None],
                        late: Callable[[], object]) -> bool:
    """Make the automatic set (the steps not done yet); False when the deadline stopped it first. ``mark(cycle,
    phase)`` commits a finished step."""
    plan, store = ctx.settings.evaluation_auto, ctx.store
    if plan is None or store.get_blob(BLOB) is not None:
        return True
    n_runs = min(len(ctx.structures), plan.n_frames)
    if not ledger.phase_done(store, ledger.EVALUATION, ledger.SAMPLED):
        if late():
            return False
        ctx.progress.update(cycle=ledger.EVALUATION, phase="evaluation set: MD")
        ids = store_frames(store, _sample(ctx, plan, n_runs))
        mark(ledger.EVALUATION, ledger.SAMPLED)
        ctx.log(f"evaluation set: {len(ids)} frames of {plan.surface.name} MD at {plan.temperature_K:g} K from "
                f"{n_runs} structure(s), to be labelled at the expensive fidelity (apart from the label budget)")
    if not ledger.phase_done(store, ledger.EVALUATION, ledger.LABELLED):
        if late() or not label(ctx, pool, ledger.EVALUATION, ("expensive",), late):
            return False
        mark(ledger.EVALUATION, ledger.LABELLED)
    frames = build_set(store, plan, ctx.fidelities["expensive"], n_runs)
    store.put_blob(BLOB, frames.to_bytes())
    store.commit(note=store.record.get("note"))
    ctx.log(f"evaluation set: {frames.n_frames} frames stored (SHA-256 {frames.header['sha256'][:12]}; "
            f"{frames.header['n_failed']} failed labels left out)")
    return True


def _sample(ctx: PhaseContext, plan: AutoSet, n_runs: int) -> list:
    """The frames of each run (one task per run, starting structures taken in order)."""
    md = SurfaceMD(temperature_K=plan.temperature_K, timestep_fs=plan.timestep_fs, friction_per_fs=plan.friction_per_fs,
                   equilibration_fs=plan.equilibration_fs, spacing_fs=plan.spacing_fs)
    per = frames_per_run(plan.n_frames, n_runs)
    args = [(ctx.structures[k], plan.surface, per[k], md, run_seed(plan.seed, k), ctx.settings.threads_per_worker)
            for k in range(n_runs)]
    runs = run_tasks(ctx.client, surface_md_samples, args, ctx.settings.max_task_retries)
    calls, cpu = sum(r[1] for r in runs), sum(r[2] for r in runs)
    ctx.log(f"evaluation set: {n_runs} independent {plan.surface.name} MD run(s), {plan.equilibration_fs:g} fs "
            f"equilibration then a frame every {plan.spacing_fs:g} fs ({calls} force calls, {cpu:.0f} CPU s)")
    return [r[0] for r in runs]
