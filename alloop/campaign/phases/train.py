"""The train phase: a training task on every ok label of the store, its models committed with the cycle's row.

The request holds the labels in frame-id order (:func:`labelled_arrays`), the
cycle's ASTEROID settings (shortened for a warm start), the Q-residual settings
and, with warm starts, the previous cycle's checkpoints. A warm-started cycle's
labels are bounded per role (``training.warm_sample_cheap``, ``_expensive``):
every label of the frames explored in this cycle and the one before, the rest a
sample of the older ones seeded by the campaign seed and the cycle
(:func:`alloop.store.sample.bounded_sample`); the bootstrap, cold cycles and the
final retrain get every label. The result's models
(stage 1 ``theta0``, stage 2 ``stage2``, the new ``model``, with
``selection.expensive_pick: committee`` the other members of the committee, role ``committee``), the uncertainty
model, the ASTEROID bias rows and the ``cycles`` row are committed together by
the ``trained`` phase mark; the model's checkpoint metadata records the frame
ids on each side of the validation splits (``split``: kind -> train/val). The
task also scores its model on the campaign's evaluation set, if there is one
(the driver loads no model). A method whose label sets the store lacks (``asteroid``
without an ok cheap label) stops the campaign with the error of
:func:`alloop.training.methods.check_labels` before any task is submitted. A final retrain (``training.final_retrain``) is
compared with the model it would replace on its own validation frames; if it
is more than 10 % worse, the previous weights are committed again as the cycle's model and
the retrained one is kept under the role ``rejected``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alloop.campaign.execution.taskrun import BackgroundTask
from alloop.campaign.execution.train_request import TRAIN_TOPIC, LabelledArrays, TrainRequest, TrainTaskResult
from alloop.campaign.execution.train_task import train_task
from alloop.campaign.phases import original as originals
from alloop.campaign.phases.context import UNCERTAINTY_BLOB, PhaseContext, model_version
from alloop.campaign.phases.cycle_record import record_cycle
from alloop.campaign.phases.stop_rules import N_LABELS_KEY, ok_label_counts
from alloop.errors import AlloopError
from alloop.evaluation import campaign as evaluation
from alloop.evaluation.records import BLOB as EVALUATION_BLOB
from alloop.fidelity import Fidelity
from alloop.store import ledger, tables
from alloop.store.campaign import CampaignStore
from alloop.store.sample import recent_sample
from alloop.training.methods import check_labels


@dataclass(frozen=True)
class WarmSample:
    """A warm-started cycle's bound on one role's labels: at most ``cap``, every label of the frames explored in
    ``cycle`` and the one before, the rest drawn from the older ones with the seed (``seed``, ``cycle``, ``salt``)."""

    cap: int | None
    cycle: int
    seed: int
    salt: int = 0

    def rows(self, store: CampaignStore, frame_ids: np.ndarray) -> np.ndarray:
        """Indices into ``frame_ids`` (ascending) of the labels the cycle trains on."""
        return recent_sample(store, frame_ids, self.cap, self.cycle, (self.seed, self.salt))


def labelled_arrays(store: CampaignStore, fidelity: Fidelity, sample: WarmSample | None = None) -> LabelledArrays:
    """The frames with a successful label at ``fidelity``, in frame-id order (with ``sample``: those it keeps).

    Labels are committed in the order they finish, which varies from run to run
    with parallel workers; ordering by frame id makes the training data (and so
    its validation split and the trained model) a function of the labels alone.
    """
    if fidelity.hash() not in store.fidelities():
        return LabelledArrays(np.zeros(0, np.int64), [], [], fidelity=fidelity.hash())
    table = store.labels(fidelity.hash())
    rows = np.flatnonzero(table.ok & ~np.isin(table.frame_id, ledger.held_out_ids(store)))  # never the test set
    rows = rows[np.argsort(table.frame_id[rows], kind="stable")]
    if sample is not None:
        rows = rows[sample.rows(store, table.frame_id[rows])]
    frames = store.get_frames(table.frame_id[rows])
    periodic = any(a.pbc.any() for a in frames)
    return LabelledArrays(
        frame_ids=table.frame_id[rows], numbers=[a.numbers for a in frames], positions=[a.positions for a in frames],
        energy=table.energy[rows], forces=[table.frame_forces(int(r)) for r in rows], fidelity=fidelity.hash(),
        cells=[a.cell.array for a in frames] if periodic else None, pbc=[a.pbc for a in frames] if periodic else None,
    )


def newest_checkpoint(ctx: PhaseContext, role: str) -> tuple[int, bytes] | None:
    """(version, bytes) of the store's newest checkpoint of ``role`` (None: there is none)."""
    try:
        version = model_version(ctx.store, role)
    except AlloopError:  # none yet
        return None
    return version, ctx.store.checkpoint(version)[0]


