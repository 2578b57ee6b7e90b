"""Supervised training of a Potential with the (weighted) Eq. 1 loss: the training recipe.

One function, :func:`train`, for every architecture:

- a fixed budget of optimiser steps (``max_steps``, or ``max_epochs`` passes
  over the data) with a warm-up + cosine learning-rate schedule (``lr`` ->
  ``min_lr``; ``"plateau"`` and ``"none"`` remain available);
- an exponential moving average (EMA) of the weights (``ema_decay``), which is
  what is evaluated, returned and checkpointed;
- the loss of :mod:`loss` (``"mse"`` by default; ``"mae"`` as in the ASTEROID
  code, ``"huber"``) with an energy weight large enough to constrain energies;
- output scale and shift from the training data: :func:`fit_output_scale`
  sets a fresh model's ``output_scale`` to the RMS of the training forces
  (callers that build fresh models call it, as ASTEROID's stages do), and the
  per-element reference energies of the training fidelity are fitted by least
  squares on the residuals ``E_label - E_model`` before training and re-fitted
  after it (the force loss cannot see a constant offset);
- rollback: an evaluation whose validation force MAE jumps above
  ``rollback_factor`` x the best (a run knocked out of its minimum, or a network
  collapsed to zero forces) or whose loss is not finite puts the best weights
  back, resets the optimiser and halves the learning rate for the rest of the
  run (at most ``max_rollbacks`` times; then a non-finite loss stops the run);
- early stopping only as a guard: the validation force MAE of the EMA weights
  is tracked every ``eval_every`` epochs; the run stops when it has not
  improved for ``patience`` evaluations (default: half the run) or when the
  loss is not finite, and then returns the best weights seen. Otherwise it
  returns the weights at the end of the budget (``select="final"``): the
  validation split did not choose them, so its error is an honest estimate.
  ``select="best"`` returns the best evaluated weights (the starting model
  included) instead;
- replay (``replay_fraction`` > 0 with a ``replay`` pool labelled by the
  original model): part of every batch comes from the pool and counts by its
  forces only (:mod:`replay`); with 0 the batches are exactly those without it;
- an ``auxiliary`` loss (optional): a callable of the model added to every
  step's loss (joint two-head training adds the cheap head's loss on a cheap
  batch, :mod:`two_head`); evaluation and selection still use the main data.

- restarts of a fresh model that learned nothing (:func:`train_fresh`): a run
  from a new initialisation, with a budget of ``STALL_MIN_STEPS`` steps or
  more, whose last validation force MAE is above ``STALLED_FRACTION`` of its
  start (a network that died at a high learning rate, early or after a few
  epochs, and stays at zero forces) is run again from another initialisation
  at a lower learning rate, at most ``MAX_FRESH_RESTARTS`` times; the best
  attempt is returned and every restart is logged. Warm starts are never
  restarted (their start may be the best).

Reproducible: the same model, data and ``seed`` give identical weights
(seeded torch RNG and seeded shuffling; CPU kernels used here are
deterministic). ``threads`` sets torch's intra-op threads for the call and
restores the previous value afterwards. Works for float32 and float64 models
(batches take the dtype of the model's parameters). In float32 a molecule's
absolute energy (thousands of eV) is rounded to ~1e-4 of an eV when the model
adds its references; use float64 models where sub-meV energies matter.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.training.data import FrameDataset
from alloop.training.epochs import AuxiliaryLoss, Steps, plan_budget, train_epoch
from alloop.training.metrics import validation_metrics
from alloop.training.optim import WeightAverage
from alloop.training.references import ReferenceFit, apply_references, model_references, refit_references
from alloop.training.replay import ReplayMix
from alloop.training.settings import TrainSettings

Logger = Callable[[str], None]
#: progress lines per run (every evaluation is kept in ``history``)
LOG_LINES_PER_RUN = 10
#: the learning rate is multiplied by this at each rollback
ROLLBACK_LR_FACTOR = 0.5
#: a fresh run with a budget of at least STALL_MIN_STEPS optimiser steps whose last validation force MAE is above
#: this fraction of its starting one learned nothing (shorter runs are not judged: they may just be slow)
STALLED_FRACTION = 0.9
STALL_MIN_STEPS = 200
#: restarts of a stalled fresh run, each from a new initialisation with the learning rate x RESTART_LR_FACTOR
MAX_FRESH_RESTARTS = 2
RESTART_LR_FACTOR = 0.3
#: seed offset between the initialisations of a fresh run's attempts
RESTART_SEED_STEP = 1000


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_force_mae: float  # eV/A, weighted by the validation frames' weights
    val_energy_mae: float  # eV
    lr: float
    seconds: float


@dataclass
class TrainResult:
    """What a run did. ``best_*`` describe the returned weights (epoch ``best_epoch``), chosen per ``selected``."""

    history: list[EpochRecord]
    best_epoch: int
    best_val_force_mae: float
    best_val_energy_mae: float
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    diverged: bool
    seconds: float
    references: dict[int, float] = field(default_factory=dict)
    reference_fit: ReferenceFit | None = None
    initial_fingerprint: str = ""
    steps: int = 0
    selected: str = "final"
    output_scale: float = 1.0
    replay_per_batch: int = 0  # replay frames in every batch (0: no replay)
    rollbacks: int = 0  # restarts from the best weights after a validation spike
    restarts: int = 0  # new initialisations after stalled attempts (train_fresh)
    planned_steps: int = 0  # the run's budget (``steps``: those done before any early stop)


def parameter_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the model's trainable parameters (names, dtypes, values); buffers such as the
    reference energies are left out, so a change of fidelity does not change it."""
    digest = hashlib.sha256()
    for name, tensor in model.named_parameters():
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def format_record(record: EpochRecord, tag: str = "") -> str:
    """The one-line progress report of an evaluation."""
    train = "   -    " if math.isnan(record.train_loss) else f"{record.train_loss:.4g}"
    return (
        f"{tag + ' ' if tag else ''}epoch {record.epoch:4d}  train loss {train:>9}  "
        f"val F-MAE {record.val_force_mae:.4f} eV/A  val E-MAE {record.val_energy_mae:.4f} eV  "
        f"lr {record.lr:.2e}  {record.seconds:.1f}s"
    )


