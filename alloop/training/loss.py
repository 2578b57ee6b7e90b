"""The per-frame loss of ASTEROID (paper Eq. 1 and the bias-aware Eq. 2).

For frame j with k_j atoms::

    l_f(j) = mean over its k_j atoms and x, y, z of l(F_pred - f)           (eV/A or (eV/A)^2)
    l_e(j) = l((E_pred - e) / k_j)                                           (per-atom energy error)
    L      = sum_j w_j [(1 - rho) l_f(j) + rho l_e(j)] / sum_j w_j

``l`` is the absolute error (``"mae"``, the paper's released code), the
squared error (``"mse"``) or the Huber loss (``"huber"``: squared below
``HUBER_DELTA``, absolute above; the same delta for force components in eV/A
and per-atom energies in eV); rho is ``energy_weight``. The weights multiply the
whole per-frame loss, both terms, for every loss type. The energy error is
divided by the number of atoms so molecules of different sizes contribute on
one scale (per-atom energy, like the per-component force error).

Mini-batches: the normaliser ``sum_j w_j`` must be the dataset's, not the
batch's, or a batch of low-weight frames would count as much as one of
high-weight frames (with batch size 1 the weights would vanish). The trainer
passes ``normalizer = batch_size * mean weight of the dataset``, an unbiased
estimate of the full-data objective; without it the batch's own sum is used,
which is exact for a full batch.
"""

from __future__ import annotations

import torch

from alloop.errors import AlloopError

LOSS_TYPES = ("mae", "mse", "huber")
#: the Huber loss's switch from squared to absolute error (eV/A for forces, eV/atom for energies)
HUBER_DELTA = 0.01


def _elementwise(diff: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "mae":
        return diff.abs()
    if kind == "mse":
        return diff.square()
    if kind == "huber":
        return torch.nn.functional.huber_loss(diff, torch.zeros_like(diff), reduction="none", delta=HUBER_DELTA)
    raise AlloopError(f"unknown loss type '{kind}' (use one of {', '.join(LOSS_TYPES)})")


def per_frame_losses(
    energy_pred: torch.Tensor,
    forces_pred: torch.Tensor,
    energy_true: torch.Tensor,
    forces_true: torch.Tensor,
    graph_index: torch.Tensor,
    n_atoms: torch.Tensor,
    kind: str = "mae",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Force and energy loss of each frame, ([B], [B]); atoms belong to frames by ``graph_index``."""
    n_graphs = n_atoms.numel()
    per_atom = _elementwise(forces_pred - forces_true, kind).sum(-1)  # [N]
    summed = torch.zeros(n_graphs, dtype=per_atom.dtype, device=per_atom.device).index_add(0, graph_index, per_atom)
    counts = n_atoms.to(per_atom.dtype)
    force_loss = summed / (3.0 * counts)
    energy_loss = _elementwise((energy_pred - energy_true) / counts, kind)
    return force_loss, energy_loss


def weighted_loss(
    force_loss: torch.Tensor,
    energy_loss: torch.Tensor,
    weight: torch.Tensor,
    energy_weight: float,
    normalizer: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """``sum_j w_j [(1 - rho) l_f + rho l_e] / normalizer`` (default normaliser: ``sum_j w_j``)."""
    if not 0.0 <= energy_weight <= 1.0:
        raise AlloopError(f"energy_weight must be in [0, 1], got {energy_weight}")
    frame = (1.0 - energy_weight) * force_loss + energy_weight * energy_loss
    w = weight.to(frame.dtype)
    norm = w.sum() if normalizer is None else normalizer
    if float(norm) <= 0:
        raise AlloopError("the loss weights sum to zero")
    return (w * frame).sum() / norm


def eq1_loss(
    energy_pred: torch.Tensor,
    forces_pred: torch.Tensor,
    energy_true: torch.Tensor,
    forces_true: torch.Tensor,
    graph_index: torch.Tensor,
    n_atoms: torch.Tensor,
    weight: torch.Tensor | None = None,
    energy_weight: float = 0.01,
    kind: str = "mae",
    normalizer: float | torch.Tensor | None = None,
    energy_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 1 (Eq. 2 with ``weight``) on one batch; see the module docstring.

    ``energy_mask`` [B] multiplies each frame's energy term: 0 keeps a frame's energy out of the loss (replay
    frames, whose energies are on another reference), so it counts by its forces only.
    """
    lf, le = per_frame_losses(energy_pred, forces_pred, energy_true, forces_true, graph_index, n_atoms, kind)
    if energy_mask is not None:
        le = le * energy_mask.to(le.dtype)
    if weight is None:
        weight = torch.ones_like(lf)
    return weighted_loss(lf, le, weight, energy_weight, normalizer)
