"""The science of a campaign: what is simulated and how it is learnt (pydantic sections, units in field names).

The system and its levels of theory, the model, MD, the uncertainty measure,
frame selection, training and the schedule (cycles, bootstrap, stopping rules).
Cross-field checks inside one section are field validators on the later field
(so an error carries that field's key path); checks across sections live in
:mod:`alloop.config_campaign`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from alloop.config_base import Section, base_dir_of, checks_files, merge_preset
from alloop.errors import AlloopError
from alloop.fidelity import Fidelity


class SystemConfig(Section):
    """The starting structures and their total charge and spin."""

    structures: str = Field(
        min_length=1, description="an ASE-readable file (relative to the campaign file) or an ase.build.molecule name"
    )
    charge: int = 0
    spin: int = Field(default=0, ge=0, description="2S, the number of unpaired electrons (PySCF convention)")
    conformers: int = Field(
        default=1, ge=1, le=81,
        description="starting structures per input molecule: the input and its rotamers about rotatable bonds "
                    "(alloop.conformers: each non-symmetric rotor turned by 0, 120, 240 deg), at most this many; "
                    "replicas and bootstrap samples are spread over them (1: the input only)")

    @field_validator("structures")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        from alloop.structures import resolve_source

        try:
            return resolve_source(value, base_dir_of(info))
        except ValueError:
            if checks_files(info):
                raise
            return value


_EGNN_DEFAULTS = {"hidden_features": 64, "n_layers": 3}
# Keys each architecture reads besides cutoff_A and dtype (a sevennet with a pretrained ``base`` takes no size keys).
_MODEL_KEYS = {
    "egnn": {"hidden_features", "n_layers", "n_rbf"},
    "pair": {"n_rbf"},
    "sevennet": {"base", "hidden_features", "n_layers", "n_rbf", "lmax", "features", "freeze_blocks"},
}
_SEVENNET_SIZE = {"hidden_features", "n_layers", "n_rbf", "lmax"}


class ModelConfig(Section):
    """The machine-learned potential: a preset from configs/models/ or spelled out."""

    preset: str | None = None
    architecture: Literal["egnn", "pair", "sevennet"] = "egnn"
    base: str | None = Field(
        default=None, min_length=1, description="sevennet: a pretrained model shipped in the sevenn wheel ('7net-0')"
    )
    cutoff_A: float = Field(default=5.0, gt=0, le=20)
    hidden_features: int | None = Field(
        default=None, ge=1, validate_default=True, description="egnn: default 64; sevennet: channels, default 32"
    )
    n_layers: int | None = Field(
        default=None, ge=1, validate_default=True, description="egnn: default 3; sevennet: interaction blocks, default 3"
    )
    n_rbf: int | None = Field(
        default=None, ge=1, validate_default=True,
        description="radial basis functions (egnn, pair: default 16, the pair potential's n_radial; sevennet: Bessel, 8)",
    )
    lmax: int | None = Field(default=None, ge=0, le=4, description="sevennet: max rotation order (default 2)")
    features: Literal["last", "all"] | None = Field(
        default=None, description="sevennet: scalar features of the last interaction block or of all (default last)"
    )
    freeze_blocks: int | None = Field(
        default=None, ge=0, description="sevennet: freeze the embeddings and the first k interaction blocks"
    )
    dtype: Literal["float32", "float64"] = "float32"
    checkpoint: Path | None = Field(
        default=None, description="a model file to start from instead of bootstrapping (its own hyperparameters win)"
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return merge_preset("models", data)

    @field_validator("base", "hidden_features", "n_layers", "n_rbf", "lmax", "features", "freeze_blocks")
    @classmethod
    def _architecture_keys(cls, value: Any, info: ValidationInfo) -> Any:
        architecture, key = info.data.get("architecture"), str(info.field_name)
        if value is not None and key not in _MODEL_KEYS.get(str(architecture), set()):
            raise ValueError(f"not used by architecture '{architecture}'")
        if value is not None and key in _SEVENNET_SIZE and info.data.get("base") is not None:
            raise ValueError(f"fixed by the pretrained model '{info.data['base']}'")
        if value is None and architecture in ("egnn", "pair") and key == "n_rbf":
            return 16
        if value is None and architecture == "egnn" and key in _EGNN_DEFAULTS:
            return _EGNN_DEFAULTS[key]
        return value

    @property
    def pretrained(self) -> bool:
        """Whether the model starts from pretrained weights (a ``base`` such as SevenNet-0, or a checkpoint file)."""
        return self.base is not None or self.checkpoint is not None

    def hyperparameters(self) -> dict[str, Any]:
        """Keyword arguments for ``alloop.potentials.registry.build_model`` (architecture and checkpoint apart)."""
        keys = ("base", "cutoff_A", "hidden_features", "n_layers", "n_rbf", "lmax", "features", "freeze_blocks", "dtype")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = (base_dir_of(info) / value.expanduser()).resolve()
        if checks_files(info) and not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path


class MDConfig(Section):
    """Molecular dynamics with the current model: replicas run in segments, guarded by stability checks."""

    ensemble: Literal["langevin", "nve"] = "langevin"
    temperature_K: float = Field(default=500.0, gt=0)
    timestep_fs: float = Field(default=0.5, gt=0, le=10)
    friction_per_fs: float = Field(default=0.01, gt=0, le=10, description="Langevin friction (ignored by nve)")
    n_replicas: int = Field(default=4, ge=1)
    segment_steps: int = Field(default=200, ge=1, description="MD steps per segment (one task)")
    record_every: int = Field(default=10, ge=1, description="keep every n-th frame of a segment")
    max_bond_stretch: float = Field(default=1.8, gt=1, description="stop when a bond exceeds this x its start length")
    min_distance_A: float = Field(default=0.5, gt=0, description="stop when two atoms come closer than this")
    temperature_range_K: tuple[float, float] | None = Field(
        default=None, validate_default=True, description="stop outside [low, high]; default [0, 3 x temperature_K]"
    )
    temperature_ladder_K: tuple[float, ...] | None = Field(
        default=None, min_length=1, validate_default=True,
        description="a temperature ladder: replica r runs at ladder[r % len(ladder)] K (hotter replicas cross "
        "barriers sooner); expensive labels still go only to frames inside temperature_K's thermal energy window "
        "(selection.energy_window_sigma); null: every replica at temperature_K",
    )
    restart_from: Literal["start", "last-stable"] = Field(
        default="start",
        description="where a replica stopped by a guard starts its next segment: the input structure, or its last "
        "stable frame (both with fresh velocities)",
    )
    uncertainty_bias_eV: float = Field(
        default=0.0, ge=0, le=100,
        description="uncertainty-driven MD: depth A (eV) of the bias E = -A (1 - exp(-s / scale)) on the smooth "
                    "maximum s of the atoms' Q-residual ratios (alloop.md.bias), pulling replicas towards what the "
                    "model does not know; 0: plain MD")
    uncertainty_bias_scale: float = Field(default=1.0, gt=0, description="the Q ratio s0 at which the bias "
                                                                          "reaches 63 % of its depth")

    @field_validator("record_every")
    @classmethod
    def _record_within_segment(cls, value: int, info: ValidationInfo) -> int:
        steps = info.data.get("segment_steps")
        if steps is not None and value > steps:
            raise ValueError(f"must be <= segment_steps ({steps}) (got {value})")
        return value

    @field_validator("temperature_range_K")
    @classmethod
    def _range(cls, value: tuple[float, float] | None, info: ValidationInfo) -> tuple[float, float] | None:
        target = info.data.get("temperature_K")
        if value is None:
            return None if target is None else (0.0, 3.0 * target)
        low, high = value
        if low < 0:
            raise ValueError(f"low must be >= 0 (got {low:g})")
        if low >= high:
            raise ValueError(f"low must be < high (got [{low:g}, {high:g}])")
        if target is not None and not low < target < high:
            raise ValueError(f"must contain temperature_K ({target:g}) (got [{low:g}, {high:g}])")
        return value


    @field_validator("temperature_ladder_K")
    @classmethod
    def _ladder(cls, value: tuple[float, ...] | None, info: ValidationInfo) -> tuple[float, ...] | None:
        if value is None:
            return None
        bounds = info.data.get("temperature_range_K")
        for temperature in value:
            if temperature <= 0:
                raise ValueError(f"temperatures must be > 0 K (got {temperature:g})")
            if bounds is not None and not bounds[0] < temperature < bounds[1]:
                raise ValueError(f"{temperature:g} K is outside temperature_range_K [{bounds[0]:g}, {bounds[1]:g}], "
                                 "where the temperature guard would stop its replicas")
        return value


class UncertaintyConfig(Section):
    """Q-residual of the model's per-atom latent features (PCA) and the flagging limit."""

    n_components: int = Field(default=5, ge=1, description="PCA components kept")
    per_element: bool = True
    frame_score: Literal["max", "quantile"] = "max"
    score_quantile: float = Field(default=0.9, gt=0, lt=1, description="used when frame_score is 'quantile'")
    limit: Literal["empirical", "empirical-frame", "jackson-mudholkar"] = "empirical"
    alpha: float = Field(default=0.01, gt=0, lt=1, description="false-alarm rate of the limit")
    calibration: Literal["cross-validation", "in-sample"] = Field(
        default="cross-validation",
        description="empirical limits from scores of frames held out of the PCA fit (k-fold by frame), or from the "
        "fitting frames themselves (over-flags new frames when the PCA has few rows)",
    )
    n_folds: int = Field(default=10, ge=2, le=100, description="folds of the cross-validated calibration")