def _optimizer(model: torch.nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise AlloopError("the model has no trainable parameters")
    cls = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=s.lr, weight_decay=s.weight_decay)


def force_rms(data: FrameDataset) -> float:
    """Root mean square of the training forces' components (eV/A), weighted by frame; 1.0 if all are zero."""
    w = np.repeat(data.weight, data.sizes)[:, None]
    rms = float(np.sqrt(np.sum(w * data.labels()[1] ** 2) / max(3.0 * np.sum(w), 1e-300)))
    return rms if rms > 0 and math.isfinite(rms) else 1.0


def fit_output_scale(model: Potential, data: FrameDataset) -> float:
    """Set a freshly initialised model's ``output_scale`` to the RMS of ``data``'s forces; returns it.

    Call it once, before a model's first training (training from scratch); a trained
    or pretrained model keeps its scale. Models with ``learns_output_scale = False``
    are left at 1.
    """
    if model.learns_output_scale:
        with torch.no_grad():
            model.output_scale.fill_(force_rms(data))
    return float(model.output_scale)


def _plateau(opt: torch.optim.Optimizer, s: TrainSettings) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=s.lr_factor, patience=s.lr_patience,
                                                      min_lr=s.min_lr)


def _restore(model: Potential, ema: WeightAverage | None, state: dict) -> None:
    """Put the weights ``state`` (of the evaluated model) back into the trained model and its average."""
    model.load_state_dict(state)
    if ema is not None:
        ema.model.load_state_dict(state)


def _shift(model: Potential, data: FrameDataset, s: TrainSettings) -> ReferenceFit | None:
    """The training fidelity's per-element references, fitted on the residuals of the network alone."""
    if not s.fit_references:
        return None
    apply_references(model, {})
    return refit_references(model, data, batch_size=s.eval_batch_size)


