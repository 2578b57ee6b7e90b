"""EGNN energy model on torch-geometric: E(3)-invariant messages over a radius graph.

The invariant part of an E(n)-equivariant graph network (Satorras et al. 2021),
as used for the energy models of the ASTEROID paper:

    h_i^0    = embedding(Z_i)
    m_ij     = phi_e(h_i, h_j, rbf(d_ij)) * u(d_ij)          (u: smooth envelope)
    h_i^l+1  = h_i^l + phi_h(h_i^l, sum_j m_ij / message_norm)
    E        = sum_i phi_out(h_i^L)                           (per molecule)

Distances enter through Gaussian radial basis functions and a polynomial
envelope that vanishes with its first two derivatives at the cutoff, so
energies, forces and force derivatives are continuous when atoms cross it.
No coordinate updates: for an energy model forces come from -dE/dx. The
per-atom latent features are the final hidden states h^L (width
``hidden_features``), used for Q-residual uncertainty.

Representation and head (for two-head models, :mod:`alloop.potentials.two_head`):
``representation`` gives h^L, ``head_energy`` applies a readout MLP (the
model's own ``readout`` by default) and sums per molecule, ``take_head``
removes the readout.

Graph radius: the neighbour graph and the envelope use ``graph_radius`` (the
cutoff, unless inside ``using_graph_radius(r)``: spectral radius refinement);
the Gaussian basis keeps the centres it was trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from alloop.errors import AlloopError
from alloop.potentials.base import MAX_Z, AtomsBatch, Potential
from alloop.potentials.neighbors import neighbor_pairs


def polynomial_envelope(dist: torch.Tensor, cutoff: float) -> torch.Tensor:
    """1 - 28x^6 + 48x^7 - 21x^8 with x = d / cutoff: value, slope and curvature vanish at the cutoff."""
    x = dist / cutoff
    x6 = x**6
    u = 1.0 - 28.0 * x6 + 48.0 * x6 * x - 21.0 * x6 * x * x
    return u * (dist < cutoff)


class GaussianBasis(nn.Module):
    """``n_rbf`` Gaussians exp(-((d - mu_k) / width)^2) with centres evenly spaced on [0, cutoff]."""

    centers: torch.Tensor  # buffer [n_rbf]

    def __init__(self, cutoff: float, n_rbf: int) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, cutoff, n_rbf))
        self.width = cutoff / max(n_rbf - 1, 1)

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(((dist[:, None] - self.centers) / self.width) ** 2))


class EGNNLayer(MessagePassing):
    """One invariant EGNN layer: edge MLP on (h_i, h_j, rbf), summed messages, residual node MLP.

    The first edge linear map is split per input (W [h_i; h_j; r] = W_i h_i + W_j h_j + W_r r)
    so the node terms are computed once per atom rather than once per edge.
    """

    def __init__(self, hidden: int, n_rbf: int, message_norm: float) -> None:
        super().__init__(aggr="sum", flow="source_to_target")
        self.message_norm = float(message_norm)
        self.edge_target = nn.Linear(hidden, hidden)
        self.edge_source = nn.Linear(hidden, hidden, bias=False)
        self.edge_radial = nn.Linear(n_rbf, hidden, bias=False)
        self.edge_out = nn.Linear(hidden, hidden)
        self.node_mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(
        self, h: torch.Tensor, edge_index: torch.Tensor, rbf: torch.Tensor, envelope: torch.Tensor
    ) -> torch.Tensor:
        n = h.shape[0]
        agg = self.propagate(
            edge_index,
            a=self.edge_target(h),
            b=self.edge_source(h),
            radial=self.edge_radial(rbf),
            envelope=envelope,
            size=(n, n),
        )
        return h + self.node_mlp(torch.cat([h, agg / self.message_norm], dim=-1))

    def message(
        self, a_i: torch.Tensor, b_j: torch.Tensor, radial: torch.Tensor, envelope: torch.Tensor
    ) -> torch.Tensor:
        m = nn.functional.silu(a_i + b_j + radial)
        return nn.functional.silu(self.edge_out(m)) * envelope[:, None]


class EGNN(Potential):
    """Invariant EGNN energy model (``registry_name = "egnn"``).

    Args:
        elements: atomic numbers the model knows (others raise ValueError).
        cutoff: neighbour cutoff in Angstrom.
        hidden_features: width of hidden states and of the per-atom features.
        n_layers: message-passing layers (paper: 5).
        n_rbf: Gaussian radial basis functions.
        message_norm: summed messages are divided by this (about the typical neighbour count).
        seed: seed of the weight initialisation (the global RNG is not touched).
    """

    registry_name = "egnn"
    element_index: torch.Tensor  # buffer [MAX_Z + 1] int64
    readout: nn.Module | None  # None once take_head removed it
    accepts_graph_radius = True  # graph and envelope at graph_radius; the RBF centres stay on [0, cutoff]

    def __init__(
        self,
        elements: Sequence[int],
        cutoff: float = 5.0,
        hidden_features: int = 64,
        n_layers: int = 3,
        n_rbf: int = 16,
        message_norm: float = 10.0,
        seed: int = 0,
    ) -> None:
        super().__init__(elements, cutoff)
        if not self.elements or not all(1 <= z <= MAX_Z for z in self.elements):
            raise ValueError(f"elements must be atomic numbers in 1..{MAX_Z}, got {list(elements)}")
        for name, value in (("hidden_features", hidden_features), ("n_layers", n_layers), ("n_rbf", n_rbf)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if not message_norm > 0:
            raise ValueError(f"message_norm must be positive, got {message_norm}")
        self.hidden_features = int(hidden_features)
        self.n_layers = int(n_layers)
        self.n_rbf = int(n_rbf)
        self.message_norm = float(message_norm)
        self.seed = int(seed)
        index = torch.full((MAX_Z + 1,), -1, dtype=torch.int64)
        index[list(self.elements)] = torch.arange(len(self.elements))
        self.register_buffer("element_index", index)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.embedding = nn.Embedding(len(self.elements), self.hidden_features)
            self.rbf = GaussianBasis(self.cutoff, self.n_rbf)
            self.layers = nn.ModuleList(
                EGNNLayer(self.hidden_features, self.n_rbf, self.message_norm) for _ in range(self.n_layers)
            )
            self.readout = nn.Sequential(
                nn.Linear(self.hidden_features, self.hidden_features), nn.SiLU(), nn.Linear(self.hidden_features, 1)
            )

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "elements": list(self.elements),
            "cutoff": self.cutoff,
            "hidden_features": self.hidden_features,
            "n_layers": self.n_layers,
            "n_rbf": self.n_rbf,
            "message_norm": self.message_norm,
            "seed": self.seed,
        }

    @property
    def feature_dim(self) -> int:
        return self.hidden_features

    @property
    def dtype(self) -> torch.dtype:
        return self.embedding.weight.dtype

    def representation(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The final hidden states h^L [N, F]: the readout's input, and the per-atom features."""
        self.check_batch(batch)
        radius = self.graph_radius
        edge_index, _, dist = neighbor_pairs(batch, radius)
        rbf = self.rbf(dist)
        envelope = polynomial_envelope(dist, radius)
        h = self.embedding(self.element_index[batch.numbers])
        for layer in self.layers:
            h = layer(h, edge_index, rbf, envelope)
        return h, h

    def head_energy(self, state: torch.Tensor, batch: AtomsBatch, head: nn.Module | None = None) -> torch.Tensor:
        """Energy per graph [B]: ``head`` (default: the model's own ``readout`` MLP) per atom, summed per molecule."""
        head = self._own_head() if head is None else head
        atom_energy = head(state).squeeze(-1)
        return torch.zeros(batch.n_graphs, dtype=state.dtype, device=state.device).index_add(0, batch.batch, atom_energy)

    def head_features(self, state: torch.Tensor, batch: AtomsBatch, head: nn.Module | None = None) -> torch.Tensor:
        """Per atom [N, K + 1]: the input of ``head``'s last linear layer (default: the model's own readout) and a
        column of ones for its bias: the gradient of the atom's energy with respect to that layer's weights."""
        head = self._own_head() if head is None else head
        layers = list(head.children()) if isinstance(head, nn.Sequential) else [head]
        last = layers[-1] if layers else None
        if not isinstance(last, nn.Linear) or last.out_features != 1:
            raise AlloopError("this EGNN head does not end in a linear layer with one output")
        x = state
        for layer in layers[:-1]:
            x = layer(x)
        if last.bias is not None:
            x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        return x

    def last_layer_features(self, batch: AtomsBatch) -> torch.Tensor:
        return self.head_features(self.representation(batch)[0], batch) * self.output_scale.to(self.dtype)

    def _own_head(self) -> nn.Module:
        if self.readout is None:
            raise RuntimeError("this EGNN's readout was taken out (take_head): it is the body of a two-head model")
        return self.readout

    def take_head(self) -> nn.Module:
        """Remove the energy readout MLP from this model and return it."""
        head = self._own_head()
        self.readout = None
        return head

    def energy_and_features(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        h, features = self.representation(batch)
        return self.head_energy(h, batch), features
