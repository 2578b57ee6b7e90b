"""MACE networks from mace's own config: the config as JSON, networks built from it, MACE model files read.

A MACE model file (``.model``: MACE-OFF, MACE-MP, or one ``mace_run_train`` wrote) is a ``torch.save`` of the
whole network, a pickle: reading it runs code from the file, so read only files you trust. alloop reads the
network's config with mace's own :func:`mace.tools.scripts_utils.extract_config_mace_model` and keeps it as
JSON (classes and the readout's gate by name, irreps as strings, arrays as lists): alloop's checkpoints
rebuild the network from that config with mace's constructors (``mace.modules.ScaleShiftMACE``) and load the
weights from safetensors, so no pickle is ever read back. Only ``ScaleShiftMACE`` networks with e3nn kernels
(no cuEquivariance, no extra embeddings such as charge or spin) are taken; anything else is refused with the
reason.

Importing mace sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` in the process's environment (mace does it in its
``__init__``: e3nn 0.4.4, which mace pins, cannot import under torch's weights-only loading otherwise), and
mace 0.3.16 prints a line to stdout when cuEquivariance is missing: :func:`import_mace` sends it to stderr, so a
command's stdout (``alloop evaluate --json``) stays machine-readable.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alloop.potentials.copying import exact_deepcopy


def import_mace() -> None:
    """Import mace's modules once, with what they print at import (the cuEquivariance notice) sent to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        import mace.modules  # noqa: F401
        import mace.tools.scripts_utils  # noqa: F401


#: the one network class alloop adapts (MACE-OFF, MACE-MP and mace's default training all make it)
NETWORK_CLASS = "ScaleShiftMACE"
_CLASS_KEYS = {"interaction_cls": "interaction_classes", "interaction_cls_first": "interaction_classes",
               "readout_cls": "readout_classes"}
_IRREPS_KEYS = ("hidden_irreps", "MLP_irreps", "edge_irreps")
_ARRAY_KEYS = ("atomic_energies", "atomic_inter_scale", "atomic_inter_shift")


def _gate_name(gate: Callable[..., Any] | None) -> str:
    import_mace()
    from mace.modules import gate_dict

    for name, fn in gate_dict.items():
        if fn is gate:
            return name
    raise ValueError(f"the readout's gate {gate!r} is not one of mace's ({', '.join(gate_dict)})")


def _plain(value: Any) -> Any:
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value).tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def config_json(net: torch.nn.Module) -> dict[str, Any]:
    """mace's config of ``net`` (a ``ScaleShiftMACE``) in JSON form; ValueError for a network alloop cannot adapt."""
    import_mace()
    from mace.tools.scripts_utils import extract_config_mace_model

    name = type(net).__name__
    if name != NETWORK_CLASS:
        raise ValueError(f"alloop adapts {NETWORK_CLASS} networks (MACE-OFF, MACE-MP, mace_run_train's), not {name}")
    config = extract_config_mace_model(net)
    if config.get("cueq_config") is not None or any("cuet" in type(m).__module__ for m in net.modules()):
        raise ValueError("a cuEquivariance MACE: convert it to e3nn first (mace's mace_cueq_to_e3nn)")
    if config.get("embedding_specs") is not None:
        raise ValueError("a MACE with extra embeddings (charge, spin, ...) is not supported by alloop")
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in _CLASS_KEYS:
            out[key] = value.__name__
        elif key in _IRREPS_KEYS:
            out[key] = None if value is None else str(value)
        elif key == "gate":
            out[key] = _gate_name(value)
        else:
            out[key] = _plain(value)
    out["atomic_numbers"] = [int(z) for z in out["atomic_numbers"]]
    json.dumps(out)  # TypeError here, not in a checkpoint, if mace adds a key of another kind
    return out


def constructor_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``ScaleShiftMACE`` for a :func:`config_json` config."""
    import_mace()
    from e3nn import o3
    from mace import modules

    kwargs = dict(config)
    for key, table in _CLASS_KEYS.items():
        classes = getattr(modules, table)
        if kwargs.get(key) not in classes:
            raise ValueError(f"{key}: {kwargs.get(key)!r} is not one of mace's {table} ({', '.join(classes)})")
        kwargs[key] = classes[kwargs[key]]
    for key in _IRREPS_KEYS:
        kwargs[key] = None if kwargs.get(key) is None else o3.Irreps(kwargs[key])
    kwargs["gate"] = modules.gate_dict[str(kwargs["gate"])]
    for key in _ARRAY_KEYS:
        kwargs[key] = np.asarray(kwargs[key], dtype=np.float64)
    return kwargs


#: networks as mace built them, by (config, seed): every model gets an exact deep copy instead of a new build
#: (e3nn generates and compiles the code of each tensor product: seconds per build)
_BUILT: dict[str, torch.nn.Module] = {}


def build_network(config: dict[str, Any], seed: int = 0) -> torch.nn.Module:
    """A new ``ScaleShiftMACE`` of ``config`` with weights drawn from ``seed`` (the global RNG is untouched), built
    in float64 so that its constants (Clebsch-Gordan and Wigner 3j tensors) are exact in either precision."""
    import_mace()
    from mace import modules

    key = f"{int(seed)} {json.dumps(config, sort_keys=True)}"
    net = _BUILT.get(key)
    if net is None:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                net = getattr(modules, NETWORK_CLASS)(**constructor_kwargs(config))
        finally:
            torch.set_default_dtype(previous)
        _BUILT[key] = net
    return exact_deepcopy(net)


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> torch.nn.Module:
    import_mace()  # (also sets the environment e3nn 0.4.4 needs to import under torch >= 2.6)

    net = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(net, torch.nn.Module):
        raise ValueError(f"{path}: not a MACE model file (it holds a {type(net).__name__}, not a network)")
    return net


def read_model_file(path: str | Path) -> torch.nn.Module:
    """The network saved in a MACE model file (read once per process and file version; do not modify it)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"MACE model file not found: {path}")
    stat = path.stat()
    return _read(str(path), stat.st_mtime_ns, stat.st_size)


def network_dtype(net: torch.nn.Module) -> torch.dtype:
    """The dtype of a MACE network's weights (the node embedding's)."""
    return next(p.dtype for p in net.parameters() if p.is_floating_point())
