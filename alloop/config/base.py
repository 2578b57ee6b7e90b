"""What every campaign config section shares: frozen pydantic models, null handling, paths, presets, and the
check that a level of theory is GFN-xTB (a model baseline, the surface of bootstrap MD).

Each section is a small frozen model with defaults (``extra="forbid"``, units in
field names). Relative paths resolve against ``base_dir`` from the validation
context; ``check_files=False`` in the context skips file checks (a stored config
whose inputs moved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from alloop.errors import ConfigError
from alloop.presets import load_preset


class Section(BaseModel):
    """A frozen config section; a key given as ``null`` (or left empty in YAML) means its default, except the keys
    of ``NULL_MEANS_NONE``, whose ``null`` switches something off (e.g. ``ema_decay: null``: no EMA)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    NULL_MEANS_NONE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _nulls_mean_default(cls, data: Any) -> Any:
        return drop_nulls(data, keep=cls.NULL_MEANS_NONE)


def drop_nulls(data: Any, keep: frozenset[str] = frozenset()) -> Any:
    """A mapping without its ``None`` values but those of the keys ``keep`` (anything else unchanged)."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if v is not None or k in keep}
    return data


def base_dir_of(info: ValidationInfo) -> Path:
    """The folder relative paths are resolved against (the campaign file's folder)."""
    context = info.context or {}
    return Path(context.get("base_dir") or Path.cwd())


def checks_files(info: ValidationInfo) -> bool:
    """False when re-reading a stored config whose input files may be gone (``check_files=False``)."""
    return bool((info.context or {}).get("check_files", True))


def merge_preset(kind: str, spec: Any) -> Any:
    """A preset name, or a mapping that may name a ``preset`` to start from, as one mapping.

    The resolved mapping keeps ``preset`` (provenance); its own keys override the preset's, mappings key by key.
    """
    if isinstance(spec, str):
        spec = {"preset": spec}
    if not isinstance(spec, dict) or spec.get("preset") is None:
        return spec
    try:
        base = load_preset(kind, str(spec["preset"]))
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return deep_merge(base, spec)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, mappings merged key by key (neither input is changed)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def gfn_xtb_preset(value: str, what: str, why: str) -> str:
    """``value`` if it names a GFN-xTB fidelity preset, else ValueError "<what> (gfn1-xtb, gfn2-xtb), not ... (<why>)"
    (an unknown preset: the FidelityError listing the known ones)."""
    from alloop.fidelity import load_fidelity

    family = load_fidelity(value).family
    if family != "xtb":
        raise ValueError(f"{what} (gfn1-xtb, gfn2-xtb), not the {family} fidelity '{value}' ({why})")
    return value
