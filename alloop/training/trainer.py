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

- restarts of a fresh model that learned nothing: :func:`alloop.training.restarts.train_fresh`.

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
from dataclasses import dataclass, field

import numpy as np
import torch

from alloop.errors import AlloopError
from alloop.potentials.base import Potential
from alloop.training.data import FrameDataset
from alloop.training.epochs import AuxiliaryLoss, Steps, plan_budget, train_epoch
from alloop.training.metrics import validation_energy_mae, validation_metrics
from alloop.training.optim import WeightAverage
from alloop.training.references import ReferenceFit, apply_references, model_references, refit_references
from alloop.training.replay import ReplayMix
from alloop.training.settings import TrainSettings

Logger = Callable[[str], None]
#: progress lines per run (every evaluation is kept in ``history``)
LOG_LINES_PER_RUN = 10
#: the learning rate is multiplied by this at each rollback
ROLLBACK_LR_FACTOR = 0.5


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
        return _Run(model, train_set, val_set, s, log, tag, mix, auxiliary).run()
    finally:
        if s.threads:
            torch.set_num_threads(previous_threads)


class _Run:
    """One run of :func:`train` (see the module docstring): the optimiser and its schedule, the weight average that
    is evaluated, the evaluations so far and the guards (the best weights, rollbacks, early stop, divergence)."""

    def __init__(self, model: Potential, train_set: FrameDataset, val_set: FrameDataset, s: TrainSettings,
                 log: Logger | None, tag: str, mix: ReplayMix | None, auxiliary: AuxiliaryLoss | None) -> None:
        self.start = time.perf_counter()
        torch.manual_seed(s.seed)
        self.model, self.train_set, self.val_set, self.s = model, train_set, val_set, s
        self.log, self.tag, self.prefix, self.mix, self.auxiliary = log, tag, f"{tag} " if tag else "", mix, auxiliary
        self.ref_fit = _shift(model, train_set, s)
        self.fingerprint = parameter_fingerprint(model)
        self.budget = plan_budget(train_set, s, mix)
        self.opt = _optimizer(model, s)
        self.steps = Steps(self.opt, self.budget, s)
        self.plateau = _plateau(self.opt, s) if s.scheduler == "plateau" else None
        self.ema = WeightAverage(model, s.ema_decay) if s.ema_decay else None
        self.evaluated = model if self.ema is None else self.ema.model  # the weights that are evaluated and returned
        n_evals = max(1, math.ceil(self.budget.epochs / self.budget.eval_every))
        self.patience = math.ceil(s.patience / self.budget.eval_every) if s.patience is not None else max(1, n_evals // 2)
        self.log_every = max(1, n_evals // LOG_LINES_PER_RUN)
        self.history: list[EpochRecord] = []
        self.since_best, self.rollbacks = 0, 0
        self.stopped_early, self.diverged, self.rolled_back_last = False, False, False

    def evaluate(self, epoch: int, train_loss: float, t0: float) -> EpochRecord:
        """The evaluated weights' validation errors after ``epoch`` (0: before training), with the learning rate."""
        s = self.s
        m = validation_metrics(self.evaluated, self.val_set, s.energy_weight, s.loss, s.eval_batch_size)
        return EpochRecord(epoch, train_loss, m["loss"], m["force_mae"], m["energy_mae"],
                           self.opt.param_groups[0]["lr"], time.perf_counter() - t0)

    def run(self) -> TrainResult:
        """Train for the budget's epochs, evaluating every ``eval_every`` epochs (and at the last one, or when the loss
        is not finite), until the budget ends or a guard stops the run."""
        s, budget, log = self.s, self.budget, self.log
        record = self.evaluate(0, float("nan"), self.start)
        self.history.append(record)
        if log:
            self._log_start(record)
        self.best, self.best_state = record, copy.deepcopy(self.evaluated.state_dict())
        t0 = time.perf_counter()
        for epoch in range(1, budget.epochs + 1):
            train_loss = train_epoch(self.model, self.train_set, self.steps, self.ema, s, epoch, self.mix, self.auxiliary)
            if epoch % budget.eval_every and epoch != budget.epochs and math.isfinite(train_loss):
                continue
            record = self.evaluate(epoch, train_loss, t0)
            t0 = time.perf_counter()
            self.history.append(record)
            if log and (len(self.history) % self.log_every == 0 or epoch == budget.epochs):
                log(format_record(record, self.tag))
            if self._stops(record, epoch, train_loss):
                break
        return self._finish()

    def _log_start(self, record: EpochRecord) -> None:
        s, budget, mix = self.s, self.budget, self.mix
        assert self.log is not None  # called with a log only
        self.log(f"{self.prefix}{len(self.train_set)} training / {len(self.val_set)} validation frames, {budget.steps} "
                 f"steps ({budget.epochs} epochs of batch {s.batch_size}), {s.scheduler} lr {s.lr:.2e}, loss {s.loss}, "
                 f"energy weight {s.energy_weight:g}, EMA {s.ema_decay}, output scale "
                 f"{float(self.model.output_scale):.3f}, {torch.get_num_threads()} torch thread(s)"
                 + (f", replay {mix.n_replay} of {s.batch_size} frames per batch ({mix.n_pool} in the pool)" if mix else ""))
        self.log(format_record(record, self.tag))

    def _stops(self, record: EpochRecord, epoch: int, train_loss: float) -> bool:
        """The guards after an evaluation: a rollback on a spike or a non-finite loss (while rollbacks are left), else
        a stop on a non-finite loss or on ``patience`` evaluations without improvement. True: the run stops."""
        s, log = self.s, self.log
        finite = math.isfinite(train_loss) and math.isfinite(record.val_force_mae)
        spiked = s.rollback_factor is not None and record.val_force_mae > s.rollback_factor * self.best.val_force_mae
        self.rolled_back_last = ((spiked or not finite) and self.rollbacks < s.max_rollbacks
                                 and s.rollback_factor is not None)
        if self.rolled_back_last:
            self._roll_back(record, epoch, finite)
            return False
        if not finite:
            self.diverged = True
            if log:
                log(f"{self.prefix}non-finite loss at epoch {epoch}: stopping, best weights restored")
            return True
        if record.val_force_mae < self.best.val_force_mae * (1.0 - s.min_improvement):
            self.best, self.since_best = record, 0
            self.best_state = copy.deepcopy(self.evaluated.state_dict())
        else:
            self.since_best += 1
        if self.plateau is not None:
            self.plateau.step(record.val_force_mae)
        if self.since_best < self.patience:
            return False
        self.stopped_early = True
        if log:
            start_won = " (the starting weights: training never beat them on validation)" if self.best.epoch == 0 else ""
            log(f"{self.prefix}no improvement in {self.patience} evaluations: stopping at epoch {epoch}, best weights "
                f"restored (epoch {self.best.epoch}){start_won}")
        return True

    def _roll_back(self, record: EpochRecord, epoch: int, finite: bool) -> None:
        """Put the best weights back, reset the optimiser and scale the learning rate by ``ROLLBACK_LR_FACTOR``."""
        s = self.s
        self.rollbacks += 1
        _restore(self.model, self.ema, self.best_state)
        self.opt = self.steps.opt = _optimizer(self.model, s)
        self.steps.lr_scale *= ROLLBACK_LR_FACTOR
        for group in self.opt.param_groups:
            group["lr"] *= self.steps.lr_scale
        if self.plateau is not None:
            self.plateau = _plateau(self.opt, s)
        if self.log:
            what = "non-finite loss" if not finite else (f"validation F-MAE {record.val_force_mae:.4f} > "
                                                         f"{s.rollback_factor:g} x best {self.best.val_force_mae:.4f}")
            self.log(f"{self.prefix}{what} at epoch {epoch}: rollback {self.rollbacks}/{s.max_rollbacks} to the best "
                     f"weights (epoch {self.best.epoch}), optimiser reset, learning rate x{self.steps.lr_scale:g}")

    def _finish(self) -> TrainResult:
        """The returned weights (the best after a guard stopped the run or with ``select="best"``, else the final
        ones), their references re-fitted on the training set, and what the run did."""
        s, model, log = self.s, self.model, self.log
        stopped = self.stopped_early or self.diverged or self.rolled_back_last
        selected = "best" if (s.select == "best" or stopped) else "final"
        chosen = self.best if selected == "best" else self.history[-1]
        model.load_state_dict(self.best_state if selected == "best" else self.evaluated.state_dict())
        model.eval()
        energy_mae, ref_fit = chosen.val_energy_mae, self.ref_fit
        if s.fit_references:  # the trained network's mean energy has drifted from the labels: re-centre it
            ref_fit = refit_references(model, self.train_set, batch_size=s.eval_batch_size)
            energy_mae = validation_energy_mae(model, self.val_set, s.eval_batch_size)
            if log:
                log(f"{self.prefix}energy references re-fitted on the training set: "
                    f"validation E-MAE {chosen.val_energy_mae:.4f} -> {energy_mae:.4f} eV")
        return TrainResult(
            history=self.history, best_epoch=chosen.epoch, best_val_force_mae=chosen.val_force_mae,
            best_val_energy_mae=energy_mae, best_val_loss=chosen.val_loss, epochs_run=self.history[-1].epoch,
            stopped_early=self.stopped_early, diverged=self.diverged, seconds=time.perf_counter() - self.start,
            references=model_references(model) if ref_fit is None else dict(ref_fit.energies), reference_fit=ref_fit,
            initial_fingerprint=self.fingerprint, steps=self.steps.done, planned_steps=self.budget.steps,
            selected=selected, output_scale=float(model.output_scale),
            replay_per_batch=0 if self.mix is None else self.mix.n_replay, rollbacks=self.rollbacks,
        )