class SelectionConfig(Section):
    """How many flagged frames are labelled per cycle, and how they are spread."""

    NULL_MEANS_NONE: ClassVar[frozenset[str]] = frozenset({"energy_window_sigma"})

    max_cheap_per_cycle: int = Field(default=64, ge=1)
    min_cheap_per_cycle: int = Field(
        default=0, ge=0, description="when fewer frames are flagged, fill up to this many with frames below the "
        "limit, spread by farthest-point sampling (diversity: none: the highest-scoring ones); 0: label only flagged "
        "and unstable frames",
    )
    max_expensive_per_cycle: int = Field(default=16, ge=0)
    min_step_spacing: int = Field(default=20, ge=0, description="MD steps between two selected frames of a replica; "
                                  "must be > md.record_every")
    diversity: Literal["fps", "none"] = Field(
        default="fps",
        description="fps: farthest-point sampling in the model's feature space for the cheap pick and its fill-up, "
        "bias-weighted (B x distance) for the expensive pick; none: score order and top-B",
    )
    energy_window_sigma: float | None = Field(
        default=10.0, ge=0,
        description="expensive labels only for frames whose cheap energy lies within the thermal window above the "
        "lowest cheap energy of their composition (harmonic mean + this many standard deviations at "
        "md.temperature_K); null: no window",
    )

    @field_validator("max_expensive_per_cycle")
    @classmethod
    def _expensive_among_cheap(cls, value: int, info: ValidationInfo) -> int:
        cheap = info.data.get("max_cheap_per_cycle")
        if cheap is not None and value > cheap:
            raise ValueError(
                f"must be <= max_cheap_per_cycle ({cheap}): expensive labels are chosen among cheap-labelled frames"
                f" (got {value})"
            )
        return value


