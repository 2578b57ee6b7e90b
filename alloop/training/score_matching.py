r"""Sliced score matching: learning forces from unlabelled Boltzmann frames (ASTEROID Sec. 4, App. A.1).

Derivation (sign convention of alloop: F = -dE/dx). Frames x ~ p(x) = exp(-E(x)/kT) / Z,
so the score is s(x) = grad log p = -grad E / kT = F / kT. Hyvarinen (2005): for a model
score s_theta, E_p |s_theta - s|^2 / 2 = E_p[ Tr(ds_theta/dx) + |s_theta|^2 / 2 ] + const
(integration by parts; p vanishes at infinity). With s_theta = F_theta / kT:

    J(theta) = E_p[ Tr(dF_theta/dx) / kT + |F_theta|^2 / (2 kT^2) ]
    (kT)^2 J = E_p[ kT Tr(dF_theta/dx) + |F_theta|^2 / 2 ]

so minimising ``kT * Tr(dF/dx) + 0.5 |F|^2`` is force matching without labels, in
(eV/A)^2. (The paper writes F = grad E in Eq. 3; with F = -grad E its objective is the
one above.) Tr(dF/dx) = -Laplacian E.

Sliced estimate (Song et al. 2020): Tr(J) = E_v[v^T J v] for v with E[v v^T] = I
(Rademacher or standard normal); v^T J v = v . d(F . v)/dx costs one extra backward
pass, taken with ``create_graph`` so the loss can be differentiated by the parameters.
Per frame the loss is divided by its 3k coordinates (molecules of different sizes on
one scale). kT = k_B T in eV (8.617e-5 eV/K x T).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch

from alloop.config.training import SCORE_MATCHING_EPOCHS, SCORE_MATCHING_TEMPERATURE_K
from alloop.errors import AlloopError
from alloop.potentials.base import AtomsBatch, Potential, model_dtype
from alloop.training.data import FrameDataset
from alloop.training.settings import RECIPE
from alloop.training.trainer import Logger, parameter_fingerprint
from alloop.units import KB_EV_PER_K

DISTRIBUTIONS = ("rademacher", "gaussian")


@dataclass(frozen=True)
class ScoreMatchingSettings:
    """A score-matching run: ``max_epochs`` epochs, at most; ``patience`` epochs without a better validation loss stop
    it (None: half the run). The defaults of the values the ``training`` section holds are the section's
    (:data:`~alloop.training.settings.RECIPE`, :data:`~alloop.config.training.SCORE_MATCHING_EPOCHS`); the others
    are score matching's own."""

    temperature_K: float = SCORE_MATCHING_TEMPERATURE_K
    n_vectors: int = RECIPE.score_matching_vectors
    val_vectors: int = 8
    distribution: str = "rademacher"
    max_epochs: int = RECIPE.max_epochs or SCORE_MATCHING_EPOCHS
    batch_size: int = RECIPE.batch_size
    lr: float = RECIPE.learning_rate_pretrain
    patience: int | None = RECIPE.patience_epochs
    grad_clip: float | None = 10.0
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if not self.temperature_K > 0:
            raise AlloopError(f"temperature_K must be positive, got {self.temperature_K}")
        if self.n_vectors < 1 or self.val_vectors < 1:
            raise AlloopError(f"n_vectors and val_vectors must be at least 1, got {self.n_vectors}, {self.val_vectors}")
        if self.distribution not in DISTRIBUTIONS:
            raise AlloopError(f"unknown projection distribution '{self.distribution}' (use rademacher or gaussian)")
        if self.max_epochs < 0 or self.batch_size < 1 or (self.patience is not None and self.patience < 1) or self.lr <= 0:
            raise AlloopError("max_epochs >= 0, batch_size >= 1, patience >= 1 and lr > 0 are required")

    @property
    def patience_epochs(self) -> int:
        """The epochs without improvement that stop the run: ``patience``, else half the run (at least 1)."""
        return self.patience if self.patience is not None else max(1, self.max_epochs // 2)


@dataclass
class ScoreMatchingResult:
    history: list[tuple[int, float, float]]  # (epoch, train loss, validation loss)
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    seconds: float
    final_fingerprint: str


def projection_vectors(
    n_vectors: int, shape: tuple[int, ...], dtype: torch.dtype, distribution: str, generator: torch.Generator
) -> list[torch.Tensor]:
    """``n_vectors`` random directions with E[v v^T] = I."""
    out = []
    for _ in range(n_vectors):
        if distribution == "rademacher":
            v = torch.randint(0, 2, shape, generator=generator).to(dtype) * 2 - 1
        elif distribution == "gaussian":
            v = torch.randn(shape, generator=generator, dtype=dtype)
        else:
            raise AlloopError(f"unknown projection distribution '{distribution}'")
        out.append(v)
    return out


def score_matching_loss(
    model: Potential,
    atoms: AtomsBatch,
    temperature_K: float,
    vectors: list[torch.Tensor],
    create_graph: bool = True,
) -> torch.Tensor:
    """Per-frame sliced score-matching loss [B]: (kT <v.d(F.v)/dx>_v + |F|^2/2) / 3k.

    ``vectors`` ([N, 3] each) are averaged; random ones give an unbiased trace
    estimate, :func:`exact_trace_vectors` the exact trace (one frame).
    """
    kT = KB_EV_PER_K * float(temperature_K)
    positions = atoms.positions.detach().clone().requires_grad_(True)
    batch = atoms.with_positions(positions)
    out = model(batch, compute_forces=True, create_graph=True)
    forces = out.forces
    n_graphs = batch.n_graphs
    zeros = torch.zeros(n_graphs, dtype=forces.dtype, device=forces.device)
    half_sq = 0.5 * zeros.index_add(0, batch.batch, (forces**2).sum(-1))
    trace = zeros.clone()
    for k, v in enumerate(vectors):
        retain = create_graph or k < len(vectors) - 1
        (grad,) = torch.autograd.grad((forces * v).sum(), positions, create_graph=create_graph, retain_graph=retain)
        trace = trace + zeros.index_add(0, batch.batch, (grad * v).sum(-1))
    trace = trace / len(vectors)
    return (kT * trace + half_sq) / (3.0 * batch.n_atoms.to(forces.dtype))


def exact_trace_vectors(n_atoms: int, dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    """Scaled unit vectors sqrt(3N) e_i: their average of v.J.v is exactly Tr(J)."""
    scale = math.sqrt(3 * n_atoms)
    vectors = []
    for i in range(3 * n_atoms):
        v = torch.zeros(3 * n_atoms, dtype=dtype)
        v[i] = scale
        vectors.append(v.reshape(n_atoms, 3))
    return vectors


def _epoch_loss(model: Potential, data: FrameDataset, s: ScoreMatchingSettings, gen: torch.Generator,
                opt: torch.optim.Optimizer | None, shuffle_seed: int, n_vectors: int) -> float:
    dtype = model_dtype(model)
    total, count = 0.0, 0
    for batch in data.batches(s.batch_size, dtype=dtype, shuffle=opt is not None, seed=shuffle_seed):
        vectors = projection_vectors(n_vectors, tuple(batch.atoms.positions.shape), dtype, s.distribution, gen)
        per_frame = score_matching_loss(model, batch.atoms, s.temperature_K, vectors, create_graph=opt is not None)
        loss = per_frame.mean()
        if opt is not None:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if s.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
            opt.step()
        n = per_frame.numel()
        total += float(loss.detach()) * n
        count += n
    return total / max(count, 1)


def train_score_matching(
    model: Potential,
    train_set: FrameDataset,
    val_set: FrameDataset,
    settings: ScoreMatchingSettings = ScoreMatchingSettings(),
    log: Logger | None = None,
    tag: str = "score",
) -> ScoreMatchingResult:
    """Train ``model`` in place by sliced score matching; keep the weights of the best validation loss.

    The validation loss uses ``val_vectors`` projections per frame, the same ones every
    epoch (seeded), so epochs are compared on one low-noise sample. Labels, if present,
    are ignored.
    """
    s = settings
    unknown = (set(train_set.elements) | set(val_set.elements)) - set(model.elements)
    if unknown:
        raise AlloopError(f"elements {sorted(unknown)} are not in the model's element set {list(model.elements)}")
    previous_threads = torch.get_num_threads()
    if s.threads:
        torch.set_num_threads(int(s.threads))
    try:
        start = time.perf_counter()
        torch.manual_seed(s.seed)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=s.lr)
        gen = torch.Generator().manual_seed(s.seed)

        def val_loss() -> float:
            return _epoch_loss(model, val_set, s, torch.Generator().manual_seed(s.seed + 7919), None, 0, s.val_vectors)

        best_loss, best_epoch = val_loss(), 0
        history = [(0, float("nan"), best_loss)]
        best_state = copy.deepcopy(model.state_dict())
        since_best, stopped = 0, False
        for epoch in range(1, s.max_epochs + 1):
            t0 = time.perf_counter()
            train_loss = _epoch_loss(model, train_set, s, gen, opt, s.seed * 1_000_003 + epoch, s.n_vectors)
            v = val_loss()
            history.append((epoch, train_loss, v))
            if log:
                log(f"{tag} epoch {epoch:4d}  train SSM loss {train_loss:.4g}  val SSM loss {v:.4g} (eV/A)^2  "
                    f"{time.perf_counter() - t0:.1f}s")
            if not math.isfinite(v):
                break
            if v < best_loss:
                best_loss, best_epoch, since_best = v, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                since_best += 1
                if since_best >= s.patience_epochs:
                    stopped = True
                    break
        model.load_state_dict(best_state)
        return ScoreMatchingResult(history, best_epoch, best_loss, history[-1][0], stopped,
                                   time.perf_counter() - start, parameter_fingerprint(model))
    finally:
        if s.threads:
            torch.set_num_threads(previous_threads)
