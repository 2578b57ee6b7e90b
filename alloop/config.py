"""A campaign's validated configuration, loaded from one YAML file.

``load_campaign(path)`` reads the file (optionally ``extends:`` another one),
applies ``--set key.path=value`` overrides, resolves presets (fidelities,
model, cluster) and relative paths, checks the structures against the system
charge and spin and against both fidelities, and returns a frozen
:class:`CampaignConfig`. Every mistake is a :class:`ConfigError` whose message
is ``<key path>: <reason>`` (one line per error), raised before anything runs.
``cfg.to_dict()`` is the fully resolved, JSON-serialisable form stored in the
campaign store; ``CampaignConfig.from_dict`` reads it back to an equal config.

The config is split by concept: :mod:`alloop.config_science` (system, fidelities,
model, MD, uncertainty, selection, training, schedule), :mod:`alloop.config_execution`
(cluster, threads, retries, store location), :mod:`alloop.config_campaign` (the
whole campaign: defaults and checks across sections), :mod:`alloop.config_loading`
(files, ``extends:``, overrides) and :mod:`alloop.config_messages` (error lines);
:mod:`alloop.config_base` holds what every section shares. This module re-exports
the public names.
"""

from __future__ import annotations

from alloop.config_campaign import CampaignConfig
from alloop.config_execution import ClusterConfig, ExecutionConfig, StoreConfig
from alloop.config_loading import apply_overrides, load_campaign, read_campaign_file
from alloop.config_messages import format_validation_error
from alloop.config_science import (
    BootstrapConfig,
    FidelitiesConfig,
    LabelLimits,
    MDConfig,
    ModelConfig,
    ScheduleConfig,
    SelectionConfig,
    SystemConfig,
    UncertaintyConfig,
)
from alloop.config_training import TrainingConfig
from alloop.evaluation_set import EvaluationConfig

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