def train(
    model: Potential,
    train_set: FrameDataset,
    val_set: FrameDataset,
    settings: TrainSettings,
    log: Logger | None = None,
    tag: str = "",
    replay: FrameDataset | None = None,
    auxiliary: AuxiliaryLoss | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train_set``; early-stop and select on ``val_set``. See the module docstring.

    ``replay``: frames labelled by the original model, mixed into every batch when ``settings.replay_fraction``
    is > 0 (ignored at 0). ``auxiliary``: an extra loss of the model added at every step.
    """
    if not (train_set.labelled and val_set.labelled):
        raise AlloopError("training and validation sets need energies and forces")
    if train_set.fidelity != val_set.fidelity:
        raise AlloopError(f"training ({train_set.fidelity!r}) and validation ({val_set.fidelity!r}) fidelities differ")
    if train_set.weight.sum() <= 0:
        raise AlloopError("the training weights sum to zero")
    if settings.replay_fraction > 0 and (replay is None or not replay.labelled):
        raise AlloopError("replay_fraction > 0 needs a replay pool labelled by the original model")
    mix = None
    seen = set(train_set.elements) | set(val_set.elements)
    if settings.replay_fraction:
        assert replay is not None  # checked above
        mix = ReplayMix(train_set, replay, settings.replay_fraction, settings.batch_size)
        seen |= set(replay.elements)
    unknown = seen - set(model.elements)
    if unknown:
        raise AlloopError(f"elements {sorted(unknown)} are not in the model's element set {list(model.elements)}")
    s = settings
    previous_threads = torch.get_num_threads()
    if s.threads:
        torch.set_num_threads(int(s.threads))
    try:
        return _run(model, train_set, val_set, s, log, tag, mix, auxiliary)
    finally:
        if s.threads:
            torch.set_num_threads(previous_threads)


def _run(model: Potential, train_set: FrameDataset, val_set: FrameDataset, s: TrainSettings, log: Logger | None, tag: str,
         mix: ReplayMix | None, auxiliary: AuxiliaryLoss | None = None) -> TrainResult:
    start = time.perf_counter()
    torch.manual_seed(s.seed)
    prefix = f"{tag} " if tag else ""
    ref_fit = _shift(model, train_set, s)
    fingerprint = parameter_fingerprint(model)
    budget = plan_budget(train_set, s, mix)
    opt = _optimizer(model, s)
    steps = Steps(opt, budget, s)
    plateau = _plateau(opt, s) if s.scheduler == "plateau" else None
    ema = WeightAverage(model, s.ema_decay) if s.ema_decay else None
    evaluated = model if ema is None else ema.model  # the weights that are evaluated and returned
    n_evals = max(1, math.ceil(budget.epochs / budget.eval_every))
    patience = math.ceil(s.patience / budget.eval_every) if s.patience is not None else max(1, n_evals // 2)
    log_every = max(1, n_evals // LOG_LINES_PER_RUN)

    def evaluate(epoch: int, train_loss: float, t0: float) -> EpochRecord:
        m = validation_metrics(evaluated, val_set, s.energy_weight, s.loss, s.eval_batch_size)
        return EpochRecord(epoch, train_loss, m["loss"], m["force_mae"], m["energy_mae"],
                           opt.param_groups[0]["lr"], time.perf_counter() - t0)

    record = evaluate(0, float("nan"), start)
    history = [record]
    if log:
        log(f"{prefix}{len(train_set)} training / {len(val_set)} validation frames, {budget.steps} steps "
            f"({budget.epochs} epochs of batch {s.batch_size}), {s.scheduler} lr {s.lr:.2e}, loss {s.loss}, "
            f"energy weight {s.energy_weight:g}, EMA {s.ema_decay}, output scale {float(model.output_scale):.3f}"
            + (f", replay {mix.n_replay} of {s.batch_size} frames per batch ({mix.n_pool} in the pool)" if mix else ""))
        log(format_record(record, tag))
    best, best_state = record, copy.deepcopy(evaluated.state_dict())
    since_best, stopped_early, diverged, rollbacks, rolled_back_last = 0, False, False, 0, False
    t0, train_loss = time.perf_counter(), float("nan")
    for epoch in range(1, budget.epochs + 1):
        train_loss = train_epoch(model, train_set, steps, ema, s, epoch, mix, auxiliary)
        if epoch % budget.eval_every and epoch != budget.epochs and math.isfinite(train_loss):
            continue
        record = evaluate(epoch, train_loss, t0)
        t0 = time.perf_counter()
        history.append(record)
        if log and (len(history) % log_every == 0 or epoch == budget.epochs):
            log(format_record(record, tag))
        finite = math.isfinite(train_loss) and math.isfinite(record.val_force_mae)
        spiked = s.rollback_factor is not None and record.val_force_mae > s.rollback_factor * best.val_force_mae
        rolled_back_last = (spiked or not finite) and rollbacks < s.max_rollbacks and s.rollback_factor is not None
        if rolled_back_last:
            rollbacks += 1
            _restore(model, ema, best_state)
            opt = steps.opt = _optimizer(model, s)
            steps.lr_scale *= ROLLBACK_LR_FACTOR
            for group in opt.param_groups:
                group["lr"] *= steps.lr_scale
            if plateau is not None:
                plateau = _plateau(opt, s)
            if log:
                what = "non-finite loss" if not finite else (
                    f"validation F-MAE {record.val_force_mae:.4f} > {s.rollback_factor:g} x best {best.val_force_mae:.4f}")
                log(f"{prefix}{what} at epoch {epoch}: rollback {rollbacks}/{s.max_rollbacks} to the best weights "
                    f"(epoch {best.epoch}), optimiser reset, learning rate x{steps.lr_scale:g}")
            continue
        if not finite:
            diverged = True
            if log:
                log(f"{prefix}non-finite loss at epoch {epoch}: stopping, best weights restored")
            break
        if record.val_force_mae < best.val_force_mae * (1.0 - s.min_improvement):
            best, since_best = record, 0
            best_state = copy.deepcopy(evaluated.state_dict())
        else:
            since_best += 1
        if plateau is not None:
            plateau.step(record.val_force_mae)
        if since_best >= patience:
            stopped_early = True
            if log:
                start_won = " (the starting weights: training never beat them on validation)" if best.epoch == 0 else ""
                log(f"{prefix}no improvement in {patience} evaluations: stopping at epoch {epoch}, best weights "
                    f"restored (epoch {best.epoch}){start_won}")
            break
    selected = "best" if (s.select == "best" or stopped_early or diverged or rolled_back_last) else "final"
    chosen = best if selected == "best" else history[-1]
    model.load_state_dict(best_state if selected == "best" else evaluated.state_dict())
    model.eval()
    energy_mae = chosen.val_energy_mae
    if s.fit_references:  # the trained network's mean energy has drifted from the labels: re-centre it
        ref_fit = refit_references(model, train_set, batch_size=s.eval_batch_size)
        energy_mae = validation_metrics(model, val_set, s.energy_weight, s.loss, s.eval_batch_size)["energy_mae"]
        if log:
            log(f"{prefix}energy references re-fitted on the training set: "
                f"validation E-MAE {chosen.val_energy_mae:.4f} -> {energy_mae:.4f} eV")
    return TrainResult(
        history=history,
        best_epoch=chosen.epoch,
        best_val_force_mae=chosen.val_force_mae,
        best_val_energy_mae=energy_mae,
        best_val_loss=chosen.val_loss,
        epochs_run=history[-1].epoch,
        stopped_early=stopped_early,
        diverged=diverged,
        seconds=time.perf_counter() - start,
        references=model_references(model) if ref_fit is None else dict(ref_fit.energies),
        reference_fit=ref_fit,
        initial_fingerprint=fingerprint,
        steps=steps.done,
        planned_steps=budget.steps,
        selected=selected,
        output_scale=float(model.output_scale),
        replay_per_batch=0 if mix is None else mix.n_replay,
        rollbacks=rollbacks,
    )


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
