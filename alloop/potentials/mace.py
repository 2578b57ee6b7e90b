"""MACE as a Potential: a MACE model file a user brings (MACE-OFF, MACE-MP, mace_run_train's), or a new MACE.

The network is mace's own ``ScaleShiftMACE`` (:mod:`alloop.potentials.mace_config` reads its config and builds
it with mace's constructors), run by mace's own ``forward`` on graphs from alloop's neighbour lists
(:func:`~alloop.potentials.neighbors.neighbor_list`: molecules and periodic cells, edges sender i -> receiver j
with the vector r_j - r_i + shift, as mace's). mace's force computation is skipped: the base class
differentiates the energy, so forces, Hessians and force losses go through alloop's autograd.

* ``model_file=PATH``: the network of a MACE model file, with its weights and its dtype (float64 or float32).
  It predicts total energies on its own reference (the file's per-element E0s, e.g. PBE for MACE-MP): the
  returned "residual" is that total energy, and alloop's ``atomic_energies`` (fitted by the trainer on
  label - prediction) re-reference it to the campaign's fidelity; ``output_scale`` stays 1.
* ``mace_config={...}``: a new network of that config (mace's config in JSON form, as ``hyperparameters()``
  records it), weights drawn from ``seed``. alloop's checkpoints rebuild a MACE this way and then load their
  weights, so a fine-tuned MACE never needs the original file again.

Per-atom features: the scalar (0e) channels of the node features after the last product block, the input of
mace's last (non-linear) readout (``features="last"``), or of every layer, concatenated (``features="all"``).
A multi-head file runs its ``head`` (default: its only head, or the one named "Default"). The model knows every
element of the file. Units: Angstrom, eV.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from alloop.potentials.base import AtomsBatch, Potential
from alloop.potentials.copying import exact_deepcopy
from alloop.potentials.mace_config import build_network, config_json, network_dtype, read_model_file
from alloop.potentials.neighbors import neighbor_list

FEATURE_MODES = ("last", "all")
#: buffers that are mathematical constants (Clebsch-Gordan / Wigner 3j): kept exact through dtype changes
_CONSTANT = re.compile(r"(^|\.)(U_matrix_\d+|_w3j_\d+_\d+_\d+)$")


def _restore_after_load(module: torch.nn.Module, incompatible_keys: Any) -> None:
    """load_state_dict post-hook: a checkpoint of a float32 model holds its constants rounded; put the exact ones back."""
    assert isinstance(module, MACEPotential)
    module.restore_constants()


def _head_index(heads: Sequence[str], head: str | None) -> int:
    """The index of ``head`` among a network's heads (None: the only one, or the one named "Default")."""
    names = [str(h) for h in heads]
    if head is None:
        defaults = [k for k, name in enumerate(names) if name.lower() == "default"]
        if len(names) == 1 or defaults:
            return 0 if len(names) == 1 else defaults[0]
        raise ValueError(f"this MACE has several heads ({', '.join(names)}) and none named 'Default': choose a head")
    if head not in names:
        raise ValueError(f"head {head!r} is not one of this MACE's heads ({', '.join(names)})")
    return names.index(head)