def warm_start_blobs(ctx: PhaseContext) -> dict[str, bytes]:
    """The newest checkpoint of each role (theta0, stage2, model) to continue from, if warm starts are on."""
    if not ctx.settings.training.warm_start:
        return {}
    newest = {role: newest_checkpoint(ctx, role) for role in ("theta0", "stage2", "model")}
    return {role: found[1] for role, found in newest.items() if found is not None}


def is_final(ctx: PhaseContext, cycle: int, final: bool | None = None) -> bool:
    """Whether ``cycle``'s training is the final retrain (``final`` if given; else when ``training.final_retrain``
    makes the last scheduled cycle's one)."""
    if final is not None:
        return final
    return ctx.settings.training.final_retrain and cycle == ctx.settings.stop.n_cycles - 1


def training_labels(ctx: PhaseContext, cycle: int, short: bool) -> tuple[LabelledArrays, LabelledArrays]:
    """The expensive and cheap labels of ``cycle``'s training: every ok label, or with ``short`` (a warm-started
    cycle) at most ``training.warm_sample_<role>`` of each role (:class:`WarmSample`)."""
    plan, seed = ctx.settings.training, ctx.settings.seed
    out = [labelled_arrays(ctx.store, ctx.fidelities[role],
                           WarmSample(plan.warm_sample.get(role), cycle, seed, salt) if short else None)
           for salt, role in enumerate(("expensive", "cheap"))]
    return out[0], out[1]


def train_request(ctx: PhaseContext, cycle: int, original: originals.Original | None, expensive: LabelledArrays,
                  cheap: LabelledArrays, final: bool | None = None, warm: dict[str, bytes] | None = None
                  ) -> TrainRequest:
    """Cycle ``cycle``'s training request on the store's labels (``final``: see :func:`is_final`; ``warm``: the
    checkpoints to continue from, None: :func:`warm_start_blobs` unless final)."""
    plan = ctx.settings.training
    initial = None
    if plan.from_checkpoint:  # the store's copy of the file's model (prepared by run())
        version = originals.stored_version(ctx.store)
        assert version is not None  # run() stored the original
        initial = ctx.store.checkpoint(version)[0]
    # a periodic cycle continues the previous models briefly; the naive strategy's one fine-tune on all the
    # labels starts from the bootstrap model too, but with the full budget and learning rate; with
    # training.final_retrain the last scheduled cycle starts afresh (scratch or the pretrained model), full budget
    final = is_final(ctx, cycle, final)
    if warm is None:
        warm = {} if final else warm_start_blobs(ctx)
    committee = 1 if final else plan.committee_size  # the delivered model picks no frames: no committee for it
    incumbent = newest_checkpoint(ctx, "model") if final else None
    short = bool(warm) and ctx.settings.periodic
    return TrainRequest(
        method=plan.method, architecture=plan.architecture, elements=ctx.elements,
        hyperparameters=dict(plan.hyperparameters), expensive=expensive, cheap=cheap if len(cheap) else None,
        unlabelled=None,  # score matching is not a campaign method (config.training.TrainingConfig)
        settings=plan.stages(cycle, warm=short, final=final), uq_settings=plan.uncertainty, initial_model=initial, warm=warm,
        threads=plan.threads, metadata={"cycle": cycle, **({"final_retrain": True} if final else {})},
        baseline=plan.baseline,
        replay=_replay_pool(original, ctx.settings.seed) if plan.replay else None,
        evaluation=ctx.store.get_blob(EVALUATION_BLOB),
        incumbent=None if incumbent is None else incumbent[1], incumbent_version=None if incumbent is None else incumbent[0],
        committee=committee, committee_warm=committee_blobs(ctx.store, committee - 1) if warm else [],
        refit=final and plan.final_refit,
        calibration_folds=plan.calibration_folds if final and plan.final_refit else 1,
        calibration_temperature_K=None if ctx.settings.explore.ladder_K else ctx.settings.explore.temperature_K,
        error_exponent=plan.error_exponent,
    )


