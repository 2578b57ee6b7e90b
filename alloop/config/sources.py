"""Where each resolved setting of a campaign came from: a default, a preset, the pretrained recipe, the campaign file,
a file it extends, or ``--set``.

:func:`setting_sources` reads the layers a campaign is built from in the order they apply (defaults, derived
defaults of :mod:`alloop.config.derived`, presets, the extended files from the farthest, the file, ``--set``) and
labels every dotted key of the resolved config (``cfg.to_dict()``) with the last layer that gave it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from alloop.config.derived import DEFAULT_FIDELITIES, DEFAULT_MODEL, derived_defaults
from alloop.config.loading import apply_overrides, read_campaign_file
from alloop.presets import load_preset

DEFAULT = "default"
SET = "--set"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of a nested mapping (a null or non-mapping section is one key)."""
    if not isinstance(data, dict) or (not data and prefix):
        return {prefix.rstrip("."): data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


def setting_sources(path: str | Path, resolved: dict[str, Any], overrides: Iterable[str] = ()) -> dict[str, str]:
    """Dotted key of ``resolved`` (the campaign's ``to_dict()``) -> where its value came from."""
    path = Path(path).expanduser().resolve()
    chain = _file_chain(path)
    merged = apply_overrides(read_campaign_file(path), overrides)
    keys = list(flatten(resolved))
    sources = dict.fromkeys(keys, DEFAULT)

    def mark(prefix: str, source: str) -> None:
        for key in keys:
            if key == prefix or key.startswith(prefix + "."):
                sources[key] = source

    for d in derived_defaults(merged, path.parent):
        mark(d.key, d.source)
    for section, kind, name in _presets(merged):
        for key in (*load_preset(kind, name), *(("name",) if kind == "fidelities" else ())):
            mark(f"{section}.{key}", f"{'model' if kind == 'models' else 'fidelity'} preset {name}")
    for depth, (file, data) in enumerate(chain):
        label = file.name if depth == len(chain) - 1 else f"{file.name} (extended)"
        for key in flatten(_normalised(data, top=depth == len(chain) - 1)):
            mark(key, label)
    for item in overrides:
        mark(item.partition("=")[0].strip(), SET)
    for role in DEFAULT_FIDELITIES:
        for key in ("charge", "spin"):
            if sources.get(f"system.{key}") != DEFAULT:
                mark(f"fidelities.{role}.{key}", f"system.{key}")
    return sources


def summary(sources: dict[str, str]) -> str:
    """One line: how many settings each source gave, most first."""
    counts = Counter(_kind(s) for s in sources.values())
    return ", ".join(f"{n} {kind}" for kind, n in counts.most_common())


def _kind(source: str) -> str:
    if source.startswith(DEFAULT):
        return DEFAULT
    return "fidelity presets" if source.startswith("fidelity preset") else source


def _file_chain(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The campaign file and the files it extends, each with its own mapping, the farthest first."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    while True:
        data = yaml.safe_load(path.read_text()) or {}
        chain.append((path, data))
        parent = data.get("extends")
        if not isinstance(parent, str) or len(chain) > 20:
            return chain[::-1]
        path = (path.parent / parent).resolve()


def _normalised(data: dict[str, Any], top: bool) -> dict[str, Any]:
    """A file's own mapping as the resolved keys it gives: presets as ``preset``, ``evaluation: FILE`` as
    ``structures``; an extended file's ``name`` and ``store`` are not inherited."""
    out = {k: v for k, v in data.items() if k != "extends" and (top or k not in ("name", "store"))}
    for section in ("model", "execution"):
        if isinstance(out.get(section), str):
            out[section] = {"preset": out[section]}
    if isinstance(out.get("evaluation"), str):
        out["evaluation"] = {"structures": out["evaluation"]}
    fidelities = out.get("fidelities")
    if isinstance(fidelities, dict):
        out["fidelities"] = {r: ({"preset": v} if isinstance(v, str) else v) for r, v in fidelities.items()}
    return out


def _presets(merged: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, preset kind, preset name) of the model and both fidelities."""
    out = []
    model = merged.get("model", DEFAULT_MODEL)
    name = model if isinstance(model, str) else (model or {}).get("preset")
    if name:
        out.append(("model", "models", str(name)))
    fidelities = merged.get("fidelities") or {}
    for role, default in DEFAULT_FIDELITIES.items():
        spec = fidelities.get(role, default) if isinstance(fidelities, dict) else default
        name = spec if isinstance(spec, str) else (spec or {}).get("preset")
        if name:
            out.append((f"fidelities.{role}", "fidelities", str(name)))
    return out
