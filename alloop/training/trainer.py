"""Supervised training of a Potential with the (weighted) Eq. 1 loss.

One function, :func:`train`: Adam or AdamW, a learning-rate schedule
(``"plateau"``: ReduceLROnPlateau on the validation force MAE, the default;
``"cosine"``: cosine annealing from ``lr`` to ``min_lr`` over ``max_epochs``;
``"none"``), early stopping on the validation force MAE with ``patience``
epochs, and the best weights restored at the end. The model as it is given
is evaluated first (epoch 0) and counts as a candidate, so fine-tuning never
returns something worse on validation than its starting point.

Before training, per-element reference energies are fitted on the training
set's fidelity and written into ``model.atomic_energies`` (``fit_references``);
after training they are re-fitted on the residuals of the trained model
(``refit_references``), because the force loss cannot see a constant energy
offset and a small energy weight corrects it only slowly. ``history`` holds the
energy errors before that shift, ``best_val_energy_mae`` the one after it.

Reproducible: the same model, data and ``seed`` give identical weights
(seeded torch RNG and seeded shuffling; CPU kernels used here are
deterministic). ``threads`` sets torch's intra-op threads for the call and
restores the previous value afterwards. Works for float32 and float64 models
(batches take the dtype of the model's parameters). In float32 a molecule's
absolute energy (thousands of eV) is rounded to ~1e-4 of an eV when the model
adds its references; use float64 models where sub-meV energies matter.

Defaults: ``energy_weight`` (rho) is 0.01, not the paper's 0.001, because the
energy term here is a per-atom error (same scale as a force component) and the
training budgets are short; forces still dominate.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from alloop.errors import AlloopError
from alloop.potentials.base import Potential, model_dtype
from alloop.training.data import FrameDataset
from alloop.training.loss import LOSS_TYPES, eq1_loss
from alloop.training.metrics import validation_metrics
from alloop.training.references import (
    ReferenceFit, apply_references, fit_references, model_references, refit_references,
)

Logger = Callable[[str], None]


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters of one training run. ``lr`` in the optimiser's units; ``patience`` in epochs."""

    max_epochs: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    scheduler: str = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 5
    min_lr: float = 1e-6
    patience: int = 20
    min_improvement: float = 1e-4
    energy_weight: float = 0.01
    loss: str = "mae"
    grad_clip: float | None = 10.0
    seed: int = 0
    threads: int | None = None
    fit_references: bool = True
    eval_batch_size: int = 64

    def __post_init__(self) -> None:
        if self.max_epochs < 0 or self.batch_size < 1 or self.patience < 1:
            raise AlloopError("max_epochs must be >= 0, batch_size and patience >= 1")
        if self.lr <= 0:
            raise AlloopError(f"lr must be positive, got {self.lr}")
        if self.optimizer not in ("adam", "adamw"):
            raise AlloopError(f"unknown optimizer '{self.optimizer}' (use adam or adamw)")
        if self.scheduler not in ("plateau", "cosine", "none"):
            raise AlloopError(f"unknown scheduler '{self.scheduler}' (use plateau, cosine or none)")
        if self.loss not in LOSS_TYPES:
            raise AlloopError(f"unknown loss '{self.loss}' (use one of {', '.join(LOSS_TYPES)})")
        if not 0.0 <= self.energy_weight <= 1.0:
            raise AlloopError(f"energy_weight must be in [0, 1], got {self.energy_weight}")


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
    """The one-line progress report of an epoch."""
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


def _scheduler(opt: torch.optim.Optimizer, s: TrainSettings):
    if s.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=s.lr_factor, patience=s.lr_patience, min_lr=s.min_lr
        )
    if s.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, s.max_epochs), eta_min=s.min_lr)
    return None