def committee_blobs(store: CampaignStore, n: int) -> list[bytes]:
    """The newest committee's ``n`` other members (role ``committee``, stored in member order by one training), as
    checkpoint bytes; fewer (none) when the store holds fewer."""
    versions = [int(c["version"]) for c in store.checkpoints() if c.get("role") == "committee"]
    return [store.checkpoint(v)[0] for v in versions[-n:]] if n > 0 and len(versions) >= n else []


def _replay_pool(original: originals.Original | None, seed: int) -> LabelledArrays:
    if original is None:
        raise AlloopError("training.replay_fraction: replay needs the campaign's original (pretrained) model")
    return original.replay_pool(seed)


@dataclass
class TrainingRun:
    """A cycle's training task in flight (:func:`start_training`), committed by :func:`finish_training`."""

    cycle: int
    task: BackgroundTask
    n_expensive: int
    cheap: LabelledArrays
    n_labels: dict[str, int] = field(default_factory=dict)  # role -> the store's ok labels (a warm sample: more)

    def done(self) -> bool:
        return self.task.done()


def start_training(ctx: PhaseContext, cycle: int, original: originals.Original | None,
                   prefix: str = "", priority: int = 0, final: bool | None = None) -> TrainingRun:
    """Submit the training task of ``cycle`` (scheduler ``priority``; ``final``: see :func:`train_request`) on every
    ok label of the store; its log lines are echoed as they come (after ``prefix``)."""
    ctx.progress.update(cycle=cycle, phase="training")
    final = is_final(ctx, cycle, final)
    warm = {} if final else warm_start_blobs(ctx)
    short = bool(warm) and ctx.settings.periodic  # a warm start: shorter budgets, bounded labels
    expensive, cheap = training_labels(ctx, cycle, short)
    if len(expensive) < 2:
        raise AlloopError(f"training needs at least 2 expensive labels with status ok, the store has {len(expensive)}")
    check_labels(ctx.settings.training.method, ["expensive", *(["cheap"] if len(cheap) else [])])  # before the task
    n_labels = ok_label_counts(ctx.store, ctx.fidelities) if short else {"expensive": len(expensive),
                                                                        "cheap": len(cheap)}
    request = train_request(ctx, cycle, original, expensive, cheap, final, warm)
    ctx.client.subscribe_topic(TRAIN_TOPIC, lambda event: ctx.log(f"  {prefix}{event[1]}"))
    task = BackgroundTask(ctx.client, train_task, (request,), ctx.settings.max_task_retries, priority)
    return TrainingRun(cycle, task, len(expensive), cheap, n_labels)


def finish_training(ctx: PhaseContext, run: TrainingRun, original: originals.Original | None,
                    mark: bool = True) -> dict[str, Any]:
    """Wait for ``run``, commit its models and the cycle's row (marked ``trained`` unless ``mark`` is off)."""
    cycle = run.cycle
    try:
        result = run.task.result()
    finally:
        ctx.client.unsubscribe_topic(TRAIN_TOPIC)
    version = _store_models(ctx, cycle, result, run)
    record_cycle(ctx, cycle, version, result.metrics, result.seconds, original, result.evaluation)
    evaluation.record_molecules(ctx.store, version, cycle, result.molecules)
    _record_uncertainty(ctx, version, cycle, result)
    if mark:
        ctx.record_losses(cycle, ledger.TRAINED)
        ledger.mark_phase(ctx.store, cycle, ledger.TRAINED, note={"model_version": version})
    mae = result.metrics.get("force_mae_eV_per_A")
    ctx.progress.update(val_force_mae=mae)
    ctx.log(f"cycle {cycle}: model v{version} trained in {result.seconds:.0f} s on {_trained_on(run)}; validation "
            f"force MAE {mae:.4f} eV/A")
    return result.metrics


