"""SevenNet as a Potential: the pretrained SevenNet-0 from the ``sevenn`` wheel, or a SevenNet from scratch.

The network is sevenn's own ``AtomGraphSequential`` (NequIP-style equivariant
interaction blocks), fed with graphs from alloop's neighbour lists: a batch of
replicas (any molecules) is one call. Edge vectors are computed from
``batch.positions``, sevenn's force module is skipped, and the base class
differentiates the energy, so forces, Hessians and force losses all go through
alloop's autograd. Periodic cells work through ``neighbor_pairs`` (no stress).

* ``base="7net-0"``: SevenNet-0 (11Jul2024) rebuilt by sevenn's loader from the
  checkpoint packaged in the installed wheel (never downloaded, never read from
  alloop's files). It predicts PBE(+U)/VASP-referenced total energies (MPtrj),
  including its own per-element shifts and scales: the returned "residual" is
  that total energy, and alloop's ``atomic_energies`` (fitted by the trainer on
  label - prediction) re-reference it to the campaign's fidelity.
* ``base=None``: a new SevenNet of ``hidden_features`` channels, ``n_layers``
  interaction blocks, ``lmax``, ``n_rbf`` Bessel functions (shift 0, scale 1),
  initialised from ``seed``; ``hyperparameters()`` records its full sevenn config.

Per-atom features: the scalar (0e) channels of the node features after the last
interaction block (``features="last"``) or after every block, concatenated
(``features="all"``). ``freeze_blocks=k`` freezes the element and distance
embeddings and the first k interaction blocks (``requires_grad=False``).
Representation and head (for two-head models, :mod:`alloop.potentials.two_head`):
``representation`` runs sevenn's modules up to the last interaction block,
``head_energy`` the energy readout (the linear layers and sevenn's per-species
rescale after it, then the per-graph sum), ``take_head`` removes that readout.
Units: Angstrom, eV. Built in float32; ``.double()`` gives an exact float64 model
(one-hot cast here, Wigner 3j symbols recomputed, deep copies keep e3nn's code).
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from alloop.errors import AlloopError
from alloop.potentials.base import MAX_Z, AtomsBatch, Potential
from alloop.potentials.copying import exact_deepcopy
from alloop.potentials.neighbors import neighbor_pairs

# alloop name -> the sevenn._const attribute of a checkpoint shipped inside the wheel.
PRETRAINED = {"7net-0": "SEVENNET_0_11Jul2024"}
FEATURE_MODES = ("last", "all")
_EMBEDDING = ("edge_embedding", "onehot_idx_to_onehot", "onehot_to_feature_x")
_SKIPPED = ("force_output",)  # alloop's base class computes forces by autograd
_REDUCE = "reduce_total_enegy"  # sevenn's sum of atomic energies per graph (sevenn's spelling)
_W3J = re.compile(r"_w3j_(\d+)_(\d+)_(\d+)")  # e3nn's Wigner 3j buffers

# A from-scratch SevenNet: every model key sevenn's builder reads (species keys are added from ``elements``).
_SCRATCH_CONFIG: dict[str, Any] = {
    "cutoff": 5.0, "channel": 32, "lmax": 2, "lmax_edge": -1, "lmax_node": -1, "is_parity": False,
    "num_convolution_layer": 3, "irreps_manual": False,
    "radial_basis": {"radial_basis_name": "bessel", "bessel_basis_num": 8},
    "cutoff_function": {"cutoff_function_name": "poly_cut", "poly_cut_p_value": 6},
    "act_radial": "silu", "act_scalar": {"e": "silu", "o": "tanh"}, "act_gate": {"e": "silu", "o": "tanh"},
    "weight_nn_hidden_neurons": [64, 64], "conv_denominator": 8.0, "train_denominator": False,
    "train_shift_scale": False, "use_bias_in_linear": False, "readout_as_fcn": False,
    "self_connection_type": "nequip", "interaction_type": "nequip", "_normalize_sph": True,
    "shift": 0.0, "scale": 1.0,
}
_KNOBS = {"hidden_features": "channel", "n_layers": "num_convolution_layer", "lmax": "lmax"}


@functools.lru_cache(maxsize=2)
def _packaged_checkpoint(base: str) -> Any:
    """sevenn's checkpoint object for a pretrained model shipped in the installed wheel (read once per process)."""
    import sevenn._const
    import sevenn.util

    if base not in PRETRAINED:
        raise ValueError(f"unknown pretrained SevenNet {base!r} (known: {', '.join(PRETRAINED)})")
    path = Path(getattr(sevenn._const, PRETRAINED[base]))
    if not path.is_file() or Path(sevenn.__file__).parent not in path.parents:
        raise ValueError(f"the sevenn wheel does not ship {base!r} (expected {path}); alloop never downloads it")
    return sevenn.util.load_checkpoint(str(path))


