"""Test-time training (TTT): refine a two-head model's representation on cheap labels of new structures.

The recipe of the distribution-shifts paper (METHODS.md section 3): for a batch
of new (possibly out-of-distribution) structures with labels of the cheap prior
only, take a bounded number of small gradient steps on the prior head's loss
(Eq. 1 with the prior head active), updating only the representation (every
head, and every head's reference energies, stay bit-identical), then make the
target (expensive) head active again: its predictions now use the refined
representation.

:func:`refine_representation` does this in place with SGD (momentum 0.9),
``steps`` steps of ``batch_size`` frames (all frames when there are fewer; a
seeded order otherwise), gradient-norm clipping, no schedule. The prior loss on
all the given frames is measured before and after; if it did not go down (or
is not finite) the starting representation is restored and the result says
``reverted``: refinement never leaves a model that fits its own prior worse.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch

from alloop.errors import AlloopError
from alloop.potentials.base import model_dtype
from alloop.potentials.two_head import TwoHeadPotential
from alloop.training.data import FrameDataset, LabelledBatch
from alloop.training.loss import LOSS_TYPES, eq1_loss
from alloop.training.metrics import validation_metrics
from alloop.training.trainer import Logger

#: the most steps one refinement may take
MAX_STEPS = 10_000
#: progress lines per refinement
LOG_LINES = 10


@dataclass(frozen=True)
class RefineSettings:
    """Steps, learning rate and loss of a test-time refinement (see the module docstring)."""

    steps: int = 100
    lr: float = 1e-5  # METHODS.md's value; larger rates raised the expensive error more (docs/training.md)
    momentum: float = 0.9
    batch_size: int = 32
    energy_weight: float = 0.1
    loss: str = "mse"
    grad_clip: float | None = 10.0
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_STEPS:
            raise AlloopError(f"steps must be in 1..{MAX_STEPS}, got {self.steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise AlloopError(f"lr must be a positive number, got {self.lr}")
        if not 0.0 <= self.momentum < 1.0:
            raise AlloopError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.batch_size < 1:
            raise AlloopError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.energy_weight <= 1.0:
            raise AlloopError(f"energy_weight must be in [0, 1], got {self.energy_weight}")
        if self.loss not in LOSS_TYPES:
            raise AlloopError(f"unknown loss '{self.loss}' (use one of {', '.join(LOSS_TYPES)})")


@dataclass
class RefineResult:
    """Prior-head loss and force MAE (eV/A) on the given frames before and after; the steps taken."""

    prior_head: str
    target_head: str
    n_frames: int
    steps: int
    prior_loss_before: float
    prior_loss_after: float
    prior_force_mae_before: float
    prior_force_mae_after: float
    reverted: bool
    seconds: float
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, batch loss) at the progress lines


def _batches(data: FrameDataset, s: RefineSettings, dtype: torch.dtype):
    """Endless batches: the whole set every step when it fits in one batch, else seeded passes."""
    epoch = 0
    while True:
        epoch += 1
        yield from data.batches(s.batch_size, dtype=dtype, shuffle=len(data) > s.batch_size, seed=s.seed + epoch)


def _step_loss(model: TwoHeadPotential, batch: LabelledBatch, s: RefineSettings, mean_weight: float) -> torch.Tensor:
    out = model(batch.atoms, compute_forces=True, create_graph=True)
    assert out.forces is not None  # compute_forces
    energy, forces = batch.targets()
    return eq1_loss(
        out.energy, out.forces, energy, forces, batch.atoms.batch, batch.n_atoms, weight=batch.weight,
        energy_weight=s.energy_weight, kind=s.loss, normalizer=batch.weight.numel() * mean_weight,
    )


def _check(model: TwoHeadPotential, prior: FrameDataset, prior_head: str, target_head: str) -> None:
    if not isinstance(model, TwoHeadPotential):
        raise AlloopError(f"test-time training needs a two-head model, not a single-head '{model.registry_name}' model")
    for head in (prior_head, target_head):
        if head not in model.head_names:
            raise AlloopError(f"the model has no '{head}' head (it has {', '.join(model.head_names)})")
    if prior_head == target_head:
        raise AlloopError(f"the prior and target heads are both '{prior_head}'")
    if not prior.labelled:
        raise AlloopError("test-time training needs the frames' prior (cheap) energies and forces")
    unknown = set(prior.elements) - set(model.elements)
    if unknown:
        raise AlloopError(f"elements {sorted(unknown)} are not in the model's element set {list(model.elements)}")
    if not any(p.requires_grad for p in model.body.parameters()):
        raise AlloopError("the model's representation has no trainable parameters")


def refine_representation(
    model: TwoHeadPotential,
    prior: FrameDataset,
    settings: RefineSettings = RefineSettings(),
    prior_head: str = "cheap",
    target_head: str = "expensive",
    log: Logger | None = None,
) -> RefineResult:
    """Refine ``model``'s representation in place on the prior labels of ``prior``; ``target_head`` active after."""
    _check(model, prior, prior_head, target_head)
    s = settings
    previous_threads = torch.get_num_threads()
    if s.threads:
        torch.set_num_threads(int(s.threads))
    try:
        return _refine(model, prior, s, prior_head, target_head, log)
    finally:
        if s.threads:
            torch.set_num_threads(previous_threads)


def _refine(model: TwoHeadPotential, prior: FrameDataset, s: RefineSettings, prior_head: str, target_head: str,
            log: Logger | None) -> RefineResult:
    start = time.perf_counter()
    torch.manual_seed(s.seed)
    model.use_head(prior_head)
    before = validation_metrics(model, prior, s.energy_weight, s.loss)
    if log:
        log(f"refine: {len(prior)} frames, {s.steps} SGD steps (lr {s.lr:g}, momentum {s.momentum:g}) on the "
            f"'{prior_head}' head's loss, representation only; prior loss {before['loss']:.4g}, "
            f"force MAE {before['force_mae']:.4f} eV/A")
    saved = copy.deepcopy(model.body.state_dict())
    mean_weight = float(prior.weight.mean())
    every = max(1, s.steps // LOG_LINES)
    history: list[tuple[int, float]] = []
    with model.train_only(representation=True, heads=()):
        params = [p for p in model.body.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=s.lr, momentum=s.momentum)
        model.train()
        batches = _batches(prior, s, model_dtype(model))
        for step in range(1, s.steps + 1):
            loss = _step_loss(model, next(batches), s, mean_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if s.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, s.grad_clip)
            opt.step()
            if step % every == 0 or step == s.steps:
                history.append((step, float(loss.detach())))
                if log:
                    log(f"refine step {step}/{s.steps}  batch prior loss {history[-1][1]:.4g}  "
                        f"{time.perf_counter() - start:.1f}s")
        model.eval()
    after = validation_metrics(model, prior, s.energy_weight, s.loss)
    reverted = not (math.isfinite(after["loss"]) and after["loss"] < before["loss"])
    if reverted:
        model.body.load_state_dict(saved)
        if log:
            log(f"refine: the prior loss did not go down ({before['loss']:.4g} -> {after['loss']:.4g}): "
                "the starting representation is restored")
        after = before
    model.use_head(target_head)
    return RefineResult(
        prior_head=prior_head, target_head=target_head, n_frames=len(prior), steps=s.steps,
        prior_loss_before=before["loss"], prior_loss_after=after["loss"],
        prior_force_mae_before=before["force_mae"], prior_force_mae_after=after["force_mae"],
        reverted=reverted, seconds=time.perf_counter() - start, history=history,
    )