def _train_epoch(model: Potential, data: FrameDataset, opt: torch.optim.Optimizer, s: TrainSettings, epoch: int) -> float:
    dtype = model_dtype(model)
    mean_w = float(data.weight.mean())
    total, count = 0.0, 0
    model.train()
    for batch in data.batches(s.batch_size, dtype=dtype, shuffle=True, seed=s.seed * 1_000_003 + epoch):
        out = model(batch.atoms, compute_forces=True, create_graph=True)
        n = batch.weight.numel()
        loss = eq1_loss(
            out.energy, out.forces, batch.energy, batch.forces, batch.atoms.batch, batch.n_atoms,
            weight=batch.weight, energy_weight=s.energy_weight, kind=s.loss, normalizer=n * mean_w,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if s.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        opt.step()
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
) -> TrainResult:
    """Train ``model`` in place on ``train_set``; early-stop and select on ``val_set``. See the module docstring."""
    if not (train_set.labelled and val_set.labelled):
        raise AlloopError("training and validation sets need energies and forces")
    if train_set.fidelity != val_set.fidelity:
        raise AlloopError(f"training ({train_set.fidelity!r}) and validation ({val_set.fidelity!r}) fidelities differ")
    if train_set.weight.sum() <= 0:
        raise AlloopError("the training weights sum to zero")
    unknown = (set(train_set.elements) | set(val_set.elements)) - set(model.elements)
    if unknown:
        raise AlloopError(f"elements {sorted(unknown)} are not in the model's element set {list(model.elements)}")
    s = settings
    previous_threads = torch.get_num_threads()
    if s.threads:
        torch.set_num_threads(int(s.threads))
    try:
        return _run(model, train_set, val_set, s, log, tag)
    finally:
        if s.threads:
            torch.set_num_threads(previous_threads)


def _run(model: Potential, train_set: FrameDataset, val_set: FrameDataset, s: TrainSettings, log: Logger | None, tag: str) -> TrainResult:
    start = time.perf_counter()
    torch.manual_seed(s.seed)
    ref_fit = None
    if s.fit_references:
        ref_fit = fit_references(train_set)
        apply_references(model, ref_fit.energies)
    fingerprint = parameter_fingerprint(model)
    opt = _optimizer(model, s)
    sched = _scheduler(opt, s)

    def evaluate(epoch: int, train_loss: float, t0: float) -> EpochRecord:
        m = validation_metrics(model, val_set, s.energy_weight, s.loss, s.eval_batch_size)
        return EpochRecord(epoch, train_loss, m["loss"], m["force_mae"], m["energy_mae"],
                           opt.param_groups[0]["lr"], time.perf_counter() - t0)

    record = evaluate(0, float("nan"), start)
    history = [record]
    if log:
        log(format_record(record, tag))
    best = record
    best_state = copy.deepcopy(model.state_dict())
    since_best, stopped_early, diverged = 0, False, False
    for epoch in range(1, s.max_epochs + 1):
        t0 = time.perf_counter()
        train_loss = _train_epoch(model, train_set, opt, s, epoch)
        record = evaluate(epoch, train_loss, t0)
        history.append(record)
        if log:
            log(format_record(record, tag))
        if not (math.isfinite(train_loss) and math.isfinite(record.val_force_mae)):
            diverged = True
            if log:
                log(f"{tag + ' ' if tag else ''}non-finite loss at epoch {epoch}: stopping, best weights restored")
            break
        if record.val_force_mae < best.val_force_mae * (1.0 - s.min_improvement):
            best, since_best = record, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        if sched is not None:
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(record.val_force_mae)
            else:
                sched.step()
        if since_best >= s.patience:
            stopped_early = True
            break
    model.load_state_dict(best_state)
    model.eval()
    best_energy_mae = best.val_energy_mae
    if s.fit_references:  # the trained network's mean energy has drifted from the labels: re-centre it
        ref_fit = refit_references(model, train_set, batch_size=s.eval_batch_size)
        best_energy_mae = validation_metrics(model, val_set, s.energy_weight, s.loss, s.eval_batch_size)["energy_mae"]
        if log:
            log(f"{tag + ' ' if tag else ''}energy references re-fitted on the training set: "
                f"validation E-MAE {best.val_energy_mae:.4f} -> {best_energy_mae:.4f} eV")
    return TrainResult(
        history=history,
        best_epoch=best.epoch,
        best_val_force_mae=best.val_force_mae,
        best_val_energy_mae=best_energy_mae,
        best_val_loss=best.val_loss,
        epochs_run=history[-1].epoch,
        stopped_early=stopped_early,
        diverged=diverged,
        seconds=time.perf_counter() - start,
        references=model_references(model) if ref_fit is None else dict(ref_fit.energies),
        reference_fit=ref_fit,
        initial_fingerprint=fingerprint,
    )