class MACEPotential(Potential):
    """mace's ``ScaleShiftMACE`` as an alloop Potential (``registry_name = "mace"``).

    Args:
        elements: atomic numbers the campaign needs; each must be one the network knows (the model knows all the
            network's elements).
        model_file: a MACE model file (``torch.save`` of the network) to start from: its weights and dtype.
        mace_config: mace's config of a new network (JSON form, as :meth:`hyperparameters` records it).
        head: the head of a multi-head network to run.
        features: "last" (scalar channels of the last layer, the last readout's input) or "all" (every layer's).
        seed: weight initialisation of a new network (``mace_config``); the global RNG is untouched.
        pretrained: whether the weights are pretrained (default: True with ``model_file``); a pretrained model's
            output is in eV already, so trainers leave ``output_scale`` at 1.
        cutoff: must equal the network's ``r_max`` if given.
        mace_version: the mace version that wrote the checkpoint (recorded; not checked).
    """

    registry_name = "mace"
    type_index: torch.Tensor  # buffer [max Z + 1] int64: the network's species index of each atomic number

    def __init__(
        self, elements: Sequence[int] = (), model_file: str | None = None, mace_config: dict[str, Any] | None = None,
        head: str | None = None, features: str = "last", seed: int = 0, pretrained: bool | None = None,
        cutoff: float | None = None, mace_version: str | None = None,
    ) -> None:
        if (model_file is None) == (mace_config is None):
            raise ValueError("a MACE needs either model_file (a MACE .model file) or mace_config")
        if features not in FEATURE_MODES:
            raise ValueError(f"features must be one of {FEATURE_MODES}, got {features!r}")
        source = None if model_file is None else read_model_file(model_file)
        config = config_json(source) if source is not None else dict(mace_config or {})
        net = build_network(config, 0 if source is not None else seed)
        super().__init__(config["atomic_numbers"], float(config["r_max"]))
        if cutoff is not None and float(cutoff) != self.cutoff:
            raise ValueError(f"cutoff {cutoff} differs from the MACE's own r_max {self.cutoff} A")
        unknown = sorted({int(z) for z in elements} - set(self.elements))
        if unknown:
            raise ValueError(f"elements {unknown} are not among the {len(self.elements)} elements this MACE knows")
        self.mace_config, self.head, self.features, self.seed = config, head, features, int(seed)
        self.head_index = _head_index(config.get("heads") or ["Default"], head)
        self.pretrained = source is not None if pretrained is None else bool(pretrained)
        self.learns_output_scale = not self.pretrained
        self.net: Any = net  # mace's ScaleShiftMACE (untyped)
        self._constants = {name: buf.detach().clone() for name, buf in net.named_buffers() if _CONSTANT.search(name)}
        index = torch.full((int(max(self.elements)) + 1,), -1, dtype=torch.int64)
        index[torch.as_tensor(config["atomic_numbers"])] = torch.arange(len(config["atomic_numbers"]))
        self.register_buffer("type_index", index, persistent=False)
        self._columns = self._feature_columns()
        self.register_load_state_dict_post_hook(_restore_after_load)
        #: the file's dtype (build_model keeps it unless a dtype is asked for); None for a new network
        self.weights_dtype: torch.dtype | None = None
        if source is not None:
            self.net.load_state_dict(source.state_dict(), strict=True)
            self.restore_constants()
            self.weights_dtype = network_dtype(source)
            self.to(self.weights_dtype)

    # ---- precision -----------------------------------------------------------------
    def restore_constants(self) -> None:
        """Put the exact Clebsch-Gordan / Wigner 3j constants back, in each buffer's current dtype and device."""
        buffers = dict(self.net.named_buffers())
        with torch.no_grad():
            for name, exact in self._constants.items():
                buffers[name].copy_(exact.to(dtype=buffers[name].dtype, device=buffers[name].device))

    def _apply(self, fn, recurse=True):
        """After a dtype change the constants are recomputed from the float64 ones, not rounded from float32."""
        out = super()._apply(fn, recurse)
        if "_constants" in self.__dict__:
            self.restore_constants()
        return out

    def __deepcopy__(self, memo: dict[int, Any]) -> MACEPotential:
        """A deep copy that keeps e3nn's generated code exact (:func:`~alloop.potentials.copying.exact_deepcopy`)."""
        return exact_deepcopy(self, memo)

    # ---- the protocol --------------------------------------------------------------
    def _feature_columns(self) -> torch.Tensor:
        """Columns of mace's concatenated node features that are scalar channels of the chosen layers."""
        columns: list[int] = []
        start, n_layers = 0, len(self.net.products)
        for k, product in enumerate(self.net.products):
            irreps = product.linear.irreps_out
            if self.features == "all" or k == n_layers - 1:
                for (_, ir), part in zip(irreps, irreps.slices(), strict=True):
                    if ir.l == 0 and ir.p == 1:
                        columns.extend(range(start + part.start, start + part.stop))
            start += irreps.dim
        return torch.tensor(columns, dtype=torch.int64)

    @property
    def feature_dim(self) -> int:
        return int(self._columns.numel())

    def hyperparameters(self) -> dict[str, Any]:
        import mace

        return {"elements": list(self.elements), "mace_config": self.mace_config, "head": self.head,
                "features": self.features, "seed": self.seed, "pretrained": self.pretrained,
                "mace_version": mace.__version__}

    def graph(self, batch: AtomsBatch) -> dict[str, torch.Tensor]:
        """mace's input dict for ``batch``: one-hot species, edges sender i -> receiver j, shifts, cells, heads."""
        i, j, shifts = neighbor_list(batch, self.cutoff)
        like = batch.positions
        positions = like if like.requires_grad else like.clone()  # mace sets requires_grad on the tensor it gets
        node_attrs = torch.nn.functional.one_hot(self.type_index[batch.numbers], len(self.mace_config["atomic_numbers"]))
        zero_cells = torch.zeros(batch.n_graphs, 3, 3, dtype=like.dtype, device=like.device)
        return {
            "positions": positions, "node_attrs": node_attrs.to(like.dtype), "edge_index": torch.stack([i, j]),
            "shifts": shifts if shifts is not None else torch.zeros(i.numel(), 3, dtype=like.dtype, device=like.device),
            "cell": batch.cell.to(like.dtype) if batch.cell is not None else zero_cells,
            "batch": batch.batch, "ptr": batch.ptr,
            "head": torch.full((batch.n_graphs,), self.head_index, dtype=torch.int64, device=like.device),
        }

    def energy_and_features(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """mace's total energy per graph [B] (its E0s included) and the per-atom scalar features [N, F]."""
        self.check_batch(batch)
        out = self.net(self.graph(batch), training=False, compute_force=False)
        energy, node_feats = out["energy"], out["node_feats"]
        assert energy is not None and node_feats is not None  # a ScaleShiftMACE always returns both
        return energy, node_feats[:, self._columns.to(node_feats.device)]
