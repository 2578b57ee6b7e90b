"""Load a trained model from a campaign run directory, its store, or a checkpoint file (alloop's, or a MACE model
file such as MACE-OFF's: its own energies, no per-fidelity references).

A campaign store holds checkpoints of these roles: ``model`` (what each
training produced; MD and scoring use it), ``theta0`` (ASTEROID's bias model,
stage 1), ``stage2`` (the model pretrained on cheap labels), ``committee`` (the
other members of the expensive pick's committee, trained on expensive labels),
``rejected`` (a final retrain set aside), ``validated`` (with ``training.final_refit``:
the final retrain that passed its guard, before its refit on every label) and, for a campaign from pretrained
weights, ``base`` (the untouched starting model, stored once).
Without a version the newest ``model`` is loaded; an explicit version may name
any role.

Energies: a model's ``atomic_energies`` are the per-element references of one
fidelity; its checkpoint records ``energy_references`` per fidelity hash (or
per role tag for ``alloop train`` files without hashes). :func:`use_fidelity`
writes the references of the requested fidelity (a campaign role such as
``expensive``, a stored fidelity name or hash, a preset name) into the model,
so predicted absolute energies are at that level of theory; forces do not
change. ``fidelity=None`` keeps the energies the checkpoint was saved with.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alloop.errors import AlloopError, StoreError
from alloop.potentials.base import Potential
from alloop.training.methods import SCORE_MATCHING

#: which campaign role's references a stored checkpoint of this role was saved with (stage 1 trains on
#: expensive labels, ASTEROID's stage 2 on cheap ones); ``model`` checkpoints record their references
_SAVED_ROLE = {"model": "expensive", "theta0": "expensive", "stage2": "cheap", "committee": "expensive",
               "validated": "expensive"}


@dataclass
class TrainedModel:
    """A loaded model and where it came from.

    ``metadata`` is the checkpoint's free metadata merged with the store's
    (``cycle``, ``metrics``, ...) plus ``energy_references`` ``{key: {Z: eV}}``.
    ``fidelities`` maps campaign roles to ``{"name", "hash"}`` when known;
    ``fidelity`` is the fidelity whose references the model now holds
    (``{"name", "hash"}``, plus ``"role"`` when it is a campaign role), or None
    when that is unknown (``use_fidelity(None)``). ``hash`` is the key of
    ``energy_references``: a fidelity hash, or the role tag (``expensive``) of
    an ``alloop train`` checkpoint trained on files without hashes. A store's
    config and stored fidelities resolve other names (``resolve_fidelity``).
    """

    model: Potential
    metadata: dict[str, Any]
    source: Path
    version: int | None = None
    role: str = "model"
    sha256: str = ""
    run_dir: Path | None = None
    fidelities: dict[str, dict[str, str]] = field(default_factory=dict)
    fidelity: dict[str, str] | None = None
    store_fidelities: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    campaign_config: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def cycle(self) -> int | None:
        cycle = self.metadata.get("cycle")
        return None if cycle is None else int(cycle)

    @property
    def description(self) -> str:
        """``RUN/store.zarr v5 (role model, cycle 0)`` or the checkpoint file's path."""
        if self.version is None:
            return str(self.source) + ("" if self.role == "model" else f" (role {self.role})")
        cycle = self.cycle
        extra = [f"role {self.role}"] + ([] if cycle is None else ["bootstrap" if cycle < 0 else f"cycle {cycle}"])
        return f"{self.source} v{self.version} ({', '.join(extra)})"

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable provenance: source, run, version, role, cycle, fidelity, SHA-256 of the checkpoint."""
        return {
            "source": str(self.source.resolve()),
            "run_dir": None if self.run_dir is None else str(self.run_dir.resolve()),
            "version": self.version, "role": self.role, "cycle": self.cycle, "sha256": self.sha256,
            "architecture": self.model.registry_name, "fidelity": self.fidelity, "description": self.description,
        }


def load_trained(source: str | Path, version: int | None = None, fidelity: str | None = "expensive") -> TrainedModel:
    """Load a model from a run directory, a store or a checkpoint file, at ``fidelity`` (see the module docstring).

    Raises a one-line AlloopError for a missing path, a store without models, an
    unknown version, a corrupt checkpoint, or a fidelity without references.
    """
    if version is not None:
        version = _version_number(version)
    path = Path(source)
    if not path.exists():
        raise AlloopError(f"no such checkpoint or run directory: {path}")
    if path.is_dir():
        trained = _from_store(path, version)
    else:
        if version is not None:
            raise AlloopError(f"{path} is a checkpoint file: a version only picks a model in a campaign store")
        trained = _from_file(path)
    return use_fidelity(trained, fidelity)


def _version_number(version: Any) -> int:
    try:
        if isinstance(version, bool):
            raise TypeError
        return operator.index(version)
    except TypeError:
        raise AlloopError(f"a model version is an integer (alloop status lists them), not {version!r}") from None


def _from_file(path: Path) -> TrainedModel:
    from alloop.potentials.checkpoint import checkpoint_from_bytes

    blob = path.read_bytes()
    model, metadata = checkpoint_from_bytes(path, blob)  # an alloop checkpoint, or a MACE model file
    fidelities = {str(k): dict(v) for k, v in (metadata.get("fidelities") or {}).items() if isinstance(v, dict)}
    return TrainedModel(model, metadata, path, role=str(metadata.get("role") or "model"),
                        sha256=hashlib.sha256(blob).hexdigest(), fidelities=fidelities)


def _from_store(path: Path, version: int | None) -> TrainedModel:
    from alloop.potentials.checkpoint import model_from_bytes
    from alloop.store import STORE_DIRNAME, CampaignStore, find_store

    store_dir = find_store(path)
    with CampaignStore.open(store_dir, "r") as store:
        entries = {int(e["version"]): e for e in store.checkpoints()}
        models = [v for v, e in entries.items() if e["role"] == "model"]
        if version is None:
            if not models:
                raise StoreError(f"{store_dir} holds no trained model yet (no checkpoint with role 'model')")
            version = max(models)
        elif version not in entries:
            shown = ", ".join(f"{v} ({e['role']})" for v, e in sorted(entries.items())) or "none"
            raise StoreError(f"no model version {version} in {store_dir} (versions: {shown})")
        try:
            blob, store_meta = store.checkpoint(version)
        except StoreError as exc:
            raise StoreError(f"{store_dir}: {exc}") from None
        config, stored = store.config, store.fidelities()
        fidelities = _campaign_fidelities(config, stored)
    try:
        model, metadata = model_from_bytes(blob)
    except AlloopError as exc:
        raise AlloopError(f"{store_dir} v{version}: {exc}") from None
    run_dir = store_dir.parent if store_dir.name == STORE_DIRNAME else None
    entry = entries[version]
    return TrainedModel(model, {**store_meta, **metadata}, store_dir, version, role=str(entry["role"]),
                        sha256=str(entry.get("sha256", "")), run_dir=run_dir, fidelities=fidelities,
                        store_fidelities=stored, campaign_config=config)


def _campaign_fidelities(config: dict[str, Any] | None, stored: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """``{role: {"name", "hash"}}`` for the campaign's fidelity roles (as labelled: charge/spin included)."""
    from alloop.store import resolve_fidelity

    out: dict[str, dict[str, str]] = {}
    roles = (config or {}).get("fidelities")
    for role in roles if isinstance(roles, dict) else {}:
        try:
            fid = resolve_fidelity(role, config, stored)
        except AlloopError:
            continue
        out[str(role)] = {"name": fid.name, "hash": fid.hash()}
    return out


