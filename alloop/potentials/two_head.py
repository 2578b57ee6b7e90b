"""Two-head models: one shared representation, one energy head per fidelity (cheap, expensive).

:class:`TwoHeadPotential` (``registry_name = "two-head"``) wraps any architecture
that splits into a representation and an energy head (the :class:`Splittable`
protocol; EGNN and SevenNet implement it):

- the *body* is the architecture's model with its readout taken out: it maps a
  batch to the readout's input (EGNN: the final hidden states h^L; SevenNet:
  the node features after the last interaction block) and to the per-atom
  features (uncertainty), which are the same for every head;
- every *head* starts as a copy of the architecture's own readout (EGNN: the
  two-layer MLP on h^L, summed over atoms; SevenNet: the linear layers and
  sevenn's per-species rescale after the last block, summed over atoms);
- one head is *active* at a time, chosen explicitly with :meth:`use_head` (or
  :meth:`using_head` for a block); energies, forces (= -dE/dx) and
  ``atomic_energies`` are the active head's;
- per-head reference energies: ``atomic_energies`` holds the active head's
  (the trainer fits it as for any model), the buffer ``head_energies`` [heads, Z]
  the others'; :meth:`use_head` swaps them, and a state-dict hook writes the
  active row back, so a checkpoint holds every head's references;
- ``output_scale`` is shared by the heads (set from the first training set);
- ``fidelities`` records which fidelity each head was trained on
  (``{head: {"tag": fidelity hash or role, "name": preset name}}``).

Checkpoints are ordinary alloop checkpoints (safetensors + JSON): the
hyperparameters name the body's architecture and hyperparameters, the heads,
the active head and the fidelities. :meth:`TwoHeadPotential.from_model` turns a
trained single-head model into a two-head one (every head a copy of its readout).
:meth:`TwoHeadPotential.using_graph_radius` passes a graph radius on to the body.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import torch

from alloop.potentials.base import MAX_Z, AtomsBatch, Potential, model_dtype
from alloop.potentials.copying import exact_deepcopy

#: the heads of a two-head model by default: the cheap prior and the expensive target
HEADS = ("cheap", "expensive")


@runtime_checkable
class Splittable(Protocol):
    """An architecture whose energy is ``head_energy(representation(batch))``."""

    def representation(self, batch: AtomsBatch) -> tuple[Any, torch.Tensor]:
        """The head's input (any object) and the per-atom features [N, F]."""

    def head_energy(self, state: Any, batch: AtomsBatch, head: torch.nn.Module | None = None) -> torch.Tensor:
        """Energy per graph [B] through ``head`` (None: the model's own readout)."""

    def take_head(self) -> torch.nn.Module:
        """Remove the model's own readout and return it."""

    def head_features(self, state: Any, batch: AtomsBatch, head: torch.nn.Module | None = None) -> torch.Tensor:
        """Per atom [N, K]: the gradient of its energy with respect to ``head``'s last linear layer (LLPR features)."""


def _sync_active_row(module: TwoHeadPotential, prefix: str, keep_vars: bool) -> None:
    """State-dict pre-hook: the active head's row of ``head_energies`` = ``atomic_energies``."""
    with torch.no_grad():
        module.head_energies[module.head_index(module.active_head)] = module.atomic_energies


