"""Reading a campaign file: ``extends:`` chains, ``--set`` overrides, and :func:`load_campaign`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from alloop.config.base import deep_merge
from alloop.config.campaign import CampaignConfig
from alloop.config.messages import short
from alloop.config.schedule import STOP_KEYS
from alloop.errors import ConfigError


def read_campaign_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A campaign file's mapping, with ``extends:`` merged in (the extending file wins, key by key).

    An extended file's ``name`` and ``store`` are not inherited, and its relative paths are
    made absolute against its own folder.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: campaign file not found")
    if path in _seen:
        raise ConfigError(f"extends: {path} extends itself (via {' -> '.join(p.name for p in _seen)})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a campaign file must be a mapping of sections (got {type(data).__name__})")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"extends: must be a path to a campaign file (got {short(parent)})")
    base = read_campaign_file(path.parent / parent, (*_seen, path))
    base.pop("name", None)
    base.pop("store", None)
    _absolutize_paths(base, path.parent / Path(parent).parent)
    return deep_merge(base, data)


def _absolutize_paths(data: dict[str, Any], folder: Path) -> None:
    """Make an extended file's relative paths absolute, so they keep pointing at the same files."""
    system = data.get("system")
    if isinstance(system, dict) and isinstance(system.get("structures"), str):
        candidate = (folder / system["structures"]).resolve()
        if candidate.is_file():
            system["structures"] = str(candidate)
    if isinstance(data.get("evaluation"), str):
        data["evaluation"] = {"structures": data["evaluation"]}
    for section, key in (("model", "checkpoint"), ("execution", "scheduler_file"), ("evaluation", "structures")):
        block = data.get(section)
        if isinstance(block, dict) and isinstance(block.get(key), str):
            block[key] = str((folder / block[key]).resolve())


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``data`` with ``dotted.key=value`` overrides (values parsed as YAML) applied.

    A preset name on the way (``model: small`` then ``model.n_layers=4``) becomes ``{preset: small}``.
    """
    out = deep_merge({}, data)
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set {item}: expected key.path=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item}: the value is not valid YAML") from None
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part, {})
            if child is None or child is False:  # e.g. evaluation: false, then evaluation.auto=40
                child = {}
            if isinstance(child, str):
                child = {"preset": child}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item}: {'.'.join(parts[: depth + 1])} is not a mapping")
            node[part] = child = dict(child)
            node = child
        node[parts[-1]] = value
    return out


def apply_stop_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """:func:`apply_overrides` for a campaign under way (``alloop resume --set``): only the stop rules
    (``schedule.`` + :data:`~alloop.config.schedule.STOP_KEYS`) may change, never what the campaign computes."""
    for item in overrides:
        parts = item.partition("=")[0].strip().split(".")
        if len(parts) < 2 or parts[0] != "schedule" or parts[1] not in STOP_KEYS:
            raise ConfigError(f"--set {item}: a resumed campaign changes only its stop rules (schedule."
                              f"{', schedule.'.join(STOP_KEYS)}); anything else changes what it computes: start a "
                              "new campaign for that")
    return apply_overrides(data, overrides)


def load_campaign(path: str | Path, overrides: Iterable[str] = ()) -> CampaignConfig:
    """Read, resolve and validate a campaign file; relative paths resolve against its folder."""
    path = Path(path).expanduser().resolve()
    data = apply_overrides(read_campaign_file(path), overrides)
    return CampaignConfig.from_dict(data, base_dir=path.parent, stem=path.stem)
