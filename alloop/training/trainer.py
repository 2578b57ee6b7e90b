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
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from alloop.errors import AlloopError
from alloop.potentials.base import Potential, model_dtype
from alloop.training.data import FrameDataset
from alloop.training.loss import LOSS_TYPES, eq1_loss
from alloop.training.metrics import validation_metrics
from alloop.training.optim import SCHEDULES, WeightAverage, learning_rate
from alloop.training.references import ReferenceFit, apply_references, model_references, refit_references
from alloop.training.replay import ReplayMix, replay_per_batch

Logger = Callable[[str], None]
#: an extra loss term of the model, added to every optimiser step's loss
AuxiliaryLoss = Callable[[Potential], torch.Tensor]

#: evaluations per run when ``eval_every`` is not given
EVALUATIONS_PER_RUN = 50
#: progress lines per run (every evaluation is kept in ``history``)
LOG_LINES_PER_RUN = 10


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters of one training run (see the module docstring).

    The budget is ``max_steps`` optimiser steps when given, else ``max_epochs``
    passes over the training set. ``patience`` counts epochs (rounded up to whole
    evaluations, one every ``eval_every`` epochs; ``None``: half the run);
    ``lr_patience`` (plateau schedule) counts evaluations.
    """

    max_epochs: int = 200
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 1e-2
    min_lr: float = 1e-5  # the end of the cosine (capped at lr)
    warmup_fraction: float = 0.05
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    scheduler: str = "cosine"
    lr_factor: float = 0.5
    lr_patience: int = 5
    ema_decay: float | None = 0.99
    patience: int | None = None
    min_improvement: float = 1e-4
    select: str = "final"
    energy_weight: float = 0.5
    loss: str = "mse"
    grad_clip: float | None = 10.0
    seed: int = 0
    threads: int | None = None
    fit_references: bool = True
    eval_every: int | None = None
    eval_batch_size: int = 64
    replay_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.max_epochs < 0 or self.batch_size < 1 or (self.patience is not None and self.patience < 1):
            raise AlloopError("max_epochs must be >= 0, batch_size and patience >= 1")
        if self.max_steps is not None and self.max_steps < 0:
            raise AlloopError(f"max_steps must be >= 0, got {self.max_steps}")
        if self.lr <= 0 or self.min_lr < 0:
            raise AlloopError(f"need lr > 0 and min_lr >= 0, got lr {self.lr}, min_lr {self.min_lr}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise AlloopError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.optimizer not in ("adam", "adamw"):
            raise AlloopError(f"unknown optimizer '{self.optimizer}' (use adam or adamw)")
        if self.scheduler not in SCHEDULES:
            raise AlloopError(f"unknown scheduler '{self.scheduler}' (use one of {', '.join(SCHEDULES)})")
        if self.loss not in LOSS_TYPES:
            raise AlloopError(f"unknown loss '{self.loss}' (use one of {', '.join(LOSS_TYPES)})")
        if not 0.0 <= self.energy_weight <= 1.0:
            raise AlloopError(f"energy_weight must be in [0, 1], got {self.energy_weight}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise AlloopError(f"ema_decay must be in [0, 1) or None, got {self.ema_decay}")
        if self.select not in ("final", "best"):
            raise AlloopError(f"unknown select '{self.select}' (use final or best)")
        if self.eval_every is not None and self.eval_every < 1:
            raise AlloopError(f"eval_every must be >= 1, got {self.eval_every}")
        replay_per_batch(self.replay_fraction, self.batch_size)  # the fraction and the batch size allow replay


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
    rms = float(np.sqrt(np.sum(w * data.forces**2) / max(3.0 * np.sum(w), 1e-300)))
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


def _shift(model: Potential, data: FrameDataset, s: TrainSettings) -> ReferenceFit | None:
    """The training fidelity's per-element references, fitted on the residuals of the network alone."""
    if not s.fit_references:
        return None
    apply_references(model, {})
    return refit_references(model, data, batch_size=s.eval_batch_size)


@dataclass
class _Budget:
    steps: int
    epochs: int
    eval_every: int
    warmup: int


