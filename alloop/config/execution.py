"""Where and how a campaign runs: the Dask cluster, task threads and retries, the store's location.

Nothing here changes the science: the same campaign on another cluster gives the same results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from alloop.config.base import Section, base_dir_of, merge_preset
from alloop.errors import ConfigError


class ClusterConfig(Section):
    """Where Dask workers come from: a local cluster or a dask-jobqueue cluster (with its keyword arguments)."""

    preset: str | None = None
    kind: Literal["local", "slurm", "pbs"] = "local"
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the cluster class")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return merge_preset("clusters", data)

    @field_validator("options")
    @classmethod
    def _known_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:
            return value
        reserved = {"n_workers", "threads_per_worker"} & set(value)
        if reserved:
            raise ValueError(f"'{sorted(reserved)[0]}' is set by execution.{sorted(reserved)[0]}, not here")
        # the option names come from the cluster classes (Dask): checked where a cluster is built,
        # alloop.campaign.execution.jobqueue.check_cluster_options (alloop validate, alloop run)
        return value


class ExecutionConfig(Section):
    """Where and how tasks run; nothing here changes the science."""

    cluster: ClusterConfig | None = Field(default=None, description="default 'local' unless address/scheduler_file")
    address: str | None = Field(default=None, min_length=1, description="connect to an existing scheduler")
    scheduler_file: Path | None = None
    n_workers: int | None = Field(default=None, ge=1, description="default: one per core (local) or 1 job")
    threads_per_worker: int = Field(default=1, ge=1, description="also the torch/PySCF threads of a task")
    tasks_per_slot: int = Field(default=2, ge=1, description="tasks in flight per free worker thread")
    label_batch_seconds: float = Field(default=2.0, ge=0, description="labels shorter than this share tasks of "
                                       "about this length (0: one task per label)")
    max_task_retries: int = Field(default=2, ge=0, description="resubmissions after a worker death")

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        external = [k for k in ("address", "scheduler_file") if data.get(k) is not None]
        if len(external) == 2:
            raise ConfigError("execution.scheduler_file: give either address or scheduler_file, not both")
        if external and data.get("cluster") is not None:
            raise ConfigError(f"execution.cluster: not used with execution.{external[0]}; remove one of them")
        if not external and data.get("cluster") is None:
            data = {**data, "cluster": "local"}
        return data

    @field_validator("scheduler_file")
    @classmethod
    def _scheduler_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        return (base_dir_of(info) / value.expanduser()).resolve()


class StoreConfig(Section):
    """Where the campaign store lives (default: ``<campaign file folder>/<file stem>.run``)."""

    run_dir: Path

    @field_validator("run_dir")
    @classmethod
    def _absolute(cls, value: Path, info: ValidationInfo) -> Path:
        path = (base_dir_of(info) / value.expanduser()).resolve()
        if path.exists() and not path.is_dir():
            raise ValueError(f"exists and is not a folder: {path}")
        return path
