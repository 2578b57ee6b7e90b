"""Uncertainty-driven MD: a bounded bias energy that pulls replicas towards what the model does not know.

(Not ASTEROID's bias B, the score that chooses frames for expensive labels: :mod:`alloop.uncertainty.bias_score`.)

The bias is a smooth function of the Q-residual of the model's own per-atom
latent features (the same PCA model that flags frames, alloop.uncertainty),
so no committee is needed. For a frame with atoms i:

    r_i   = Q_i / limit_{e(i)}                   (the per-atom ratio; > 1 beyond the atom's limit)
    s     = log( mean_i exp(r_i) )               (a smooth maximum over the atoms, mean(r) <= s <= max(r))
    E_bias = -A * (1 - exp(-s / s0))              (A = ``strength_eV``, s0 = ``scale``)

E_bias is 0 at s = 0 and saturates at -A, so a replica gains at most A by
leaving what the model knows and is never pushed without limit (the form of
Kulichenko et al.'s uncertainty-driven dynamics, with the Q ratio in place of
an ensemble variance). Its forces come by autograd through the features, in
the same backward pass as the model's forces. MD then samples
exp(-(E + E_bias)/kT): a recorded frame's bias energy reweights it to the
model's ensemble (w = exp(E_bias/kT)); labels and the thermal energy window
use the labelled energies, never the bias.

Units: eV, Angstrom; ``scale`` is dimensionless (a Q ratio).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from alloop.errors import AlloopError
from alloop.potentials.base import AtomsBatch, Potential
from alloop.uncertainty.qresidual import QResidualModel

_TINY = 1e-300


@dataclass(frozen=True)
class BiasSettings:
    """``strength_eV`` A (0: no bias) and ``scale`` s0 of E_bias = -A (1 - exp(-s / s0))."""

    strength_eV: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.strength_eV) and self.strength_eV >= 0):
            raise AlloopError(f"the uncertainty bias strength must be >= 0 eV, got {self.strength_eV}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise AlloopError(f"the uncertainty bias scale must be > 0, got {self.scale}")

    @property
    def enabled(self) -> bool:
        return self.strength_eV > 0


class QResidualBias(torch.nn.Module):
    """The Q ratios of a :class:`QResidualModel` as a differentiable torch function, and the bias energy."""

    def __init__(self, uq: QResidualModel, settings: BiasSettings, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.settings = settings
        jm = uq.settings.limit == "jackson_mudholkar"
        self.keys = sorted(uq.groups)
        for k in self.keys:
            group = uq.groups[k]
            limit = max(group.q_jm if jm else group.q_empirical, _TINY)
            self.register_buffer(f"mean_{k}", torch.as_tensor(group.pca.mean, dtype=dtype))
            self.register_buffer(f"components_{k}", torch.as_tensor(group.pca.components, dtype=dtype))
            self.register_buffer(f"limit_{k}", torch.as_tensor(limit, dtype=dtype))

    def atom_ratios(self, numbers: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Per-atom Q / limit [N] (as :meth:`QResidualModel.atom_scores`' ``q_ratio``), differentiable."""
        known = torch.as_tensor([k for k in self.keys if k != 0], dtype=numbers.dtype, device=numbers.device)
        group = torch.where(torch.isin(numbers, known), numbers, torch.zeros_like(numbers))
        out = torch.zeros(numbers.shape[0], dtype=features.dtype, device=features.device)
        for k in torch.unique(group).tolist():
            rows = group == k
            xc = features[rows].to(out.dtype) - getattr(self, f"mean_{k}").to(out.dtype)
            p = getattr(self, f"components_{k}").to(out.dtype)
            resid = xc - (xc @ p) @ p.T
            out = out.index_put((rows.nonzero().squeeze(1),),
                                (resid * resid).sum(dim=1) / getattr(self, f"limit_{k}").to(out.dtype))
        return out

    def frame_score(self, ratios: torch.Tensor, batch: AtomsBatch) -> torch.Tensor:
        """s = log mean exp(r_i) per frame [B] (a smooth maximum of the atom ratios)."""
        n_graphs = batch.n_graphs
        top = torch.zeros(n_graphs, dtype=ratios.dtype).scatter_reduce(
            0, batch.batch, ratios.detach(), "amax", include_self=False)
        sums = torch.zeros(n_graphs, dtype=ratios.dtype).index_add_(0, batch.batch, torch.exp(ratios - top[batch.batch]))
        return top + torch.log(sums / batch.n_atoms.to(ratios.dtype))

    def energy(self, batch: AtomsBatch, features: torch.Tensor) -> torch.Tensor:
        """E_bias per frame [B] (eV)."""
        s = self.frame_score(self.atom_ratios(batch.numbers, features), batch)
        a, s0 = self.settings.strength_eV, self.settings.scale
        return -a * (1.0 - torch.exp(-s / s0))


@dataclass
class BiasedOutput:
    """The model's energies [B] (eV, without the bias), the total forces [N, 3] (model + bias, eV/A),
    features [N, F] (detached) and the bias energies [B] (eV)."""

    energy: torch.Tensor
    forces: torch.Tensor
    features: torch.Tensor
    bias_energy: torch.Tensor


def biased_forces(model: Potential, bias: QResidualBias, batch: AtomsBatch) -> BiasedOutput:
    """Energies, features and the forces of E_model + E_bias, in one backward pass (a Delta model's baseline,
    which has no autograd graph, is added after it)."""
    from alloop.potentials.baseline import DeltaPotential

    if isinstance(model, DeltaPotential):
        out = biased_forces(model.inner, bias, batch)
        energy, forces = model.baseline.on_batch(batch)
        return BiasedOutput(energy=out.energy + energy.to(out.energy.dtype), forces=out.forces + forces.to(out.forces.dtype),
                            features=out.features, bias_energy=out.bias_energy)
    positions = batch.positions.detach().requires_grad_(True)
    batch = batch.with_positions(positions)
    with torch.enable_grad():
        residual, features = model.energy_and_features(batch)
        residual = residual * model.output_scale.to(residual.dtype)
        e_bias = bias.energy(batch, features)
        (grad,) = torch.autograd.grad(residual.sum() + e_bias.sum().to(residual.dtype), positions, allow_unused=True)
    forces = -grad if grad is not None else torch.zeros_like(positions)
    energy = residual.detach() + model.reference_energy(batch)
    return BiasedOutput(energy=energy, forces=forces, features=features.detach(), bias_energy=e_bias.detach())
