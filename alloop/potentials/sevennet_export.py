"""SevenNet models out in sevenn's own checkpoint format (``alloop export --model --format sevenn``).

The file is what sevenn's trainer writes (``torch.save`` of a dict with
``config``, ``model_state_dict``, ``epoch``, ``time``, ``hash``; the config's
``version`` is the installed sevenn's), so ``sevenn.util.load_checkpoint``,
``sevenn.calculator.SevenNetCalculator(model=PATH)``, ``sevenn cp`` and the
LAMMPS deployment (``sevenn.scripts.deploy.deploy`` / ``sevenn get_model``)
take it. An extra top-level key ``alloop`` (ignored by sevenn) records where
the model came from.

sevenn's model knows nothing of alloop's buffers, so they are folded into its
per-species rescale module: sevenn computes ``E = sum_i (y_i scale[t_i] +
shift[t_i])`` and alloop ``E = output_scale * that + sum_i atomic_energies[Z_i]``,
hence ``scale' = output_scale * scale`` and ``shift' = output_scale * shift +
atomic_energies[Z]`` per species (a scalar ``Rescale`` becomes a
``SpeciesWiseRescale``). Forces follow from the same energy.

Type map: the exported model knows exactly the alloop model's elements. A
fine-tuned SevenNet-0 (89 species) is cut down to them: its one-hot embedding
keeps the rows of those species, rescaled by the ratio of e3nn's path weights
(1/sqrt(89) -> 1/sqrt(n)), so their outputs are unchanged; the other 86
elements would keep PBE references next to the campaign's, and are dropped.

sevenn runs in float32: forces agree with alloop's float32 model to ~1e-6
eV/A; absolute energies to float32 resolution (a few 1e-4 eV for a molecule
whose reference energies sum to thousands of eV, as ab initio ones do).
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from alloop.errors import AlloopError
from alloop.io import write_atomic
from alloop.potentials.sevennet import SevenNet, _packaged_checkpoint, _species_config

_RESCALE = "rescale_atomic_energy"
_EMBEDDING = "onehot_to_feature_x"  # IrrepsLinear of the one-hot species: its rows are species


def _source_config(model: SevenNet) -> dict[str, Any]:
    """The sevenn config the network was built from (species keys included)."""
    if model.base is not None:
        return _packaged_checkpoint(model.base).config  # a deep copy
    assert model.sevenn_config is not None
    return {**model.sevenn_config, **_species_config(model.elements)}


def _types(config: Mapping[str, Any]) -> dict[int, int]:
    return {int(z): int(t) for z, t in config["_type_map"].items()}


def _folded_rescale(model: SevenNet, src: Mapping[str, torch.Tensor], src_types: dict[int, int],
                    dst_types: dict[int, int]) -> tuple[list[float], list[float]]:
    """Per destination species (type order): scale and shift with alloop's output scale and references folded in."""
    raw_scale = src[f"{_RESCALE}.scale"].detach().to(torch.float64).reshape(-1)
    raw_shift = src[f"{_RESCALE}.shift"].detach().to(torch.float64).reshape(-1)
    out_scale = float(model.output_scale)
    references = model.atomic_energies.detach().to(torch.float64)
    scale, shift = [0.0] * len(dst_types), [0.0] * len(dst_types)
    for z, t in dst_types.items():
        s = src_types[z] if raw_scale.numel() > 1 else 0
        h = src_types[z] if raw_shift.numel() > 1 else 0
        scale[t] = out_scale * float(raw_scale[s])
        shift[t] = out_scale * float(raw_shift[h]) + float(references[z])
    return scale, shift


def _embedding_rows(net_src: torch.nn.Module, net_dst: torch.nn.Module, weight: torch.Tensor,
                    rows: list[int]) -> torch.Tensor:
    """The one-hot embedding's weight for the kept species, rescaled so each kept species' output is unchanged."""
    embedding_src: Any = net_src._modules[_EMBEDDING]  # sevenn's embedding block (untyped e3nn modules)
    embedding_dst: Any = net_dst._modules[_EMBEDDING]
    lin_src, lin_dst = embedding_src.linear, embedding_dst.linear
    (ins_src,), (ins_dst,) = lin_src.instructions, lin_dst.instructions
    kept = weight.reshape(ins_src.path_shape)[rows]
    return (kept * (ins_src.path_weight / ins_dst.path_weight)).reshape(-1)


def sevenn_checkpoint(model: SevenNet, provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The sevenn checkpoint dict of ``model`` (float32, its elements only, alloop's references folded in)."""
    import sevenn
    from sevenn.model_build import build_E3_equivariant_model

    if not isinstance(model, SevenNet):
        raise AlloopError(f"a sevenn checkpoint holds a SevenNet model, got {type(model).__name__}")
    src_config = _source_config(model)
    src_types = _types(src_config)
    config = {k: v for k, v in src_config.items() if not k.endswith("_cp")}  # the source's training statistics
    config.update(_species_config(model.elements))
    dst_types = _types(config)
    src = {k: v.detach().cpu() for k, v in model.net.state_dict().items()}
    scale, shift = _folded_rescale(model, src, src_types, dst_types)
    config.update(shift=shift, scale=scale, train_shift_scale=False, version=sevenn.__version__, dtype="single")
    config["_model_type"] = config.get("_model_type", "E3_equivariant_model")

    with torch.random.fork_rng(devices=[]):
        net_dst = build_E3_equivariant_model({**config})
    target = net_dst.state_dict()
    rows = [src_types[z] for z in sorted(dst_types, key=dst_types.__getitem__)]
    state: dict[str, torch.Tensor] = {}
    for key, value in src.items():
        if key not in target:
            raise AlloopError(f"sevenn export: the rebuilt SevenNet has no parameter {key!r}")
        if key == f"{_EMBEDDING}.linear.weight" and rows != list(range(len(src_types))):
            value = _embedding_rows(model.net, net_dst, value.to(torch.float64), rows)
        elif key.startswith(f"{_RESCALE}."):
            value = torch.tensor(scale if key.endswith(".scale") else shift, dtype=torch.float64)
        elif value.shape != target[key].shape:
            raise AlloopError(f"sevenn export: {key} depends on the species ({tuple(value.shape)} vs "
                              f"{tuple(target[key].shape)}); only the one-hot embedding can be cut down")
        state[key] = value.to(target[key].dtype).reshape(target[key].shape).clone()
    missing = sorted(set(target) - set(state))
    if missing:
        raise AlloopError(f"sevenn export: parameters missing from the alloop model: {', '.join(missing)}")
    net_dst.load_state_dict(state, strict=True)  # what sevenn's loader will do
    return {
        "config": config, "model_state_dict": state, "epoch": 0,
        "optimizer_state_dict": {}, "scheduler_state_dict": {},
        "time": time.strftime("%Y-%m-%d %H:%M"), "hash": uuid.uuid4().hex,
        "alloop": dict(provenance or {}),
    }


def write_sevenn_checkpoint(model: SevenNet, path: str | Path, provenance: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`sevenn_checkpoint` to ``path`` atomically (temporary file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save(sevenn_checkpoint(model, provenance), buffer)
    return write_atomic(path, buffer.getvalue())

