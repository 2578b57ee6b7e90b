"""SO3LR as a Potential: the pretrained molecular foundation model shipped in the so3krates-torch wheel.

SO3LR (Kabylda, Frank et al.) is an SO3krates transformer (4.5 A short-range graph, 3 layers, 128 invariant
features) plus physical terms: ZBL repulsion on the short-range edges, and on long-range edges electrostatics
of learned partial charges and vdW-QDO dispersion of learned Hirshfeld ratios. The network is
so3krates-torch's own ``SO3LR`` module with the weights of its wheel (``so3krates_torch/pretrained/so3lr``;
never downloaded), run by its own ``forward`` on graphs from alloop's neighbour lists: a batch of replicas is
one call. so3krates' force code is skipped; the base class differentiates the energy, so forces, Hessians and
force losses go through alloop's autograd.

What alloop computes is what so3krates' ``SO3LRCalculator`` computes with its defaults: the long-range edges
are every pair (and periodic image) within ``long_range_cutoff`` = 12 A; electrostatics is the erf-damped
Coulomb sum with a smooth shifted-force cutoff (switched on from 0.45 x 12 A), dispersion is switched off
between 10 and 12 A (``dispersion_damping`` = 2 A); no Ewald/PME. Every structure is taken as neutral and
closed-shell (total charge 0, spin 0: the charge and spin embeddings' inputs, and the partial charges sum to 0).
Periodic cells therefore work as pairwise sums over the images within 12 A, as in so3krates' calculator.

Energies are SO3LR's total energies (on its training data's reference, with its own per-element shifts): the returned
"residual" is that total, and alloop's ``atomic_energies`` (fitted by the trainer on label - prediction)
re-reference it to the campaign's fidelity; ``output_scale`` stays 1. Per-atom features: the invariant
features after the last transformer layer, the input of the energy, charge and Hirshfeld readouts (width 128).
Units: Angstrom, eV. The weights are float32; ``.double()`` gives a float64 model.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence
from typing import Any

import torch

from alloop.errors import AlloopError
from alloop.potentials.base import AtomsBatch, Potential
from alloop.potentials.neighbors import neighbor_list

#: alloop name -> (package, file) of a pretrained network shipped in the so3krates-torch wheel
PRETRAINED = {"so3lr": ("so3krates_torch.pretrained.so3lr", "so3lr.model")}
#: so3krates' SO3LRCalculator defaults: the long-range cutoff (A) and the width of dispersion's switch-off (A)
LONG_RANGE_CUTOFF_A = 12.0
DISPERSION_DAMPING_A = 2.0
#: the largest atomic number the network's tables hold (its partial-charge embedding has 100 rows)
MAX_ELEMENT = 99
_N_SPECIES = 118  # the width of SO3LR's one-hot element encoding (Z = 1..118)


@functools.lru_cache(maxsize=1)
def _packaged_network(base: str) -> torch.nn.Module:
    """The pretrained network ``base`` as so3krates-torch ships it (read once per process; do not modify it)."""
    if base not in PRETRAINED:
        raise ValueError(f"unknown pretrained SO3LR {base!r} (known: {', '.join(PRETRAINED)})")
    package, name = PRETRAINED[base]
    resource = importlib.resources.files(package).joinpath(name)
    if not resource.is_file():
        raise ValueError(f"the so3krates-torch wheel does not ship {base!r} ({package}/{name}); alloop never downloads it")
    with importlib.resources.as_file(resource) as path:
        net = torch.load(path, map_location="cpu", weights_only=False)  # a pickle from the installed wheel
    if type(net).__name__ != "SO3LR":
        raise ValueError(f"{package}/{name} holds a {type(net).__name__}, not an SO3LR network")
    return net


class SO3LRPotential(Potential):
    """so3krates-torch's ``SO3LR`` with its packaged weights as an alloop Potential (``registry_name = "so3lr"``).

    Args:
        elements: atomic numbers of the campaign (1..99, the range of the network's tables).
        base: the pretrained network of the so3krates-torch wheel ("so3lr", the only one; required).
        cutoff: must equal SO3LR's short-range cutoff (4.5 A) if given.
        long_range_cutoff: A, the cutoff of electrostatics and dispersion (so3krates' calculator default, 12).
        dispersion_damping: A, the width of dispersion's switch-off below ``long_range_cutoff`` (default 2).
        seed: accepted as every architecture's, unused: the weights are the packaged ones.
        so3krates_version: the so3krates-torch version that wrote a checkpoint (recorded; not checked).
    """

    registry_name = "so3lr"
    learns_output_scale = False  # SO3LR's output is in eV already

    def __init__(
        self, elements: Sequence[int], base: str | None = None, cutoff: float | None = None,
        long_range_cutoff: float = LONG_RANGE_CUTOFF_A, dispersion_damping: float = DISPERSION_DAMPING_A,
        seed: int = 0, so3krates_version: str | None = None,
    ) -> None:
        import copy

        if base is None:
            raise ValueError(f"SO3LR exists as pretrained weights only: base must name them ({', '.join(PRETRAINED)})")
        net: Any = copy.deepcopy(_packaged_network(base))  # so3krates' SO3LR (untyped)
        super().__init__(elements, float(net.r_max))
        if cutoff is not None and float(cutoff) != self.cutoff:
            raise ValueError(f"cutoff {cutoff} differs from SO3LR's own short-range cutoff {self.cutoff} A")
        outside = [z for z in self.elements if not 1 <= z <= MAX_ELEMENT]
        if outside:
            raise ValueError(f"elements {outside} are outside SO3LR's tables (atomic numbers 1..{MAX_ELEMENT})")
        if not 0 < dispersion_damping < long_range_cutoff or long_range_cutoff <= self.cutoff:
            raise ValueError(f"need {self.cutoff} A < long_range_cutoff and 0 < dispersion_damping < "
                             f"long_range_cutoff, got {long_range_cutoff} and {dispersion_damping}")
        self.base, self.seed = base, int(seed)
        self.long_range_cutoff, self.dispersion_damping = float(long_range_cutoff), float(dispersion_damping)
        net.r_max_lr = self.long_range_cutoff  # what SO3LRCalculator sets on the network
        net.dispersion_energy_cutoff_lr_damping = self.dispersion_damping
        self.net = net
        #: the network's attributes before any forward: its forward keeps tensors of the last call on itself
        self._own_attributes = frozenset(vars(net))

    def hyperparameters(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"elements": list(self.elements), "base": self.base, "long_range_cutoff": self.long_range_cutoff,
                "dispersion_damping": self.dispersion_damping, "so3krates_version": version("so3krates-torch")}

    @property
    def feature_dim(self) -> int:
        return int(self.net.num_features)

    def graph(self, batch: AtomsBatch) -> dict[str, torch.Tensor]:
        """so3krates' input dict for ``batch``: long-range edges within ``long_range_cutoff``, the short-range ones
        within ``cutoff`` among them (sender i -> receiver j, vector r_j - r_i + shift), neutral closed shells."""
        i, j, shifts = neighbor_list(batch, self.long_range_cutoff)
        like = batch.positions
        positions = like if like.requires_grad else like.clone()  # so3krates sets requires_grad on the tensor it gets
        if shifts is None:
            shifts = torch.zeros(i.numel(), 3, dtype=like.dtype, device=like.device)
        with torch.no_grad():
            short = (like[j] - like[i] + shifts).norm(dim=-1) < self.cutoff
        n = batch.n_graphs
        zeros = torch.zeros(n, dtype=like.dtype, device=like.device)
        one_hot = torch.nn.functional.one_hot(batch.numbers - 1, _N_SPECIES).to(like.dtype)
        return {
            "positions": positions, "node_attrs": one_hot, "atomic_numbers": batch.numbers,
            "edge_index": torch.stack([i[short], j[short]]), "shifts": shifts[short],
            "edge_index_lr": torch.stack([i, j]), "shifts_lr": shifts,
            "cell": batch.cell.to(like.dtype) if batch.cell is not None else like.new_zeros(n, 3, 3),
            "batch": batch.batch, "ptr": batch.ptr, "head": torch.zeros(n, dtype=torch.int64, device=like.device),
            "total_charge": zeros, "total_spin": zeros,
        }

    def _run(self, batch: AtomsBatch) -> dict[str, torch.Tensor]:
        """so3krates' forward (no forces) on ``batch``; the tensors it keeps on the network are dropped after."""
        self.check_batch(batch)
        try:
            return self.net(self.graph(batch), compute_force=False, return_descriptors=True)
        finally:
            for name in set(vars(self.net)) - self._own_attributes:
                delattr(self.net, name)

    def energy_and_features(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """SO3LR's total energy per graph [B] (short-range network, ZBL, electrostatics, dispersion) and the
        invariant features of the last layer [N, 128]."""
        out = self._run(batch)
        return out["energy"], out["inv_features"]

    def last_layer_features(self, batch: AtomsBatch) -> torch.Tensor:
        """Per atom [N, 129]: the input of the energy readout's last linear layer times the per-element energy scale
        after it, and that scale (the bias's column), times ``output_scale``."""
        head = self.net.atomic_energy_output_block
        if head.final_non_linearity:
            raise AlloopError("this SO3LR's energy readout ends in a non-linearity: its last-layer features are not built")
        x = self._run(batch)["inv_features"]
        for layer in head.layers:
            x = head.non_linearity(layer(x)) if head.use_non_linearity else layer(x)
        scale = head.energy_scales(torch.nn.functional.one_hot(batch.numbers - 1, _N_SPECIES).to(x.dtype))
        return torch.cat([x * scale, scale], dim=1) * self.output_scale.to(x.dtype)