def _species_config(elements: Sequence[int]) -> dict[str, Any]:
    from ase.data import chemical_symbols
    from sevenn.util import chemical_species_preprocess

    return chemical_species_preprocess([chemical_symbols[z] for z in elements])


def scratch_config(
    cutoff: float | None = None, hidden_features: int | None = None, n_layers: int | None = None,
    n_rbf: int | None = None, lmax: int | None = None,
) -> dict[str, Any]:
    """The sevenn model config of a from-scratch SevenNet (JSON-serialisable, species keys apart)."""
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in _SCRATCH_CONFIG.items()}
    knobs = {"hidden_features": hidden_features, "n_layers": n_layers, "n_rbf": n_rbf, "lmax": lmax}
    for name, value in knobs.items():
        low = 0 if name == "lmax" else 1
        if value is not None and (int(value) != value or value < low):
            raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    for name, key in _KNOBS.items():
        knob = knobs[name]
        if knob is not None:
            config[key] = int(knob)
    if n_rbf is not None:
        config["radial_basis"]["bessel_basis_num"] = int(n_rbf)
    if cutoff is not None:
        config["cutoff"] = float(cutoff)
    return config


def _pretrained_net(
    base: str, knobs: dict[str, int | None], sevenn_config: dict[str, Any] | None, cutoff: float | None
) -> tuple[dict[str, Any], Any]:
    """sevenn's config and network (an ``AtomGraphSequential``) of the pretrained model ``base``, which fixes the
    size (``knobs``), the config and the cutoff."""
    given = sorted(k for k, v in knobs.items() if v is not None)
    if given or sevenn_config is not None:
        raise ValueError(f"{', '.join(given) or 'sevenn_config'}: fixed by the pretrained model {base!r}")
    checkpoint = _packaged_checkpoint(base)
    config = checkpoint.config
    if config.get("use_modality", False):
        raise ValueError(f"{base!r} is a multi-fidelity SevenNet; alloop supports single-fidelity ones")
    if cutoff is not None and float(cutoff) != float(config["cutoff"]):
        raise ValueError(f"cutoff {cutoff} differs from {base!r}'s own {config['cutoff']} A")
    return config, _built(f"pretrained {base}", checkpoint.build_model)


#: networks as sevenn built them, by pretrained model or by (scratch config, seed): every model gets an exact deep
#: copy (~0.3 s) instead of a new build (~2.5 s: e3nn generates and compiles the code of each tensor product)
_BUILT: dict[str, Any] = {}


def _built(key: str | None, build: Callable[[], Any]) -> Any:
    """A network of its own: an exact deep copy of ``build()``'s, built once per process for ``key`` (None: built
    each time). The global RNG is untouched (``build`` seeds its own draws, if any)."""
    net = _BUILT.get(key) if key is not None else None
    if net is None:
        with torch.random.fork_rng(devices=[]):
            net = build()
        if key is None:
            return net
        _BUILT[key] = net
    return exact_deepcopy(net)


def _scratch_key(config: dict[str, Any], seed: int) -> str | None:
    """The cache key of a scratch network (None when its config is not plain JSON, so not reliably comparable)."""
    try:
        return f"scratch {int(seed)} {json.dumps(config, sort_keys=True)}"
    except TypeError:
        return None