def use_fidelity(trained: TrainedModel, fidelity: str | None) -> TrainedModel:
    """Write the energy references of ``fidelity`` into ``trained.model`` (in place); returns ``trained``.

    ``None`` keeps the references the checkpoint was saved with. AlloopError when
    the name is unknown or the checkpoint has no references for it.
    """
    from alloop.training.references import apply_references

    if fidelity is None:
        trained.fidelity = _saved_fidelity(trained)
        return trained
    key, info = _resolve(trained, fidelity)
    info = _with_role(trained, info)
    references = trained.metadata.get("energy_references") or {}
    saved = _saved_fidelity(trained)
    if key in references:
        apply_references(trained.model, references[key])
    elif saved is None or saved["hash"] != key:
        have = ", ".join(_label(trained, k) for k in references) or "none"
        raise AlloopError(
            f"{trained.description} has no energy references for fidelity '{fidelity}' ({info['name']}, {key}); "
            f"it has references for: {have}; fidelity=None keeps the energies it was saved with"
        )
    trained.fidelity = info
    return trained


def _resolve(trained: TrainedModel, name: str) -> tuple[str, dict[str, str]]:
    """The references key (fidelity hash, or a role tag of ``alloop train``) and ``{"name", "hash", "role"?}``."""
    references = trained.metadata.get("energy_references") or {}
    if name in trained.fidelities:
        info = trained.fidelities[name]
        return info["hash"], {**info, "role": name}
    if trained.store_fidelities or trained.campaign_config:
        from alloop.store import resolve_fidelity

        try:
            fid = resolve_fidelity(name, trained.campaign_config, trained.store_fidelities)
        except AlloopError as exc:
            raise AlloopError(f"{trained.description}: {exc}") from None
        return fid.hash(), {"name": fid.name, "hash": fid.hash()}
    if name in references:
        return name, {"name": _name_of(trained, name), "hash": name}
    if name == "expensive" and trained.metadata.get("fidelity") in references:
        tag = str(trained.metadata["fidelity"])  # ``alloop train``: the expensive file's hash or role tag
        return tag, {"name": _name_of(trained, tag), "hash": tag, "role": name}
    by_name = [v for v in trained.fidelities.values() if v.get("name") == name]
    if by_name:
        return by_name[0]["hash"], dict(by_name[0])
    return _preset(trained, name, references)


