"""Conformance checks for two-head models (:class:`~alloop.potentials.two_head.TwoHeadPotential`).

``check_two_head(model, structures)`` runs the Potential conformance kit
(:func:`~alloop.testing.potentials.check_potential`) with every head active,
then checks what heads add: features do not depend on the head; distinct heads
predict distinct energies; switching away and back gives bit-identical
predictions and references; ``using_head`` restores the previous head; a
checkpoint round trip keeps every head's weights, references, the active head
and the recorded fidelities, bit for bit. The given model is never modified;
give it heads that differ (a trained model, or perturbed heads).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from ase import Atoms

from alloop.potentials.base import AtomsBatch, model_dtype
from alloop.potentials.checkpoint import checkpoint_to_bytes, model_from_bytes
from alloop.potentials.two_head import TwoHeadPotential
from alloop.testing.potentials import ConformanceReport, check_potential


def _predict(model: TwoHeadPotential, structures: Sequence[Atoms]) -> tuple[torch.Tensor, ...]:
    out = model(AtomsBatch.from_atoms(list(structures), dtype=model_dtype(model)))
    return out.energy.detach(), out.forces.detach(), out.features


def check_two_head(model: TwoHeadPotential, structures: Sequence[Atoms], *, seed: int = 0) -> dict[str, ConformanceReport]:
    """Every check of the module docstring; returns the Potential kit's report per head."""
    assert isinstance(model, TwoHeadPotential), f"expected a TwoHeadPotential, got {type(model).__name__}"
    model = copy.deepcopy(model)
    reports = {}
    for name in model.head_names:
        model.use_head(name)
        reports[name] = check_potential(model, structures, seed=seed)
    first, second = model.head_names[:2]
    model.use_head(first)
    a = _predict(model, structures)
    refs = model.head_references(first)
    with model.using_head(second):
        assert model.active_head == second, "using_head did not switch"
        b = _predict(model, structures)
    assert model.active_head == first, "using_head did not restore the previous head"
    assert torch.equal(a[2], b[2]), "features depend on the active head"
    assert not torch.equal(a[0], b[0]), f"heads {first!r} and {second!r} predict the same energies"
    again = _predict(model, structures)
    assert all(torch.equal(x, y) for x, y in zip(a, again, strict=True)), "switching heads and back changed the predictions"
    assert model.head_references(first) == refs, "switching heads and back changed the references"

    loaded, _ = model_from_bytes(checkpoint_to_bytes(model))
    assert isinstance(loaded, TwoHeadPotential) and loaded.active_head == model.active_head
    assert loaded.hyperparameters() == model.hyperparameters(), "hyperparameters (heads, fidelities) not kept"
    for name in model.head_names:
        model.use_head(name)
        loaded.use_head(name)
        assert loaded.head_references(name) == model.head_references(name), f"head {name!r}: references not kept"
        got, want = _predict(loaded, structures), _predict(model, structures)
        assert all(torch.equal(x, y) for x, y in zip(got, want, strict=True)), f"head {name!r}: predictions change on reload"
    return reports
