"""The campaign config's sections, by their old module name (re-exported; see :mod:`alloop.config`)."""

from __future__ import annotations

from alloop.config_base import Section, base_dir_of, checks_files, deep_merge, drop_nulls, merge_preset
from alloop.config_execution import ClusterConfig, ExecutionConfig, StoreConfig
from alloop.config_science import (
    BootstrapConfig,
    LabelLimits,
    MDConfig,
    ModelConfig,
    ScheduleConfig,
    SelectionConfig,
    SystemConfig,
    TrainingConfig,
    UncertaintyConfig,
)

__all__ = [
    "BootstrapConfig", "ClusterConfig", "ExecutionConfig", "LabelLimits", "MDConfig", "ModelConfig",
    "ScheduleConfig", "Section", "SelectionConfig", "StoreConfig", "SystemConfig", "TrainingConfig",
    "UncertaintyConfig", "base_dir_of", "checks_files", "deep_merge", "drop_nulls", "merge_preset",
]
