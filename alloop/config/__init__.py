"""A campaign's validated configuration, loaded from one YAML file.

``load_campaign(path)`` reads the file (optionally ``extends:`` another one),
applies ``--set key.path=value`` overrides, resolves presets (fidelities,
model, cluster) and relative paths, checks the structures against the system
charge and spin and against both fidelities, and returns a frozen
:class:`CampaignConfig`. Every mistake is a :class:`ConfigError` whose message
is ``<key path>: <reason>`` (one line per error), raised before anything runs.
``cfg.to_dict()`` is the fully resolved, JSON-serialisable form stored in the
campaign store; ``CampaignConfig.from_dict`` reads it back to an equal config.

The package is split by concept: :mod:`~alloop.config.system` (system,
fidelities, model), :mod:`~alloop.config.exploration` (MD, uncertainty,
selection), :mod:`~alloop.config.schedule` (cycles, stopping rules, bootstrap),
:mod:`~alloop.config.training` (the training recipe and its defaults),
:mod:`~alloop.config.execution` (cluster, threads, retries, store location),
:mod:`~alloop.config.evaluation` (the fixed evaluation set),
:mod:`~alloop.config.campaign` (the whole campaign: defaults and checks across
sections), :mod:`~alloop.config.loading` (files, ``extends:``, overrides),
:mod:`~alloop.config.messages` (error lines), :mod:`~alloop.config.base` (what
every section shares) and :mod:`~alloop.presets` (the YAML presets under
``configs/``).

The public names below are re-exported lazily (PEP 562): ``alloop.presets``
sits below the fidelities that the sections import, so importing it must not
load the sections.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alloop.config.campaign import CampaignConfig
    from alloop.config.evaluation import EvaluationConfig
    from alloop.config.execution import ClusterConfig, ExecutionConfig, StoreConfig
    from alloop.config.exploration import MDConfig, SelectionConfig, UncertaintyConfig
    from alloop.config.loading import apply_overrides, load_campaign, read_campaign_file
    from alloop.config.messages import format_validation_error
    from alloop.config.schedule import BootstrapConfig, LabelLimits, ScheduleConfig
    from alloop.config.system import FidelitiesConfig, ModelConfig, SystemConfig
    from alloop.config.training import TrainingConfig

#: public name -> the submodule that defines it
_HOMES = {
    "CampaignConfig": "campaign",
    "EvaluationConfig": "evaluation",
    **dict.fromkeys(("ClusterConfig", "ExecutionConfig", "StoreConfig"), "execution"),
    **dict.fromkeys(("apply_overrides", "load_campaign", "read_campaign_file"), "loading"),
    "format_validation_error": "messages",
    **dict.fromkeys(("FidelitiesConfig", "ModelConfig", "SystemConfig"), "system"),
    **dict.fromkeys(("MDConfig", "SelectionConfig", "UncertaintyConfig"), "exploration"),
    **dict.fromkeys(("BootstrapConfig", "LabelLimits", "ScheduleConfig"), "schedule"),
    "TrainingConfig": "training",
}

__all__ = [
    "BootstrapConfig",
    "CampaignConfig",
    "ClusterConfig",
    "EvaluationConfig",
    "ExecutionConfig",
    "FidelitiesConfig",
    "LabelLimits",
    "MDConfig",
    "ModelConfig",
    "ScheduleConfig",
    "SelectionConfig",
    "StoreConfig",
    "SystemConfig",
    "TrainingConfig",
    "UncertaintyConfig",
    "apply_overrides",
    "format_validation_error",
    "load_campaign",
    "read_campaign_file",
]


assert sorted(_HOMES) == __all__


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'alloop.config' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"alloop.config.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