def _preset(trained: TrainedModel, name: str, references: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from alloop.fidelity import load_fidelity
    from alloop.presets import preset_names

    if name in preset_names("fidelities"):
        fid = load_fidelity(name)
        return fid.hash(), {"name": fid.name, "hash": fid.hash()}
    known = sorted({*trained.fidelities, *references} | ({"expensive"} if trained.metadata.get("fidelity") else set()))
    raise AlloopError(f"unknown fidelity '{name}' for {trained.description} (known: {', '.join(known) or 'none'}); "
                      "fidelity=None keeps the energies it was saved with")


def _saved_fidelity(trained: TrainedModel) -> dict[str, str] | None:
    """The fidelity whose references the checkpoint was saved with, if it is known."""
    tag = trained.metadata.get("fidelity")
    if tag:
        name = trained.metadata.get("fidelity_name") or _name_of(trained, str(tag))
        return _with_role(trained, {"name": str(name), "hash": str(tag)})
    role = _SAVED_ROLE.get(trained.role) if trained.version is not None else None
    method = ((trained.campaign_config or {}).get("training") or {}).get("method")
    if role == "cheap" and method == SCORE_MATCHING:
        return None  # stage 2 was pretrained without energies
    if role in trained.fidelities:
        return {**trained.fidelities[role], "role": role}
    return None


def _with_role(trained: TrainedModel, info: dict[str, str]) -> dict[str, str]:
    """``info`` plus the campaign role whose fidelity it is, if any."""
    roles = [r for r, v in trained.fidelities.items() if v.get("hash") == info["hash"]]
    return {**info, "role": roles[0]} if roles and "role" not in info else info


def _name_of(trained: TrainedModel, key: str) -> str:
    if key in trained.store_fidelities:
        return str(trained.store_fidelities[key]["name"])
    for info in trained.fidelities.values():
        if info.get("hash") == key:
            return info.get("name", key)
    return key


def _label(trained: TrainedModel, key: str) -> str:
    name = _name_of(trained, key)
    return key if name == key else f"{name} ({key})"
