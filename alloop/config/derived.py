"""Defaults that depend on other sections or on the structures: the benchmarks' settings where they apply.

:func:`derived_defaults` lists them for a campaign mapping (the keys its file does not give), each with its value
and where it comes from; :class:`~alloop.config.campaign.CampaignConfig` applies them before validation and
``alloop validate --sources`` reports their origin (:mod:`alloop.config.sources`). The rules:

- ``model.baseline``: ``gfn2-xtb`` when GFN2-xTB parametrises every element of the structures, unless the model
  starts from a ``checkpoint`` (it carries its own) or ``training.replay_fraction`` > 0 (replay has no baseline);
  ``baseline: null`` in the file keeps the plain model;
- ``training``: the pretrained recipe (:data:`~alloop.config.training.PRETRAINED_DEFAULTS`, the one of ``alloop
  train --model sevennet-0``) for a model with pretrained weights (a preset with a ``base``);
- ``schedule.bootstrap.method``: ``md`` (GFN-xTB MD, the quickstarts' bootstrap), on the ``level`` given, else the
  baseline, else a GFN-xTB cheap fidelity, else ``gfn2-xtb`` when it parametrises the elements; ``rattle`` when
  no GFN-xTB surface can run the structures, or when the section gives ``amplitude_A`` (rattle's own key);
- ``evaluation.auto``: :data:`~alloop.config.evaluation.AUTO_FRAMES` (a test set the campaign makes) when the file
  has no ``evaluation`` key and :func:`no_auto_evaluation` finds no reason against it (a key given as ``false`` or
  null keeps the campaign without a set, as a stored config of one re-reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alloop.config.base import merge_preset
from alloop.config.evaluation import AUTO_FRAMES
from alloop.config.training import PRETRAINED_DEFAULTS
from alloop.fidelity import XTB_MAX_Z

#: the fidelities when a campaign names none
DEFAULT_FIDELITIES = {"cheap": "hf-sto3g", "expensive": "b3lyp-svp"}
#: the model when a campaign names none
DEFAULT_MODEL = "small"
#: the baseline (and bootstrap MD surface) when the elements allow it
DEFAULT_BASELINE = "gfn2-xtb"


@dataclass(frozen=True)
class Derived:
    """A default set from other settings: the dotted key, its value and the reason (shown by ``--sources``)."""

    key: str
    value: Any
    source: str


def derived_defaults(data: dict[str, Any], base_dir: Path, read_structures: bool = True) -> list[Derived]:
    """The defaults of :mod:`this module <alloop.config.derived>` for the keys ``data`` does not give;
    ``read_structures=False`` (a stored config, which gives every key) derives nothing from the structures."""
    model = _model_mapping(data.get("model"))
    training = _mapping(data.get("training"))
    schedule = _mapping(data.get("schedule"))
    boot = _mapping(schedule.get("bootstrap"))
    structures = _structures(data, base_dir) if read_structures else None
    xtb_ok = structures is not None and all(0 < int(z) <= XTB_MAX_Z for a in structures for z in a.numbers)
    out: list[Derived] = []
    baseline = model.get("baseline")
    if "baseline" not in model and model.get("checkpoint") is None and not training.get("replay_fraction") and xtb_ok:
        baseline = DEFAULT_BASELINE
        out.append(Derived("model.baseline", baseline, "default (GFN2-xTB parametrises the elements)"))
    if model.get("base") is not None:
        for key, value in PRETRAINED_DEFAULTS.items():
            if key not in training and not (key == "steps" and training.get("max_epochs") is not None):
                out.append(Derived(f"training.{key}", value, f"pretrained recipe ({model.get('preset') or 'base'})"))
    if "method" not in boot and boot.get("amplitude_A") is not None:
        out.append(Derived("schedule.bootstrap.method", "rattle", "default (amplitude_A given: rattled copies)"))
    elif "method" not in boot:  # with model.checkpoint too: its first training is on the bootstrap's labels
        out += _bootstrap_method(bool(boot.get("level") or baseline or _cheap_is_xtb(data)), xtb_ok)
    if "evaluation" not in data and structures is not None and no_auto_evaluation(structures) is None:
        out.append(Derived("evaluation.auto", AUTO_FRAMES, "default (a test set made from GFN-xTB MD of the molecules)"))
    return out


def no_auto_evaluation(structures: list[Any]) -> str | None:
    """Why a campaign of these starting structures gets no automatic test set by default (one line), or None when it
    does: every element needs a GFN-xTB surface, and a periodic cell is left to the user (its GFN-xTB MD costs
    seconds per step, hours for a set: docs/campaigns.md)."""
    from ase.data import chemical_symbols

    if any(a.pbc.any() for a in structures):
        return ("the structures are a periodic cell, where the set's GFN-xTB MD costs hours; ask for one with "
                "evaluation: {auto: N} or give a labelled file (evaluation.structures)")
    beyond = sorted({int(z) for a in structures for z in a.numbers if not 0 < int(z) <= XTB_MAX_Z})
    if beyond:
        names = ", ".join(chemical_symbols[z] if 0 < z < len(chemical_symbols) else str(z) for z in beyond)
        return (f"no GFN-xTB surface parametrises {names} (H to Rn only), so the set's MD cannot run; give a labelled "
                "file (evaluation.structures)")
    return None


def _bootstrap_method(has_surface: bool, xtb_ok: bool) -> list[Derived]:
    """MD on the surface there is, else on GFN2-xTB when it parametrises the elements, else rattled copies."""
    if has_surface:
        return [Derived("schedule.bootstrap.method", "md", "default")]
    if xtb_ok:
        return [Derived("schedule.bootstrap.method", "md", "default"),
                Derived("schedule.bootstrap.level", DEFAULT_BASELINE, "default (the bootstrap MD's surface)")]
    return [Derived("schedule.bootstrap.method", "rattle", "default (rattle: no GFN-xTB surface for the elements)")]


def apply_derived(data: dict[str, Any], derived: list[Derived]) -> dict[str, Any]:
    """``data`` with each derived default set at its dotted key (mappings copied on the way, presets expanded)."""
    out = dict(data)
    for d in derived:
        *path, last = d.key.split(".")
        node = out
        for part in path:
            child = node.get(part)
            if child is None and node is out and part == "model":
                child = DEFAULT_MODEL  # the section's default, which a derived key must not replace
            child = {"preset": child} if isinstance(child, str) else dict(child or {})
            node[part] = child
            node = child
        node[last] = d.value
    return out


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _model_mapping(spec: Any) -> dict[str, Any]:
    """The model section with its preset's keys (the default preset when none is named); {} when unreadable."""
    spec = DEFAULT_MODEL if spec is None else spec
    try:
        merged = merge_preset("models", spec)
    except ValueError:
        return {}
    return merged if isinstance(merged, dict) else {}


