"""Find a campaign's store from its run directory, and turn a ``--fidelity`` argument into a Fidelity."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from alloop.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from alloop.fidelity import Fidelity

#: the store's directory inside a campaign's run directory
STORE_DIRNAME = "store.zarr"


def store_path(run_dir: str | Path) -> Path:
    """Where a campaign keeps its store: ``RUN_DIR/store.zarr``."""
    return Path(run_dir) / STORE_DIRNAME


def is_store(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a campaign store (its ``store.zarr`` has a Zarr group)."""
    return (store_path(run_dir) / "zarr.json").is_file()


def find_store(path: str | Path) -> Path:
    """The store of a run directory (``RUN_DIR/store.zarr``), or ``path`` itself if it is a store."""
    path = Path(path)
    if (path / "zarr.json").is_file():
        return path
    if (path / STORE_DIRNAME / "zarr.json").is_file():
        return path / STORE_DIRNAME
    if not path.exists():
        raise StoreError(f"no such directory: {path}")
    raise StoreError(f"{path} holds no campaign store (no zarr.json in it or in {STORE_DIRNAME}/)")


def resolve_fidelity(name: str, config: dict[str, Any] | None, stored: dict[str, dict[str, Any]]) -> Fidelity:
    """A campaign role (``config["fidelities"][name]``), a stored fidelity (hash or name), or a preset name.

    A role or preset that matches a stored fidelity up to charge and spin is returned as stored,
    so labels written with the system's charge/spin overrides are found again.
    """
    from alloop.fidelity import Fidelity, load_fidelity  # here: reading a store needs no pydantic models
    from alloop.presets import preset_names

    roles = (config or {}).get("fidelities") or {}
    roles = roles if isinstance(roles, dict) else {}
    by_name = {info["name"]: h for h, info in stored.items()}
    if name in roles:
        try:
            return _prefer_stored(load_fidelity(roles[name]), stored)
        except ConfigError as exc:
            raise StoreError(f"fidelity role '{name}' of the campaign config: {exc}") from None
    if name in stored:
        return Fidelity(**stored[name]["spec"])
    matches = [h for h, info in stored.items() if info["name"] == name]
    presets = preset_names("fidelities")
    if len(matches) > 1 and name in presets and load_fidelity(name).hash() in matches:
        return load_fidelity(name)
    if len(matches) > 1:
        raise StoreError(f"fidelity name '{name}' is ambiguous in this store (hashes {', '.join(matches)})")
    if matches:
        return Fidelity(**stored[matches[0]]["spec"])
    if name in presets:
        return _prefer_stored(load_fidelity(name), stored)
    parts = [f"campaign roles: {', '.join(roles) or 'none (the store has no campaign config naming fidelities)'}"]
    if by_name:
        parts.append(f"stored: {', '.join(by_name)}")
    parts.append(f"presets: {', '.join(presets)}")
    raise StoreError(f"unknown fidelity '{name}' ({'; '.join(parts)})")


def _prefer_stored(fidelity: Fidelity, stored: dict[str, dict[str, Any]]) -> Fidelity:
    """The stored fidelity that differs from ``fidelity`` only by the system's charge and spin, if exactly one."""
    from alloop.fidelity import Fidelity

    if fidelity.hash() in stored:
        return fidelity
    system = ("charge", "spin")
    mine = fidelity.model_dump(exclude=set(system))
    same = [i["spec"] for i in stored.values() if {k: v for k, v in i["spec"].items() if k not in system} == mine]
    return Fidelity(**same[0]) if len(same) == 1 else fidelity
