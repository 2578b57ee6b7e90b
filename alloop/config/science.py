"""The science of a campaign: what is simulated and how it is learnt (pydantic sections, units in field names).

The system and its levels of theory, the model, MD, the uncertainty measure,
frame selection, training and the schedule (cycles, bootstrap, stopping rules).
Cross-field checks inside one section are field validators on the later field
(so an error carries that field's key path); checks across sections live in
:mod:`alloop.config.campaign`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from alloop.config.base import Section, base_dir_of, checks_files, merge_preset
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
    baseline: str | None = Field(
        default=None, min_length=1,
        description="Delta learning: a GFN-xTB fidelity preset (gfn1-xtb, gfn2-xtb); the network learns reference "
        "minus it on every label and the model adds it back in MD, scoring and export (alloop.potentials.baseline)",
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

    @field_validator("baseline")
    @classmethod
    def _xtb_baseline(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _gfn_xtb_preset(value, "a baseline must be a GFN-xTB fidelity", "too slow to run at every MD step")

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
                    "maximum s of the atoms' Q-residual ratios (alloop.md.uncertainty_bias), pulling replicas towards "
                    "what the model does not know; 0: plain MD")
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
    expensive_pick: Literal["bias", "coverage", "committee"] = Field(
        default="bias",
        description="how the expensive frames are chosen among the cheap-labelled ones: bias (ASTEROID's B x the "
        "distance to frames chosen this cycle) | coverage (farthest point in feature space from every frame "
        "already expensive-labelled; B unused: for a model whose B against the cheap level says nothing, e.g. a "
        "Delta model on GFN-xTB trained with training.method: standard; needs diversity: fps) | committee (the "
        "force deviation of committee_size models trained on the expensive labels with other initialisations and "
        "validation splits, x the distance to frames chosen this cycle: query by committee)",
    )
    committee_size: int = Field(default=3, ge=2, le=8, description="models in the committee of expensive_pick: "
                                "committee (the campaign's model and committee_size - 1 more, trained every cycle "
                                "but the last)")
    energy_window_sigma: float | None = Field(
        default=10.0, ge=0,
        description="expensive labels only for frames whose cheap energy lies within the thermal window above the "
        "lowest cheap energy of their composition (harmonic mean + this many standard deviations at "
        "md.temperature_K); null: no window",
    )

    @model_validator(mode="after")
    def _coverage_needs_descriptors(self) -> SelectionConfig:
        if self.expensive_pick == "coverage" and self.diversity == "none":
            raise ValueError("expensive_pick: coverage needs diversity: fps (it measures distances in feature space)")
        return self

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


def _gfn_xtb_preset(value: str, what: str, why: str) -> str:
    """``value`` if it names a GFN-xTB fidelity preset, else ValueError "<what> (gfn1-xtb, gfn2-xtb), not ... (<why>)"
    (an unknown preset: the FidelityError listing the known ones)."""
    from alloop.fidelity import load_fidelity

    family = load_fidelity(value).family
    if family != "xtb":
        raise ValueError(f"{what} (gfn1-xtb, gfn2-xtb), not the {family} fidelity '{value}' ({why})")
    return value


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
        return _gfn_xtb_preset(value, "bootstrap MD runs on a GFN-xTB surface", "too slow per MD step")

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