def _structures(data: dict[str, Any], base_dir: Path) -> list[Any] | None:
    """The input structures (without rotamers), or None when they cannot be read (reported by ``system``)."""
    from alloop.system.structures import load_structures, resolve_source

    source = _mapping(data.get("system")).get("structures")
    if not isinstance(source, (str, list)):
        return None
    try:
        sources = [source] if isinstance(source, str) else source
        return load_structures([resolve_source(str(s), base_dir) for s in sources])
    except Exception:  # noqa: BLE001 - any unreadable input is the system section's error, not this one's
        return None


def _fidelity_method(data: dict[str, Any], role: str) -> str | None:
    from alloop.presets import load_preset

    spec = _mapping(data.get("fidelities")).get(role, DEFAULT_FIDELITIES[role])
    spec = {"preset": spec} if isinstance(spec, str) else _mapping(spec)
    method = spec.get("method")
    if method is None and spec.get("preset") is not None:
        try:
            method = load_preset("fidelities", str(spec["preset"])).get("method")
        except Exception:  # noqa: BLE001 - an unknown preset is the fidelities section's error
            return None
    return str(method).strip().lower() if method is not None else None


def _cheap_is_xtb(data: dict[str, Any]) -> bool:
    from alloop.fidelity import XTB_METHODS

    return _fidelity_method(data, "cheap") in XTB_METHODS