class TwoHeadPotential(Potential):
    """A shared representation (``body``) with one energy head per name in ``heads``; see the module docstring.

    Args:
        elements: atomic numbers the model knows.
        body: ``{"architecture": registry name, "hyperparameters": {...}}`` of the representation's architecture.
        heads: head names (at least two, distinct; default cheap, expensive).
        active: the active head (default: ``expensive`` if there is one, else the last head).
        fidelities: ``{head: {"tag": ..., "name": ...}}``, what each head was trained on.
        cutoff: must equal the body's cutoff if given.
    """

    registry_name = "two-head"
    head_energies: torch.Tensor  # buffer [n_heads, MAX_Z + 1] float64
    float64_buffers = (*Potential.float64_buffers, "head_energies")

    def __init__(
        self,
        elements: Sequence[int],
        body: Mapping[str, Any],
        heads: Sequence[str] = HEADS,
        active: str | None = None,
        fidelities: Mapping[str, Mapping[str, str]] | None = None,
        cutoff: float | None = None,
    ) -> None:
        from alloop.potentials.registry import model_class

        if not isinstance(body, Mapping) or "architecture" not in body:
            raise ValueError("body must be {'architecture': name, 'hyperparameters': {...}}")
        architecture = str(body["architecture"])
        if architecture == self.registry_name:
            raise ValueError("the body of a two-head model cannot itself be a two-head model")
        hparams = dict(body.get("hyperparameters") or {})
        hparams.pop("elements", None)
        net = model_class(architecture)(elements, **hparams)
        if not isinstance(net, Splittable):
            raise ValueError(f"architecture '{architecture}' has no representation/head split (two-head models need one)")
        names = tuple(str(h) for h in heads)
        if len(names) < 2 or len(set(names)) != len(names) or not all(names):
            raise ValueError(f"heads must be at least two distinct names, got {list(heads)}")
        active = active if active is not None else ("expensive" if "expensive" in names else names[-1])
        if active not in names:
            raise ValueError(f"active head {active!r} is not one of {list(names)}")
        super().__init__(net.elements, net.cutoff)
        if cutoff is not None and float(cutoff) != net.cutoff:
            raise ValueError(f"cutoff {cutoff} differs from the body's {net.cutoff} A")
        head = net.take_head()
        self.body = net
        self.heads = torch.nn.ModuleDict({name: exact_deepcopy(head) for name in names})
        self.register_buffer("head_energies", torch.zeros(len(names), MAX_Z + 1, dtype=torch.float64))
        self.head_names, self.active_head = names, active
        self.fidelities: dict[str, dict[str, str]] = {}
        for name, record in (fidelities or {}).items():
            self.record_fidelity(name, **{k: str(v) for k, v in record.items()})
        self.learns_output_scale = net.learns_output_scale
        self.accepts_graph_radius = net.accepts_graph_radius
        self.register_state_dict_pre_hook(_sync_active_row)

    @classmethod
    def from_model(cls, model: Potential, heads: Sequence[str] = HEADS, active: str | None = None) -> TwoHeadPotential:
        """A two-head model whose representation is ``model``'s and whose heads are copies of its readout.

        Every head starts with ``model``'s reference energies; the output scale is ``model``'s. ``model`` is not changed.
        """
        from alloop.potentials.registry import cast_model

        if isinstance(model, TwoHeadPotential):
            raise ValueError("the model already has heads")
        body = {"architecture": model.registry_name, "hyperparameters": model.hyperparameters()}
        two = cast_model(cls(model.elements, body=body, heads=heads, active=active), model_dtype(model))
        source = exact_deepcopy(model)
        assert isinstance(source, Splittable)  # cls(...) above refused an architecture without the split
        head = source.take_head()
        two.body.load_state_dict(source.state_dict())
        for module in two.heads.values():
            module.load_state_dict(head.state_dict())
        with torch.no_grad():
            two.output_scale.copy_(model.output_scale)
            two.atomic_energies.copy_(model.atomic_energies)
            two.head_energies.copy_(model.atomic_energies.expand_as(two.head_energies))
            two.body.atomic_energies.zero_()
            two.body.output_scale.fill_(1.0)
        return two

    def __deepcopy__(self, memo: dict[int, Any]) -> TwoHeadPotential:
        return exact_deepcopy(self, memo)

    # ---- heads -------------------------------------------------------------------
    def head_index(self, name: str) -> int:
        if name not in self.head_names:
            raise ValueError(f"no head {name!r} (this model has {', '.join(self.head_names)})")
        return self.head_names.index(name)

    def use_head(self, name: str) -> None:
        """Make ``name`` the active head: its readout and its reference energies."""
        new = self.head_index(name)
        with torch.no_grad():
            self.head_energies[self.head_index(self.active_head)] = self.atomic_energies
            self.atomic_energies.copy_(self.head_energies[new])
        self.active_head = name

    @contextmanager
    def using_head(self, name: str) -> Iterator[TwoHeadPotential]:
        """``with model.using_head("cheap"): ...``: ``name`` active inside the block, the previous head after it."""
        previous = self.active_head
        self.use_head(name)
        try:
            yield self
        finally:
            self.use_head(previous)

    def _references_row(self, name: str) -> torch.Tensor:
        """The live tensor of head ``name``'s reference energies [MAX_Z + 1] (``atomic_energies`` if it is active)."""
        index = self.head_index(name)
        return self.atomic_energies if name == self.active_head else self.head_energies[index]

    def head_references(self, name: str) -> dict[int, float]:
        """Reference energies {Z: eV} of head ``name``."""
        row = self._references_row(name)
        return {z: float(row[z]) for z in self.elements}

    def copy_head(self, source: str, target: str) -> None:
        """Head ``target`` becomes a copy of head ``source`` (weights and reference energies)."""
        self.heads[target].load_state_dict(self.heads[source].state_dict())
        with torch.no_grad():
            self._references_row(target).copy_(self._references_row(source).clone())

    def record_fidelity(self, head: str, tag: str, name: str | None = None) -> None:
        """Record that ``head`` predicts fidelity ``tag`` (a fidelity hash or a role), preset ``name`` if known."""
        self.head_index(head)
        self.fidelities[head] = {"tag": str(tag), **({"name": str(name)} if name else {})}

    @contextmanager
    def train_only(self, representation: bool, heads: Collection[str]) -> Iterator[TwoHeadPotential]:
        """Inside the block only the representation (if ``representation``) and ``heads`` can train.

        The other parts get ``requires_grad=False``; every parameter's flag is restored afterwards (parameters
        an architecture keeps frozen, such as sevenn's constants or frozen blocks, stay frozen).
        """
        for name in heads:
            self.head_index(name)
        saved = [(p, p.requires_grad) for p in self.parameters()]
        frozen: list[torch.nn.Module] = [] if representation else [self.body]
        frozen += [module for name, module in self.heads.items() if name not in heads]
        for module in frozen:
            module.requires_grad_(False)
        try:
            yield self
        finally:
            for param, flag in saved:
                param.requires_grad_(flag)

    @contextmanager
    def using_graph_radius(self, radius: float) -> Iterator[TwoHeadPotential]:
        """The body builds its graph with radius ``radius`` inside the block (if its architecture accepts one)."""
        with self.body.using_graph_radius(radius), super().using_graph_radius(radius):
            yield self

    # ---- the Potential protocol -------------------------------------------------------
    def energy_and_features(self, batch: AtomsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        state, features = self.body.representation(batch)
        return self.body.head_energy(state, batch, self.heads[self.active_head]), features

    def last_layer_features(self, batch: AtomsBatch) -> torch.Tensor:
        """The active head's last-layer features (:meth:`Potential.last_layer_features`)."""
        state, _ = self.body.representation(batch)
        features = self.body.head_features(state, batch, self.heads[self.active_head])
        return features * self.output_scale.to(features.dtype)

    def hyperparameters(self) -> dict[str, Any]:
        body = self.body.hyperparameters()
        body.pop("elements", None)
        return {
            "elements": list(self.elements),
            "body": {"architecture": self.body.registry_name, "hyperparameters": body},
            "heads": list(self.head_names),
            "active": self.active_head,
            "fidelities": {k: dict(v) for k, v in self.fidelities.items()},
        }

    @property
    def feature_dim(self) -> int:
        return self.body.feature_dim