def _budget(data: FrameDataset, s: TrainSettings, mix: ReplayMix | None = None) -> _Budget:
    per_epoch = math.ceil(len(data) / s.batch_size) if mix is None else mix.n_batches
    steps = s.max_steps if s.max_steps is not None else s.max_epochs * per_epoch
    epochs = math.ceil(steps / per_epoch)
    every = s.eval_every or max(1, math.ceil(epochs / EVALUATIONS_PER_RUN))
    return _Budget(steps, epochs, every, int(s.warmup_fraction * steps))
class _Steps:
    """Counts optimiser steps and sets each step's learning rate (warm-up + cosine, or constant)."""

    def __init__(self, opt: torch.optim.Optimizer, budget: _Budget, s: TrainSettings) -> None:
        self.opt, self.budget, self.s, self.done = opt, budget, s, 0

    @property
    def left(self) -> int:
        return self.budget.steps - self.done

    def before_step(self) -> None:
        if self.s.scheduler == "cosine":
            lr = learning_rate(self.done, self.budget.steps, self.s.lr, min(self.s.min_lr, self.s.lr),
                               self.budget.warmup, "cosine")
            for group in self.opt.param_groups:
                group["lr"] = lr
        self.done += 1


def _train_epoch(model: Potential, data: FrameDataset, steps: _Steps, ema: WeightAverage | None,
                 s: TrainSettings, epoch: int, mix: ReplayMix | None = None,
                 auxiliary: AuxiliaryLoss | None = None) -> float:
    dtype = model_dtype(model)
    mean_w = float(data.weight.mean())
    total, count = 0.0, 0
    model.train()
    seed = s.seed * 1_000_003 + epoch
    if mix is None:
        batches = data.batches(s.batch_size, dtype=dtype, shuffle=True, seed=seed)
    else:
        batches = mix.batches(dtype, seed)
    for batch in batches:
        if steps.left <= 0:
            break
        out = model(batch.atoms, compute_forces=True, create_graph=True)
        n = batch.weight.numel()
        loss = eq1_loss(
            out.energy, out.forces, batch.energy, batch.forces, batch.atoms.batch, batch.n_atoms,
            weight=batch.weight, energy_weight=s.energy_weight, kind=s.loss, normalizer=n * mean_w,
            energy_mask=batch.energy_mask,
        )
        if auxiliary is not None:
            loss = loss + auxiliary(model)
        steps.before_step()
        steps.opt.zero_grad(set_to_none=True)
        loss.backward()
        if s.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        steps.opt.step()
        if ema is not None:
            ema.update(model)
        total += float(loss.detach()) * n
        count += n
    return total / max(count, 1)


def train(
    model: Potential,
    train_set: FrameDataset,
    val_set: FrameDataset,
    settings: TrainSettings = TrainSettings(),
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
    mix = ReplayMix(train_set, replay, settings.replay_fraction, settings.batch_size) if settings.replay_fraction else None
    seen = set(train_set.elements) | set(val_set.elements) | set(replay.elements if mix else ())
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
    budget = _budget(train_set, s, mix)
    opt = _optimizer(model, s)
    steps = _Steps(opt, budget, s)
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=s.lr_factor,
                                                          patience=s.lr_patience, min_lr=s.min_lr)
               if s.scheduler == "plateau" else None)
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
    since_best, stopped_early, diverged = 0, False, False
    t0, train_loss = time.perf_counter(), float("nan")
    for epoch in range(1, budget.epochs + 1):
        train_loss = _train_epoch(model, train_set, steps, ema, s, epoch, mix, auxiliary)
        if epoch % budget.eval_every and epoch != budget.epochs and math.isfinite(train_loss):
            continue
        record = evaluate(epoch, train_loss, t0)
        t0 = time.perf_counter()
        history.append(record)
        if log and (len(history) % log_every == 0 or epoch == budget.epochs):
            log(format_record(record, tag))
        if not (math.isfinite(train_loss) and math.isfinite(record.val_force_mae)):
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
                log(f"{prefix}no improvement in {patience} evaluations: stopping at epoch {epoch}, best weights restored")
            break
    selected = "best" if (s.select == "best" or stopped_early or diverged) else "final"
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
        selected=selected,
        output_scale=float(model.output_scale),
        replay_per_batch=0 if mix is None else mix.n_replay,
    )
