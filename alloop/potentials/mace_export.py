"""MACE models out as MACE model files (``alloop export --model --format mace``).

The file is what mace's own tools write and read: ``torch.save`` of the whole ``ScaleShiftMACE`` network, so
``mace.calculators.MACECalculator(model_paths=FILE)`` (and mace's LAMMPS and fine-tuning tools) load it. It
holds the network's weights in the model's dtype, with alloop's buffers folded into mace's own: mace computes
``E = sum_i E0[Z_i] + sum_i (scale * y_i + shift)`` and alloop ``E = output_scale * that + sum_i
atomic_energies[Z_i]``, hence ``E0' = output_scale * E0 + atomic_energies``, ``scale' = output_scale * scale``,
``shift' = output_scale * shift`` (the head alloop runs; other heads are left as they are). Forces follow from
the same energy: in float64 they agree with alloop's to rounding (tests: <= 1e-6 eV/A). The network keeps
every element of the file it came from; an element the campaign never labelled keeps the file's E0 plus
whatever reference alloop holds for it (0 unless fitted), so its energies are not on the campaign's fidelity.

Where it came from is recorded as the network's attribute ``alloop_provenance`` (a dict; mace ignores it).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from alloop.errors import AlloopError
from alloop.io import write_atomic
from alloop.potentials.copying import exact_deepcopy
from alloop.potentials.mace import MACEPotential


def mace_network(model: MACEPotential, provenance: Mapping[str, Any] | None = None) -> torch.nn.Module:
    """A copy of ``model``'s network with alloop's output scale and reference energies folded into mace's E0s,
    scale and shift (see the module docstring); ``model`` is not changed."""
    if not isinstance(model, MACEPotential):
        raise AlloopError(f"a MACE model file holds a MACE model, got {type(model).__name__}")
    net: Any = exact_deepcopy(model.net)  # mace's ScaleShiftMACE (untyped)
    s = float(model.output_scale)
    head = model.head_index
    with torch.no_grad():
        e0 = net.atomic_energies_fn.atomic_energies
        rows = e0 if e0.dim() == 1 else e0[head]  # [elements], or [heads, elements]
        references = model.atomic_energies.detach().to(torch.float64)[torch.as_tensor(model.mace_config["atomic_numbers"])]
        rows.copy_((s * rows.to(torch.float64) + references).to(rows.dtype))
        for name in ("scale", "shift"):
            buffer = getattr(net.scale_shift, name)
            if buffer.dim() == 0:
                buffer.mul_(s)
            else:
                buffer[head] = buffer[head] * s
    net.alloop_provenance = dict(provenance or {})
    return net


def write_mace_model(model: MACEPotential, path: str | Path, provenance: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`mace_network` to ``path`` as mace does (``torch.save`` of the network), atomically."""
    buffer = io.BytesIO()
    torch.save(mace_network(model, provenance), buffer)
    return write_atomic(path, buffer.getvalue())