def _trained_on(run: TrainingRun) -> str:
    """"N expensive and M cheap labels", with "N of K" and "(a warm sample)" when a warm sample left some out."""
    used = {"expensive": run.n_expensive, "cheap": len(run.cheap)}
    parts = [f"{n}" if run.n_labels.get(role, n) <= n else f"{n} of {run.n_labels[role]}" for role, n in used.items()]
    sampled = any(run.n_labels.get(role, n) > n for role, n in used.items())
    return f"{parts[0]} expensive and {parts[1]} cheap labels" + (" (a warm sample)" if sampled else "")


def _record_uncertainty(ctx: PhaseContext, version: int, cycle: int, result: TrainTaskResult) -> None:
    """The evaluation set's Q-residual coverage and predicted error under the new model (rows and log lines)."""
    if result.coverage is not None:
        evaluation.record_coverage(ctx.store, version, cycle, result.coverage)
        ctx.log(f"model v{version}: {100 * result.coverage['covered_fraction']:.0f} % of the evaluation set within "
                f"the Q-residual limit (median Q {result.coverage['median_q']:.2f} x the limit)")
    if result.predicted is not None:
        evaluation.record_predicted(ctx.store, version, cycle, result.predicted)
        measured = (result.evaluation or {}).get("eval_force_mae_eV_per_A", float("nan"))
        ctx.log(f"model v{version}: predicted force error on the evaluation set "
                f"{result.predicted['predicted_force_mae_eV_per_A']:.4f} eV/A (measured {measured:.4f}), Spearman rho "
                f"{result.predicted['error_spearman']:.2f}, {100 * result.predicted['bound_coverage']:.0f} % of frames "
                "below the predicted bound")


def train(ctx: PhaseContext, cycle: int, original: originals.Original | None, mark: bool = True,
          final: bool | None = None) -> dict[str, Any]:
    """Train on every ok label, commit the models and the cycle's row (marked ``trained`` unless ``mark`` is off;
    ``final``: see :func:`train_request`)."""
    return finish_training(ctx, start_training(ctx, cycle, original, final=final), original, mark)


def _store_models(ctx: PhaseContext, cycle: int, result: TrainTaskResult, run: TrainingRun) -> int:
    """Add the result's checkpoints, uncertainty model and bias rows to the store; returns the model's version. The
    model records the ok labels it was trained on per role (not when a rejected final retrain left older weights)."""
    store, cheap = ctx.store, run.cheap
    trained_on = {} if result.rejected_blob is not None else {  # a warm sample: the labels it was drawn from
        N_LABELS_KEY: {"expensive": run.n_expensive, "cheap": len(cheap), **run.n_labels}}
    if result.bias_model_blob is not None:
        store.add_checkpoint(result.bias_model_blob, {"cycle": cycle}, role="theta0")
    if result.pretrained_blob is not None:
        store.add_checkpoint(result.pretrained_blob, {"cycle": cycle}, role="stage2")
    if result.rejected_blob is not None:
        store.add_checkpoint(result.rejected_blob, {"cycle": cycle, "final_retrain_rejected": True}, role="rejected")
    if result.validated_blob is not None:
        store.add_checkpoint(result.validated_blob, {"cycle": cycle}, role="validated")
    for k, blob in enumerate(result.committee_blobs, start=1):
        store.add_checkpoint(blob, {"cycle": cycle, "member": k}, role="committee")
    version = store.add_checkpoint(result.model_blob, {"cycle": cycle, "metrics": result.metrics, "gamma": result.gamma,
                                                       "split": result.split_frames, **trained_on}, role="model")
    store.put_blob(UNCERTAINTY_BLOB, result.uq_blob)
    if result.bias is not None and cheap is not None and len(cheap):
        tables.append(store, tables.BIAS, model_version=np.full(len(cheap), version), frame_id=cheap.frame_ids,
                      B=np.asarray(result.bias, float), w=np.asarray(result.weights, float))
    return version