class TrainingConfig(Section):
    """ASTEROID training: stage 1 on expensive, bias-weighted stage 2 on cheap, stage 3 fine-tuning.

    The recipe (alloop.training.trainer): a fixed budget of optimiser steps with warm-up + cosine learning rate,
    an EMA of the weights, MSE (or MAE/Huber) loss; early stopping only as a guard. With ``warm_start`` each
    cycle after the first continues every stage from the previous cycle's model with a shorter budget.
    """

    NULL_MEANS_NONE: ClassVar[frozenset[str]] = frozenset({"ema_decay", "rollback_factor"})

    method: Literal["asteroid", "standard", "asteroid-no-weights", "score-matching", "two-head"] = Field(
        default="asteroid",
        description="two-head: one representation, a cheap and an expensive energy head (representation and cheap "
        "head on the cheap labels with stage-2 settings, then the expensive head alone, with stage-3 settings); the "
        "model `alloop refine` can refine at test time; score-matching is refused in a campaign (its MD frames are "
        "samples of the model's own Boltzmann distribution): use `alloop train --method score-matching`",
    )
    loss: Literal["mse", "mae", "huber"] = "mse"
    energy_weight: float = Field(default=0.5, ge=0, lt=1, description="rho in Eq. 1 (per-atom energy vs force term)")
    learning_rate_pretrain: float = Field(default=1e-2, gt=0, lt=1, description="stages 1 and 2 (peak of the schedule)")
    learning_rate_finetune: float = Field(default=3e-3, gt=0, lt=1, description="stage 3 (peak of the schedule)")
    batch_size: int = Field(default=8, ge=1)
    steps: int | None = Field(default=None, ge=1, description="optimiser steps of stages 1 and 2 (default 3000 "
                              "unless max_epochs is given)")
    finetune_steps: int | None = Field(default=None, ge=1, description="optimiser steps of stage 3 (default steps / 3)")
    max_epochs: int | None = Field(default=None, ge=1, description="a budget in epochs instead of steps (every stage)")
    patience_epochs: int | None = Field(
        default=None, ge=1, description="early-stopping guard on the validation force MAE (default: half the run)"
    )
    ema_decay: float | None = Field(default=0.99, ge=0, lt=1, description="EMA of the weights; null: none")
    rollback_factor: float | None = Field(
        default=2.0, gt=1,
        description="a validation force MAE above this multiple of the best so far puts the best weights back, "
        "resets the optimiser and halves the learning rate (at most 3 times per stage); null: never",
    )
    warm_start: bool = Field(default=True, description="cycles after the first continue from the previous models")
    warm_start_fraction: float = Field(
        default=0.3, gt=0, le=1,
        description="share of the budget of stages 1 and 2 (and score matching) when warm; stage 3 keeps its full budget",
    )
    final_retrain: bool = Field(
        default=True,
        description="the last scheduled cycle (schedule.n_cycles - 1) trains from the campaign's starting point "
        "(scratch, or the pretrained model) with the full budget on every label, instead of a warm start: the short "
        "warm runs steer the next cycle's MD, the last model is the one the campaign delivers",
    )
    final_steps_factor: float = Field(
        default=1.0, ge=1, le=20,
        description="the final retrain's budget of every stage, x steps and finetune_steps (e.g. a short budget "
        "for the bootstrap and warm cycles of a slow pretrained model, the full recipe for the model delivered)",
    )
    warm_start_lr_factor: float = Field(
        default=1.0, gt=0, le=1,
        description="peak learning rate of a warm-started stage, x its learning rate (a model already near its "
        "minimum is kicked out of it by the full peak: measured on SevenNet-0 fine-tuning)",
    )
    validation_fraction: float = Field(default=0.1, gt=0, lt=1)
    gamma_grid: tuple[float, ...] = Field(
        default=(1.0,), min_length=1,
        description="gamma candidates in units of the median bias B; one value fixes gamma, several are searched "
        "with full-length runs on a selection split of the expensive training frames",
    )
    score_matching_vectors: int = Field(default=1, ge=1, le=16, description="sliced score matching projections "
                                        "(unused: score matching is not a campaign method; kept so older files load)")
    outside_molecules: tuple[str, ...] | None = Field(
        default=None, min_length=1,
        description="ase.build.molecule names outside the campaign: forgetting is scored on them against the "
        "original (pretrained) model, and replay frames are drawn from them; default: the small CHO molecules of "
        "alloop.outside made of the campaign's elements, other than its own compositions",
    )
    replay_fraction: float = Field(
        default=0.0, ge=0, lt=1,
        description="share of every training batch drawn from outside molecules labelled by the original model "
        "(forces only; floor(f x batch_size + 1/2) frames, at least 1, at most batch_size - 1); needs pretrained "
        "weights; 0: off. Measured to hurt when the labels are at another level of theory than the pretraining "
        "(docs/training.md)",
    )

    @field_validator("method")
    @classmethod
    def _no_score_matching(cls, value: str) -> str:
        if value == "score-matching":
            raise ValueError(
                "score-matching is not a campaign method: the campaign's MD frames are Boltzmann samples of the model "
                "being trained, not of the reference surface, so they carry no information about it; use asteroid or "
                "standard here, and `alloop train --method score-matching --unlabelled FRAMES` with Boltzmann samples "
                "of a reference surface"
            )
        return value

    @field_validator("max_epochs")
    @classmethod
    def _one_budget(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and (info.data.get("steps") is not None or info.data.get("finetune_steps") is not None):
            raise ValueError("give the budget in steps (steps, finetune_steps) or in max_epochs, not both")
        return value

    @field_validator("patience_epochs")
    @classmethod
    def _patience(cls, value: int | None, info: ValidationInfo) -> int | None:
        epochs = info.data.get("max_epochs")
        if value is not None and epochs is not None and value > epochs:
            raise ValueError(f"must be <= max_epochs ({epochs}) (got {value})")
        return value

    @field_validator("gamma_grid")
    @classmethod
    def _gammas(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(g <= 0 for g in value):
            raise ValueError(f"every gamma must be > 0 (got {list(value)})")
        if len(set(value)) != len(value):
            raise ValueError(f"gammas must be distinct (got {list(value)})")
        return tuple(sorted(value))

    @field_validator("outside_molecules")
    @classmethod
    def _molecules(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from alloop.outside import molecule_elements

        if value is None:
            return None
        for name in value:
            try:
                molecule_elements(name)
            except AlloopError as exc:
                raise ValueError(str(exc)) from None
        if len(set(value)) != len(value):
            raise ValueError(f"molecules must be distinct (got {list(value)})")
        return value

    @field_validator("replay_fraction")
    @classmethod
    def _replay(cls, value: float, info: ValidationInfo) -> float:
        batch = info.data.get("batch_size")
        if value > 0 and batch is not None and batch < 2:
            raise ValueError(f"replay needs batch_size >= 2 (got batch_size {batch})")
        return value

    def stage_steps(self) -> tuple[int | None, int | None]:
        """(steps of stages 1-2, steps of stage 3); None when the budget is in epochs."""
        if self.max_epochs is not None:
            return None, None
        steps = 3000 if self.steps is None else self.steps
        return steps, (max(1, steps // 3) if self.finetune_steps is None else self.finetune_steps)


class BootstrapConfig(Section):
    """The first model's data: perturbed copies of the structures, cheap-labelled (some expensive too)."""

    n_samples: int = Field(default=32, ge=1, description="perturbed structures, all cheap-labelled")
    method: Literal["rattle", "normal-modes"] = "rattle"
    amplitude_A: float | None = Field(
        default=None, gt=0, validate_default=True, description="rattle: Gaussian displacement (default 0.05)"
    )
    temperature_K: float | None = Field(
        default=None, gt=0, description="normal-modes: sampling temperature (default md.temperature_K)"
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
        if value is not None and method != "normal-modes":
            raise ValueError(f"only used by method 'normal-modes' (method is '{method}')")
        if value is None and method == "normal-modes":
            raise ValueError("required when method is 'normal-modes'")
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
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)

    @field_validator("mode")
    @classmethod
    def _asynchronous_needs_periodic(cls, value: str, info: ValidationInfo) -> str:
        if value == "asynchronous" and info.data.get("strategy") == "naive":
            raise ValueError("asynchronous mode overlaps a cycle's training with the next cycle's MD; the naive "
                             "strategy trains once, at the end (use strategy: periodic or mode: synchronous)")
        return value


class FidelitiesConfig(Section):
    """The two levels of theory, resolved (charge and spin come from ``system``)."""

    cheap: Fidelity
    expensive: Fidelity
