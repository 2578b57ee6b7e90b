"""Model registry: short architecture names ("egnn", "pair", "sevennet", "mace", "so3lr", "two-head", "delta") instead
of import paths.

``build_model("egnn", elements=[1, 6, 8], cutoff_A=5.0, hidden_features=64)``
builds a model from the keys of a ``configs/models/*.yaml`` preset
(``architecture``, ``cutoff_A``, ``hidden_features``, ``n_layers``, ``n_rbf``,
``dtype``; sevennet also ``base``, ``lmax``, ``features``, ``freeze_blocks``;
mace ``model_file``, ``features``; so3lr ``base``) or from a class's own constructor
arguments. Keys set to ``None`` mean "the default". A new architecture joins
with ``@register_model``. Architectures that need an optional package
(:data:`EXTRAS`) name the pip command that installs it when it is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Sequence
from typing import Any, TypeVar

import torch

from alloop.errors import ConfigError
from alloop.potentials.base import Potential
from alloop.presets import load_preset

_REGISTRY: dict[str, type[Potential]] = {}
P = TypeVar("P", bound=Potential)
# Built-in architectures are imported on first use (torch-geometric takes seconds to import).
_BUILTIN = {
    "egnn": ("alloop.potentials.egnn", "EGNN"),
    "pair": ("alloop.potentials.pair", "PairPotential"),
    "sevennet": ("alloop.potentials.sevennet", "SevenNet"),
    "mace": ("alloop.potentials.mace", "MACEPotential"),
    "so3lr": ("alloop.potentials.so3lr", "SO3LRPotential"),
    "two-head": ("alloop.potentials.two_head", "TwoHeadPotential"),
    "delta": ("alloop.potentials.baseline", "DeltaPotential"),
}

# Config key -> constructor argument, for every architecture and per architecture.
_COMMON_ALIASES = {"cutoff_A": "cutoff"}
_ALIASES: dict[str, dict[str, str]] = {"pair": {"n_rbf": "n_radial"}}

_DTYPES = {"float32": torch.float32, "float64": torch.float64}

#: architecture -> (the package it imports, the extra of alloop that installs it)
EXTRAS = {"sevennet": ("sevenn", "sevenn"), "mace": ("mace", "mace"), "so3lr": ("so3krates_torch", "so3lr")}
#: extra -> the extras it cannot share an environment with (sevenn 0.13 needs e3nn >= 0.5, mace-torch pins e3nn 0.4.4)
CONFLICTS = {"sevenn": ("mace",), "mace": ("sevenn",)}


def check_extra(architecture: str) -> None:
    """ConfigError naming the pip command when ``architecture`` needs a package that is not installed."""
    if architecture not in EXTRAS:
        return
    package, extra = EXTRAS[architecture]
    if importlib.util.find_spec(package) is None:
        others = [f"alloop[{e}]" for e in CONFLICTS.get(extra, ())]
        apart = f" (in an environment without {', '.join(others)}: they cannot share one)" if others else ""
        raise ConfigError(f"model '{architecture}' needs the {package} package: pip install 'alloop[{extra}]'{apart}")


def register_model(cls: type[Potential]) -> type[Potential]:
    """Register a Potential subclass under its ``registry_name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Potential)):
        raise TypeError(f"{cls!r} is not a Potential subclass")
    name = cls.registry_name
    if not name:
        raise ValueError(f"{cls.__name__} has an empty registry_name")
    if name in _BUILTIN and (cls.__module__, cls.__qualname__) != _BUILTIN[name]:
        raise ValueError(f"architecture '{name}' is reserved for a built-in model")
    if _REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"architecture '{name}' is already registered to {_REGISTRY[name].__name__}")
    _REGISTRY[name] = cls
    return cls


def model_names() -> list[str]:
    """Registered architecture names."""
    return sorted(set(_REGISTRY) | set(_BUILTIN))


def model_class(architecture: str) -> type[Potential]:
    """The class registered under ``architecture``; ConfigError if unknown."""
    if not isinstance(architecture, str) or architecture not in model_names():
        raise ConfigError(f"architecture: unknown model {architecture!r} (known: {', '.join(model_names())})")
    if architecture not in _REGISTRY:
        check_extra(architecture)
        module, name = _BUILTIN[architecture]
        register_model(getattr(importlib.import_module(module), name))
    return _REGISTRY[architecture]


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """'float32' / 'float64' (or a torch dtype of those) -> torch dtype."""
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ConfigError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")


def model_preset(name: str) -> dict[str, Any]:
    """A model preset of ``configs/models/`` ("small", "egnn-paper", "sevennet-0", ...) in config-key form, for
    :func:`build_model` (the presets live there only; ConfigError listing the known ones otherwise)."""
    return load_preset("models", name)


def _constructor_kwargs(cls: type[Potential], architecture: str, hparams: dict[str, Any]) -> dict[str, Any]:
    aliases = {**_COMMON_ALIASES, **_ALIASES.get(architecture, {})}
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "elements")]
    kwargs: dict[str, Any] = {}
    for key, value in hparams.items():
        if value is None:
            continue
        name = aliases.get(key, key)
        if name not in accepted:
            known = sorted(set(accepted) | {k for k, v in aliases.items() if v in accepted})
            raise ConfigError(f"{key}: not a hyperparameter of '{architecture}' (accepted: {', '.join(known)})")
        if name in kwargs:
            raise ConfigError(f"{key}: given twice (as '{name}' and an alias)")
        kwargs[name] = value
    return kwargs


def build_model(architecture: str, elements: Sequence[int], **hparams: Any) -> Potential:
    """Build a model by short name; ``dtype`` ('float32' or 'float64') sets its precision (default: float32, or the
    dtype of the weights a model was read with, ``weights_dtype``: a MACE file's)."""
    cls = model_class(architecture)
    asked = hparams.pop("dtype", None)
    dtype = parse_dtype(asked) if asked else None
    kwargs = _constructor_kwargs(cls, architecture, hparams)
    try:
        model = cls(elements, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model '{architecture}': {exc}") from exc
    return cast_model(model, dtype or getattr(model, "weights_dtype", None) or torch.float32)



def cast_model(model: P, dtype: str | torch.dtype) -> P:
    """Convert a model's parameters and buffers to ``dtype`` in place, keeping ``atomic_energies`` and ``output_scale``
    in float64."""
    reference = model.atomic_energies.detach().to(torch.float64).clone()
    scale = model.output_scale.detach().to(torch.float64).clone()
    model.to(parse_dtype(dtype))
    model.atomic_energies = reference
    model.output_scale = scale
    return model
