"""How a campaign explores: MD with the current model, the uncertainty measure that flags its frames, and the
selection of the frames to label.

Pydantic sections, units in field names. Cross-field checks inside one section
are field validators on the later field (so an error carries that field's key
path); checks across sections live in :mod:`alloop.config.campaign`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from alloop.config.base import Section

#: the default ``selection.min_cheap_per_cycle``, x ``max_expensive_per_cycle`` (the quickstarts: 12 for 6)
MIN_CHEAP_FACTOR = 2


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
    reactions: Literal["events", "stop"] = Field(
        default="events",
        description="a bond that breaks while one of its atoms finds a new partner within bonding distance: "
        "'events' records it (md_events) and the replica goes on, measured against its new bonds; 'stop' stops "
        "the replica once the old bond exceeds max_bond_stretch (the strict behaviour before reactions were events)",
    )
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
        default="last-stable",
        description="where a replica stopped by a guard starts its next segment: its last stable frame (the "
        "measured default: continued MD), or the input structure (both with fresh velocities)",
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
    small_sample_tail: bool = Field(
        default=False,
        description="with fewer held-out values than the conformal rank needs (n < 1/alpha - 1), take the limit "
        "from a log-normal fitted to them instead of their largest value (which flags ~1/(n + 1) of new "
        "in-distribution frames, several times alpha; the tail flags fewer). Off until its effect on a "
        "campaign's accuracy is measured over seeds",
    )
    max_force_error_eV_per_A: float | None = Field(
        default=None, gt=0,
        description="flag a frame when the model's predicted force error bound (its error model: latent distance "
        "calibrated on held-out labelled frames, 90 % coverage) exceeds this many eV/A, instead of the Q-residual "
        "limit at alpha; frames of a model without a calibrated error model fall back to the Q-residual",
    )


class SelectionConfig(Section):
    """How many flagged frames are labelled per cycle, and how they are spread."""

    NULL_MEANS_NONE: ClassVar[frozenset[str]] = frozenset({"energy_window_sigma"})

    max_cheap_per_cycle: int = Field(default=64, ge=1)
    min_cheap_per_cycle: int = Field(
        default=0, ge=0, description="when fewer frames are flagged, fill up to this many with frames below the "
        "limit, spread by farthest-point sampling (diversity: none: the highest-scoring ones); 0: label only flagged "
        "and unstable frames. Default: 2 x max_expensive_per_cycle, at most max_cheap_per_cycle (the quickstarts' "
        "12 for 6), so a cycle that flags nothing still labels frames",
    )
    max_expensive_per_cycle: int = Field(default=16, ge=0)
    min_step_spacing: int = Field(default=20, ge=0, description="MD steps between two selected frames of a replica; "
                                  "must be > md.record_every")
    diversity: Literal["fps", "none"] = Field(
        default="fps",
        description="fps: farthest-point sampling in the model's feature space for the cheap pick and its fill-up, "
        "bias-weighted (B x distance) for the expensive pick; none: score order and top-B",
    )
    expensive_pick: Literal["bias", "coverage", "lcmd", "kmeans++", "committee", "predicted-error"] = Field(
        default="predicted-error",
        description="how the expensive frames are chosen among the cheap-labelled ones: bias (ASTEROID's B x the "
        "distance to frames chosen this cycle) | coverage (farthest point in feature space from every frame "
        "already expensive-labelled; B unused: for a model whose B against the cheap level says nothing, e.g. a "
        "Delta model on GFN-xTB trained with training.method: standard; needs diversity: fps) | lcmd (largest "
        "cluster maximum distance: the expensive-labelled and chosen frames are centres, each pick the farthest "
        "member of the cluster whose squared distances sum to the most; by geometry alone like coverage, but a "
        "dense region outweighs one outlier; needs diversity: fps) | kmeans++ (k-means++ seeding from the "
        "expensive-labelled frames: each pick drawn with probability proportional to its squared distance to the "
        "nearest labelled or chosen frame, from the campaign seed's random stream; by geometry alone, needs "
        "diversity: fps) | committee (the "
        "force deviation of committee_size models trained on the expensive labels with other initialisations and "
        "validation splits, x the distance to frames chosen this cycle: query by committee) | predicted-error (the "
        "model's own predicted force error, from its error model, x the distance to frames chosen this cycle; for "
        "training.method: standard, where B measures the cheap level's error)",
    )
    memory: bool = Field(
        default=False,
        description="the cheap pick remembers every labelled frame: distances in feature space start from the "
        "frames labelled already (under the current model), flagged frames are ranked by score x distance to the "
        "nearest labelled or chosen one, and near-duplicates of a labelled frame (closer than 5 % of the labelled "
        "frames' typical spacing) are never chosen; off: each cycle's pick starts from nothing",
    )
    reference_frames: int | None = Field(
        default=2000, ge=1,
        description="the most labelled frames a pick measures distances from (memory's cheap pick; expensive_pick: "
        "coverage): every frame of this cycle's and the previous cycle's, the rest a sample of the older ones "
        "seeded by the campaign seed and the cycle, so that a long campaign's pick costs the same every cycle; "
        "null: every labelled frame",
    )
    exploration: float = Field(
        default=1.0, ge=0, le=1,
        description="the trade-off between representing the ensemble and exploring it: per cycle, round((1 - "
        "exploration) x the pick's size) of the cheap frames and of the expensive frames are chosen by kernel "
        "herding (greedy MMD in the model's standardised latent descriptors, conditioned on the frames labelled "
        "already) over the cycle's MD frames at md.temperature_K, the rest by the score rules above, whose "
        "distances count the herded frames; 1: the score rules alone (today's selection), 0: herding alone",
    )
    herding_target: Literal["cycle", "campaign"] = Field(
        default="cycle",
        description="the ensemble herding matches: the cycle's MD frames at md.temperature_K, or a bounded "
        "reservoir sample of every such frame of the campaign so far (herding_reservoir_frames), described by the "
        "current model; one cycle's MD is a correlated slice of the ensemble",
    )
    pick_beta: float | None = Field(
        default=None, ge=0,
        description="the expensive pick's randomness (expensive_pick: predicted-error, bias or committee): null "
        "picks the frame of largest score x distance each time; a number beta draws each pick instead, with "
        "probability proportional to (score x distance)^beta among the frames left (0: uniform among "
        "the candidates; large: the arg-max), seeded by the campaign seed and the cycle. A drawn pick follows the "
        "candidates' density more than the arg-max, which seeks their edges; measured at 1 on five seeds: no gain "
        "over the arg-max (docs/benchmarks.md)",
    )
    density_weight: float | None = Field(
        default=None, ge=0,
        description="information density for the expensive pick (expensive_pick: predicted-error, bias or "
        "committee): each candidate's score is multiplied by its density among the cycle's MD frames at "
        "md.temperature_K (mean RBF similarity in the model's standardised latent descriptors, divided by the "
        "densest candidate's) raised to this power, so that the pick leans to where the ensemble is, not only to "
        "where the error is; null: no weighting (0 weights nothing either). Measured at 1 on five seeds: no gain "
        "(docs/benchmarks.md), so the default stays null",
    )
    herding_reservoir_frames: int = Field(default=1000, ge=1, description="the most frames of herding_target: "
                                          "campaign's reservoir")
    committee_size: int = Field(default=3, ge=2, le=8, description="models in the committee of expensive_pick: "
                                "committee (the campaign's model and committee_size - 1 more, trained every cycle "
                                "but the last)")
    energy_window_sigma: float | None = Field(
        default=10.0, ge=0,
        description="expensive labels only for frames whose cheap energy lies within the thermal window above the "
        "lowest cheap energy of their composition (harmonic mean + this many standard deviations at "
        "md.temperature_K); null: no window",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_minimum(cls, data: Any) -> Any:
        """``min_cheap_per_cycle`` not given: 2 x ``max_expensive_per_cycle``, at most ``max_cheap_per_cycle``."""
        if not isinstance(data, dict) or data.get("min_cheap_per_cycle") is not None:
            return data
        fields = cls.model_fields
        expensive, cheap = (fields[k].default if data.get(k) is None else data[k]
                            for k in ("max_expensive_per_cycle", "max_cheap_per_cycle"))
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (expensive, cheap)):
            return data  # reported by the fields themselves
        return {**data, "min_cheap_per_cycle": min(MIN_CHEAP_FACTOR * expensive, cheap)}

    @model_validator(mode="after")
    def _geometry_picks_need_descriptors(self) -> SelectionConfig:
        rule = self.expensive_pick
        if rule in ("coverage", "lcmd", "kmeans++") and self.diversity == "none":
            raise ValueError(f"expensive_pick: {rule} needs diversity: fps (it measures distances in feature space)")
        if rule in ("coverage", "lcmd", "kmeans++") and self.density_weight is not None:
            raise ValueError(f"density_weight weights the score of a score rule; expensive_pick: {rule} has none "
                             "(density_weight: null)")
        if rule in ("coverage", "lcmd", "kmeans++") and self.pick_beta is not None:
            how = "draws by its own law (p ~ distance^2)" if rule == "kmeans++" else "takes the farthest frame"
            raise ValueError(f"pick_beta draws the picks of a score rule; expensive_pick: {rule} {how} and has "
                             "none (pick_beta: null)")
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
