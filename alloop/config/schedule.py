"""When a campaign runs what: the schedule (cycles, strategy, stopping rules, label caps) and the bootstrap
that makes the first model's data.

Pydantic sections, units in field names. Cross-field checks inside one section
are field validators on the later field (so an error carries that field's key
path); checks across sections live in :mod:`alloop.config.campaign`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from alloop.config.base import Section, gfn_xtb_preset

#: the schedule keys ``alloop resume --set`` may change: when the campaign stops, never what it computes
STOP_KEYS = ("deadline", "max_hours", "budget_cpu_seconds", "budget_cpu_hours", "max_labels",
             "target_val_force_mae_eV_per_A", "min_flag_rate", "target_predicted_force_error_eV_per_A",
             "stop_when_nothing_new")


class BootstrapConfig(Section):
    """The first model's data: perturbed copies of the structures or frames of GFN-xTB MD from them, cheap-labelled
    (some expensive too)."""

    n_samples: int = Field(default=32, ge=1, description="samples, spread over the structures, all cheap-labelled")
    method: Literal["rattle", "normal-modes", "md"] = "rattle"
    amplitude_A: float | None = Field(
        default=None, gt=0, validate_default=True, description="rattle: Gaussian displacement (default 0.05)"
    )
    temperature_K: float | None = Field(
        default=None, gt=0, description="normal-modes, md: sampling temperature (default md.temperature_K)"
    )
    level: str | None = Field(
        default=None, min_length=1,
        description="md: the GFN-xTB preset whose surface the MD runs on (default: model.baseline, else "
        "fidelities.cheap when it is GFN-xTB)",
    )
    equilibration_fs: float | None = Field(
        default=None, ge=0, validate_default=True, description="md: MD discarded before the first sample (default 200)"
    )
    spacing_fs: float | None = Field(
        default=None, gt=0, validate_default=True, description="md: MD time between two samples (default 100)"
    )
    n_expensive: int = Field(default=8, ge=0, description="of the samples, how many also get an expensive label")

    @field_validator("amplitude_A")
    @classmethod
    def _amplitude(cls, value: float | None, info: ValidationInfo) -> float | None:
        method = info.data.get("method")
        if method == "rattle":
            return 0.05 if value is None else value
        if value is not None:
            raise ValueError(f"only used by method 'rattle' (method is '{method}')")
        return None

    @field_validator("temperature_K")
    @classmethod
    def _temperature(cls, value: float | None, info: ValidationInfo) -> float | None:
        method = info.data.get("method")
        if value is not None and method not in ("normal-modes", "md"):
            raise ValueError(f"only used by methods 'normal-modes' and 'md' (method is '{method}')")
        if value is None and method in ("normal-modes", "md"):
            raise ValueError(f"required when method is '{method}'")
        return value

    @field_validator("level")
    @classmethod
    def _level(cls, value: str | None, info: ValidationInfo) -> str | None:
        method = info.data.get("method")
        if value is None:
            return None
        if method != "md":
            raise ValueError(f"only used by method 'md' (method is '{method}')")
        return gfn_xtb_preset(value, "bootstrap MD runs on a GFN-xTB surface", "too slow per MD step")

    @field_validator("equilibration_fs", "spacing_fs")
    @classmethod
    def _md_times(cls, value: float | None, info: ValidationInfo) -> float | None:
        method = info.data.get("method")
        if method != "md":
            if value is not None:
                raise ValueError(f"only used by method 'md' (method is '{method}')")
            return None
        if value is None:
            return 200.0 if info.field_name == "equilibration_fs" else 100.0
        return value

    @field_validator("n_expensive")
    @classmethod
    def _n_expensive(cls, value: int, info: ValidationInfo) -> int:
        n = info.data.get("n_samples")
        if n is not None and value > n:
            raise ValueError(f"must be <= n_samples ({n}) (got {value})")
        return value


class LabelLimits(Section):
    """A cap on the number of labels per fidelity over the whole campaign (bootstrap included)."""

    cheap: int | None = Field(default=None, ge=1)
    expensive: int | None = Field(default=None, ge=1)


class FidelityHours(Section):
    """A labelling budget in CPU hours per fidelity over the whole campaign (bootstrap included)."""

    cheap: float | None = Field(default=None, gt=0)
    expensive: float | None = Field(default=None, gt=0)


class ScheduleConfig(Section):
    """Cycles, strategy and the stopping rules (whichever comes first)."""

    strategy: Literal["periodic", "naive"] = "periodic"
    mode: Literal["synchronous", "asynchronous"] = Field(
        default="synchronous",
        description="asynchronous: the phases of successive cycles overlap (a cycle's labels start as soon as its "
        "frames are in; the next cycle's MD runs meanwhile, with the newest committed model, at most two cycles "
        "old); periodic strategy only. synchronous: every phase waits for the one before",
    )
    n_cycles: int = Field(default=3, ge=1)
    budget_cpu_seconds: float | None = Field(default=None, gt=0, description="labelling cost cap, both fidelities")
    max_labels: LabelLimits = Field(default_factory=LabelLimits)
    target_val_force_mae_eV_per_A: float | None = Field(default=None, gt=0, description="stop when reached")
    min_flag_rate: float | None = Field(default=None, gt=0, lt=1, description="stop when fewer frames are flagged")
    target_predicted_force_error_eV_per_A: float | None = Field(
        default=None, gt=0, description="stop when the mean predicted force error of a cycle's MD frames (the "
        "model's calibrated error model) is at or below this",
    )
    budget_cpu_hours: FidelityHours = Field(
        default_factory=FidelityHours, description="labelling cost cap per fidelity (cheap, expensive); labels in "
        "flight count; the cheap one spent stops the campaign, the expensive one its expensive labels",
    )
    deadline: datetime | None = Field(
        default=None, description="ISO-8601 time (2025-06-01T18:00, local time unless it gives a zone: Z, +02:00) "
        "after which no new work starts: what runs finishes, a model is trained on every label if the newest one "
        "lacks some, and the run stops, resumable",
    )
    max_hours: float | None = Field(
        default=None, gt=0, description="the same stop this many hours after each run or resume started",
    )
    stop_when_nothing_new: bool = Field(
        default=False, description="stop after a cycle whose MD flagged no frame and stopped no replica by a guard",
    )
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)

    @field_validator("deadline", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> Any:
        if isinstance(value, bool) or isinstance(value, (int, float)):
            raise ValueError(f"must be a time such as 2025-06-01T18:00 (got {value!r}); for hours from the start of "
                             "each run use schedule.max_hours")
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"must be an ISO-8601 time such as 2025-06-01T18:00 or 2025-06-01T18:00+02:00 "
                                 f"(got {value!r})") from None
        return value

    @field_validator("mode")
    @classmethod
    def _asynchronous_needs_periodic(cls, value: str, info: ValidationInfo) -> str:
        if value == "asynchronous" and info.data.get("strategy") == "naive":
            raise ValueError("asynchronous mode overlaps a cycle's training with the next cycle's MD; the naive "
                             "strategy trains once, at the end (use strategy: periodic or mode: synchronous)")
        return value