def _new_net(
    elements: Sequence[int], knobs: dict[str, int | None], sevenn_config: dict[str, Any] | None,
    cutoff: float | None, seed: int,
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """A new SevenNet of size ``knobs`` or of ``sevenn_config``, initialised from ``seed`` (the global RNG is
    untouched): its config to record (species keys apart), sevenn's full config and the network."""
    from sevenn.model_build import build_E3_equivariant_model

    given = sorted(k for k, v in knobs.items() if v is not None)
    if sevenn_config is not None and given:
        raise ValueError(f"{', '.join(given)}: give either these or sevenn_config")
    own_config = dict(sevenn_config) if sevenn_config is not None else scratch_config(cutoff, **knobs)
    if cutoff is not None and float(cutoff) != float(own_config["cutoff"]):
        raise ValueError(f"cutoff {cutoff} differs from sevenn_config's {own_config['cutoff']} A")
    config = {**own_config, **_species_config(sorted({int(z) for z in elements}))}

    def build() -> Any:
        torch.manual_seed(int(seed))
        return build_E3_equivariant_model(config)

    return own_config, config, _built(_scratch_key(config, seed), build)


def _check_options(elements: Sequence[int], type_map: dict[int, int], base: str | None, features: str,
                   freeze_blocks: int, n_blocks: int) -> None:
    """The elements are in the network's type map, ``features`` is a mode, ``freeze_blocks`` a number of blocks."""
    unknown = [z for z in elements if z not in type_map]
    if unknown:
        name = base or "this SevenNet"
        raise ValueError(f"elements {unknown} are not among the {len(type_map)} elements {name} knows")
    if features not in FEATURE_MODES:
        raise ValueError(f"features must be one of {FEATURE_MODES}, got {features!r}")
    if int(freeze_blocks) != freeze_blocks or not 0 <= freeze_blocks <= n_blocks:
        raise ValueError(f"freeze_blocks must be an integer in 0..{n_blocks}, got {freeze_blocks}")


class SevenNet(Potential):
    """SevenNet (sevenn ``AtomGraphSequential``) as an alloop Potential (``registry_name = "sevennet"``).

    Args:
        elements: atomic numbers of the campaign (must be in the pretrained model's type map).
        cutoff: Angstrom; a pretrained model's own cutoff (5.0 for SevenNet-0) if None.
        base: a pretrained model shipped in the wheel ("7net-0"), or None for a new SevenNet.
        hidden_features, n_layers, n_rbf, lmax: size of a new SevenNet (channels, interaction
            blocks, Bessel functions, max rotation order); not allowed with ``base``.
        features: "last" (0e channels of the last block) or "all" (of every block, concatenated).
        freeze_blocks: freeze the embeddings and the first k interaction blocks.
        seed: weight initialisation of a new SevenNet (the global RNG is untouched).
        sevenn_config: the full model config of a new SevenNet (as recorded by ``hyperparameters``).
        sevenn_version: the sevenn version that built the checkpoint (a mismatch warns).
    """

    registry_name = "sevennet"
    type_index: torch.Tensor  # buffer [MAX_Z + 1] int64: sevenn's type of each atomic number

    def __init__(
        self,
        elements: Sequence[int],
        cutoff: float | None = None,
        base: str | None = None,
        hidden_features: int | None = None,
        n_layers: int | None = None,
        n_rbf: int | None = None,
        lmax: int | None = None,
        features: str = "last",
        freeze_blocks: int = 0,
        seed: int = 0,
        sevenn_config: dict[str, Any] | None = None,
        sevenn_version: str | None = None,
    ) -> None:
        import sevenn

        knobs = {"hidden_features": hidden_features, "n_layers": n_layers, "n_rbf": n_rbf, "lmax": lmax}
        if sevenn_version is not None and sevenn_version != sevenn.__version__:
            warnings.warn(f"checkpoint built with sevenn {sevenn_version}, installed {sevenn.__version__}", stacklevel=2)
        if base is not None:
            self_config: dict[str, Any] | None = None
            config, net = _pretrained_net(base, knobs, sevenn_config, cutoff)
        else:
            self_config, config, net = _new_net(elements, knobs, sevenn_config, cutoff, seed)
        super().__init__(elements, float(config["cutoff"]))
        type_map: dict[int, int] = {int(z): int(i) for z, i in config["_type_map"].items()}
        self.n_blocks = int(config["num_convolution_layer"])
        _check_options(self.elements, type_map, base, features, freeze_blocks, self.n_blocks)
        self.base, self.features, self.freeze_blocks, self.seed = base, features, int(freeze_blocks), int(seed)
        self.sevenn_config = self_config
        self.learns_output_scale = base is None  # a pretrained model's output is already in eV
        self.net = net
        index = torch.full((MAX_Z + 1,), -1, dtype=torch.int64)
        for z in self.elements:
            index[z] = type_map[z]
        self.register_buffer("type_index", index)
        self._scalar_slices = [self._scalars(t) for t in range(self.n_blocks)]
        self._head_names = self._readout_names()
        self._freeze(self.freeze_blocks)

    def _apply(self, fn, recurse=True):
        """After a dtype change, recompute e3nn's Wigner 3j buffers exactly (float32 copies break float64 equivariance)."""
        from e3nn.o3 import wigner_3j

        out = super()._apply(fn, recurse)
        for module in self.modules():
            for name, buf in module._buffers.items():
                match = _W3J.fullmatch(name)
                if match is not None and buf is not None:
                    exact = wigner_3j(*map(int, match.groups()), dtype=torch.float64)
                    module._buffers[name] = exact.to(dtype=buf.dtype, device=buf.device)
        return out

    def __deepcopy__(self, memo: dict[int, Any]) -> SevenNet:
        """A deep copy that keeps e3nn's generated code exact (:func:`~alloop.potentials.copying.exact_deepcopy`)."""
        return exact_deepcopy(self, memo)

    def _readout_names(self) -> tuple[str, ...]:
        """The modules between the last interaction block and sevenn's per-graph sum: the energy head."""
        names = list(self.net._modules)
        if _REDUCE not in names:
            raise ValueError(f"this sevenn model has no '{_REDUCE}' module; alloop cannot find its energy readout")
        last_gate = max(i for i, n in enumerate(names) if n.endswith("_equivariant_gate"))
        return tuple(n for n in names[last_gate + 1 : names.index(_REDUCE)] if n not in _SKIPPED)

    def _scalars(self, block: int) -> list[slice]:
        """Slices of the 0e channels in the output of interaction block ``block``."""
        irreps = self.net._modules[f"{block}_equivariant_gate"].gate.irreps_out
        return [s for (_, ir), s in zip(irreps, irreps.slices(), strict=True) if ir.l == 0 and ir.p == 1]

    def _freeze(self, k: int) -> None:
        """requires_grad=False on the embeddings and on interaction blocks 0..k-1 (k = 0: nothing frozen)."""
        if k == 0:
            return
        blocks = tuple(f"{t}_" for t in range(k))
        for name, module in self.net._modules.items():
            if name in _EMBEDDING or name.startswith(blocks):
                module.requires_grad_(False)

    def hyperparameters(self) -> dict[str, Any]:
        import sevenn

        out: dict[str, Any] = {"elements": list(self.elements), "cutoff": self.cutoff}
        if self.base is not None:
            out["base"] = self.base
        else:
            out["sevenn_config"] = self.sevenn_config
            out["seed"] = self.seed
        out.update(features=self.features, freeze_blocks=self.freeze_blocks, sevenn_version=sevenn.__version__)
        return out

    @property
    def feature_dim(self) -> int:
        widths = [sum(s.stop - s.start for s in slices) for slices in self._scalar_slices]
        return widths[-1] if self.features == "last" else sum(widths)

    @property
    def dtype(self) -> torch.dtype:
        return self.net._modules["onehot_to_feature_x"].linear.weight.dtype

    def representation(self, batch: AtomsBatch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """sevenn's data dict after the last interaction block (the readout's input) and the per-atom features."""
        self.check_batch(batch)
        edge_index, vec, _ = neighbor_pairs(batch, self.cutoff)
        # sevenn's edges: [centre i, neighbour j] with edge_vec = r_j - r_i (alloop's are [j, i]).
        data = {"x": self.type_index[batch.numbers], "edge_index": edge_index.flip(0), "edge_vec": vec,
                "batch": batch.batch}
        blocks: list[torch.Tensor] = []
        for name, module in self.net._modules.items():
            data = module(data)
            if name == "onehot_idx_to_onehot":  # sevenn makes its one-hot float32
                data["x"] = data["x"].to(vec.dtype)
                data["node_attr"] = data["node_attr"].to(vec.dtype)
            elif name.endswith("_equivariant_gate"):
                x = data["x"]
                blocks.append(torch.cat([x[:, s] for s in self._scalar_slices[len(blocks)]], dim=1))
                if len(blocks) == self.n_blocks:
                    break
        features = blocks[-1] if self.features == "last" else torch.cat(blocks, dim=1)
        return data, features

    def head_energy(self, state: dict[str, torch.Tensor], batch: AtomsBatch,
                head: torch.nn.Module | None = None) -> torch.Tensor:
        """Energy per graph [B] from :meth:`representation`'s state through ``head`` (default: the model's own)."""
        data = (self._own_head() if head is None else head)(dict(state))
        return self.net._modules[_REDUCE](data)["inferred_total_energy"]

    def head_features(self, state: dict[str, torch.Tensor], batch: AtomsBatch,
                      head: torch.nn.Module | None = None) -> torch.Tensor:
        """Per atom [N, K]: the input of the head's last linear layer times the gain of the per-atom rescale after it
        (dE_i / dy_i, by autograd): the gradient of the atom's energy with respect to that layer's weights, up to
        e3nn's constant weight normalisation. AlloopError for a last layer with a bias."""
        from sevenn.nn.linear import IrrepsLinear

        modules: list[Any] = [m for m in (self._own_head() if head is None else head)._modules.values() if m is not None]
        linears = [i for i, m in enumerate(modules) if isinstance(m, IrrepsLinear)]
        if not linears:
            raise AlloopError("this SevenNet head has no linear layer")
        at = linears[-1]
        last = modules[at]
        if last.linear.bias.numel():
            raise AlloopError("the last linear layer of this SevenNet head has a bias: its LLPR features are not built")
        data = dict(state)
        for module in modules[:at]:
            data = module(data)
        x = data[last.key_input]
        data = last(data)
        if at == len(modules) - 1:
            return x
        with torch.enable_grad():
            y = data[last.key_output].detach().requires_grad_(True)
            data[last.key_output] = y
            for module in modules[at + 1 :]:
                data = module(data)
            (gain,) = torch.autograd.grad(data[modules[-1].key_output].sum(), y)
        return x * gain

    def last_layer_features(self, batch: AtomsBatch) -> torch.Tensor:
        return self.head_features(self.representation(batch)[0], batch) * self.output_scale.to(self.dtype)

    def _own_head(self) -> torch.nn.Sequential:
        if not all(name in self.net._modules for name in self._head_names):
            raise RuntimeError("this SevenNet's readout was taken out (take_head): it is the body of a two-head model")
        return torch.nn.Sequential(OrderedDict((n, self.net._modules[n]) for n in self._head_names))

    def take_head(self) -> torch.nn.Sequential:
        """Remove the energy readout (the modules after the last interaction block: linear layers and sevenn's
        per-species rescale) from this model and return it (dict in, dict out)."""
        return torch.nn.Sequential(OrderedDict((n, self.net._modules.pop(n)) for n in self._head_names))

    def energy_and_features(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        state, features = self.representation(batch)
        return self.head_energy(state, batch), features
