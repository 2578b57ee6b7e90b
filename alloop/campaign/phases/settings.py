"""The validated campaign config turned, once, into the typed settings each part of the loop runs with.

:func:`campaign_settings` is the one place that reads the ``md``, ``uncertainty``,
``selection``, ``training``, ``schedule`` and ``execution`` sections for the loop:
the driver calls it once and hands the result to the phases in their
:class:`~alloop.campaign.phases.context.PhaseContext`. What it builds: the MD segment's
integrator (:class:`~alloop.md.segment.MDSettings`) and guard thresholds, the
frame selection, the label budget, the stopping rules, the Q-residual settings
and the training plan that gives each cycle's ASTEROID settings (through
:func:`alloop.training.recipe.asteroid_settings`, the recipe shared with ``alloop train``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from alloop.campaign.execution.md_task import GuardSettings
from alloop.campaign.phases.surface_md import SurfaceMD
from alloop.config import BootstrapConfig, CampaignConfig, TrainingConfig
from alloop.evaluation.auto import AutoSet
from alloop.fidelity import Fidelity, load_fidelity
from alloop.md.segment import MDSettings
from alloop.md.uncertainty_bias import BiasSettings
from alloop.training.recipe import asteroid_settings
from alloop.training.stages import AsteroidSettings
from alloop.uncertainty.qresidual import QResidualSettings


@dataclass(frozen=True)
class ExploreSettings:
    """The explore phase: replicas, segment length and recording, integrator, guards, restarts after a stop."""

    n_replicas: int
    segment_steps: int
    record_every: int
    md: MDSettings
    guards: GuardSettings
    restart_from: str  # "start" or "last-stable"
    bias: BiasSettings = BiasSettings()  # uncertainty-driven MD (off by default)
    ladder_K: tuple[float, ...] = ()  # a temperature ladder (rank k at ladder_K[k % len]); empty: temperature_K

    @property
    def temperature_K(self) -> float:
        """The target temperature (of the thermal energy window, the bootstrap, score matching)."""
        return self.md.temperature_K

    def replica_temperature(self, rank: int) -> float:
        """The bath temperature (K) of a replica of ``rank`` among its molecule's replicas (with one molecule, its
        index; :meth:`PhaseContext.replica_temperature` maps a replica to its rank)."""
        return self.ladder_K[rank % len(self.ladder_K)] if self.ladder_K else self.md.temperature_K

    def md_at(self, temperature_K: float) -> MDSettings:
        """The integrator settings at a replica's bath temperature (the campaign's, at that temperature)."""
        return self.md if temperature_K == self.md.temperature_K else replace(self.md, temperature_K=temperature_K)


@dataclass(frozen=True)
class SelectionSettings:
    """Which frames get labels: per-cycle caps, the cheap pick's spacing and diversity, the expensive pick's window."""

    max_cheap_per_cycle: int
    max_expensive_per_cycle: int
    min_cheap_per_cycle: int
    min_step_spacing: int
    diversity: str  # "fps" or "none"
    energy_window_sigma: float | None  # None: no thermal energy window
    temperature_K: float  # of the thermal energy window
    expensive_pick: str = "bias"  # "bias" (B x distance), "coverage" (distance to the labelled frames alone) or
    # "committee" (the committee's force deviation x distance)
    committee_size: int = 1  # models whose force deviation ranks the expensive pick (1: no committee)
    memory: bool = False  # selection.memory: the cheap pick starts from the labelled frames' descriptors
    reference_frames: int | None = None  # selection.reference_frames: at most this many of them (None: all)
    exploration: float = 1.0  # selection.exploration: 1 - the share of each pick chosen by kernel herding
    herding_target: str = "cycle"  # selection.herding_target: "cycle" or "campaign" (a reservoir of MD frames)
    herding_reservoir_frames: int = 1000  # selection.herding_reservoir_frames
    pick_beta: float | None = None  # selection.pick_beta: None the arg-max, else draws ~ (score x distance)^beta
    density_weight: float | None = None  # selection.density_weight: the score x (density in the cycle's MD)^weight


@dataclass(frozen=True)
class LabelBudget:
    """Limits over the whole campaign: labels per fidelity (bootstrap included) and labelling CPU seconds, in all
    and per fidelity."""

    max_cheap_per_cycle: int
    max_expensive_per_cycle: int
    max_cheap: int | None
    max_expensive: int | None
    budget_cpu_seconds: float | None
    cheap_cpu_seconds: float | None = None  # schedule.budget_cpu_hours.cheap x 3600
    expensive_cpu_seconds: float | None = None  # schedule.budget_cpu_hours.expensive x 3600


@dataclass(frozen=True)
class StopRules:
    """When the campaign stops (whichever comes first; the label budget aside)."""

    n_cycles: int
    target_val_force_mae_eV_per_A: float | None
    min_flag_rate: float | None
    target_predicted_force_error_eV_per_A: float | None = None  # of the cycle's MD frames, mean
    stop_when_nothing_new: bool = False  # a cycle's MD flagged no frame and no guard stopped a replica
    deadline: datetime | None = None  # no new work after this time (naive: local time)
    max_hours: float | None = None  # no new work this long after the run (or resume) started


@dataclass(frozen=True)
class TrainingPlan:
    """What every training task of the campaign shares; :meth:`stages` gives one cycle's ASTEROID settings."""

    method: str
    architecture: str
    hyperparameters: dict[str, Any]  # keyword arguments of build_model, the campaign seed included
    from_checkpoint: bool  # the first model is a checkpoint file's (model.checkpoint), not a bootstrap
    uncertainty: QResidualSettings  # of the Q-residual model fitted after training
    threads: int  # torch threads of the training task (the worker's own)
    warm_start: bool
    final_retrain: bool  # the last scheduled cycle trains afresh with the full budget
    replay: bool  # training.replay_fraction > 0
    baseline: dict[str, Any] | None  # model.baseline's fidelity (Delta learning), as a checkpoint records it
    section: TrainingConfig
    seed: int
    temperature_K: float  # of score matching
    committee_size: int = 1  # models in the expensive pick's committee (selection.expensive_pick: committee; 1: none)
    final_refit: bool = False  # training.final_refit: the final retrain, once validated, again on every label
    calibration_folds: int = 1  # training.calibration_folds: folds of held-out frames calibrating the refit
    error_exponent: float | None = None  # training.error_exponent: the predicted error's power of the distance
    #: role -> the most labels of that role a warm-started cycle trains on (training.warm_sample_*; None: all)
    warm_sample: dict[str, int | None] = field(default_factory=dict)

    def stages(self, cycle: int, warm: bool, final: bool = False) -> AsteroidSettings:
        """Cycle ``cycle``'s stage settings: seeded per cycle (initialisation, batch order), the validation splits by
        the campaign seed alone (a frame keeps its side in every cycle); shortened when ``warm``, scaled by
        ``training.final_steps_factor`` when ``final`` (the final retrain)."""
        return asteroid_settings(self.section, self.seed + max(cycle, 0), self.threads, self.temperature_K, warm=warm,
                                 split_seed=self.seed, final=final)


@dataclass(frozen=True)
class BootstrapMD:
    """Bootstrap samples from MD: the GFN-xTB surface and how the MD runs."""

    surface: Fidelity
    md: SurfaceMD


@dataclass(frozen=True)
class CampaignSettings:
    """Everything the loop reads of its config, typed per part."""

    seed: int
    strategy: str  # "periodic" or "naive"
    asynchronous: bool  # schedule.mode: a cycle's training overlaps the next cycle's MD and labels
    threads_per_worker: int  # per task (execution.threads_per_worker)
    tasks_per_slot: int  # labelling tasks in flight per worker slot
    label_batch_seconds: float  # labels shorter than this share tasks of about this length
    max_task_retries: int
    bootstrap: BootstrapConfig
    explore: ExploreSettings
    selection: SelectionSettings
    budget: LabelBudget
    stop: StopRules
    training: TrainingPlan
    bootstrap_md: BootstrapMD | None = None  # schedule.bootstrap.method: md
    evaluation_auto: AutoSet | None = None  # evaluation.auto: the test set the campaign makes
    max_force_error_eV_per_A: float | None = None  # uncertainty.max_force_error_eV_per_A: flag by the predicted error

    @property
    def periodic(self) -> bool:
        """Replicas continue and the model retrains every cycle (else: naive, fresh replicas, one training)."""
        return self.strategy == "periodic"


def uncertainty_settings(cfg: CampaignConfig) -> QResidualSettings:
    """The Q-residual settings of the ``uncertainty`` section."""
    u = cfg.uncertainty
    return QResidualSettings(n_components=u.n_components, per_element=u.per_element, alpha=u.alpha,
                             limit=u.limit.replace("-", "_"), calibration=u.calibration.replace("-", "_"),
                             n_folds=u.n_folds, frame_score=u.frame_score, score_quantile=u.score_quantile,
                             small_sample_tail=u.small_sample_tail)


def explore_settings(cfg: CampaignConfig) -> ExploreSettings:
    """The ``md`` section as the explore phase's settings."""
    md = cfg.md
    assert md.temperature_range_K is not None  # MDConfig's default: [0, 3 x temperature_K]
    low, high = md.temperature_range_K
    integrator: Literal["langevin", "verlet"] = "langevin" if md.ensemble == "langevin" else "verlet"
    return ExploreSettings(
        n_replicas=md.n_replicas, segment_steps=md.segment_steps, record_every=md.record_every,
        md=MDSettings(temperature_K=md.temperature_K, timestep_fs=md.timestep_fs, friction_per_fs=md.friction_per_fs,
                      integrator=integrator),
        guards=GuardSettings(max_bond_stretch=md.max_bond_stretch, min_distance_A=md.min_distance_A,
                             min_temperature_K=low, max_temperature_K=high, reactions=md.reactions),
        restart_from=md.restart_from,
        bias=BiasSettings(strength_eV=md.uncertainty_bias_eV, scale=md.uncertainty_bias_scale),
        ladder_K=tuple(md.temperature_ladder_K or ()),
    )


def training_plan(cfg: CampaignConfig) -> TrainingPlan:
    """The ``training`` and ``model`` sections as what every training task shares."""
    return TrainingPlan(
        method=cfg.training.method, architecture=cfg.model.architecture,
        hyperparameters={**cfg.model.hyperparameters(), "seed": cfg.seed},
        from_checkpoint=cfg.model.checkpoint is not None, uncertainty=uncertainty_settings(cfg),
        threads=cfg.training.threads or cfg.execution.threads_per_worker, warm_start=cfg.training.warm_start,
        final_retrain=cfg.training.final_retrain, final_refit=bool(cfg.training.final_refit),
        calibration_folds=cfg.training.calibration_folds, error_exponent=cfg.training.error_exponent,
        replay=cfg.training.replay_fraction > 0,
        baseline=None if cfg.model.baseline is None else load_fidelity(
            cfg.model.baseline, charge=cfg.system.charge, spin=cfg.system.spin).model_dump(mode="json"),
        section=cfg.training, seed=cfg.seed,
        temperature_K=cfg.md.temperature_K,
        committee_size=cfg.selection.committee_size if cfg.selection.expensive_pick == "committee" else 1,
        warm_sample={"cheap": cfg.training.warm_sample_cheap, "expensive": cfg.training.warm_sample_expensive},
    )


def campaign_settings(cfg: CampaignConfig) -> CampaignSettings:
    """Every part's settings, from the validated config."""
    s, sel, limits = cfg.schedule, cfg.selection, cfg.schedule.max_labels
    return CampaignSettings(
        seed=cfg.seed, strategy=s.strategy, asynchronous=s.mode == "asynchronous",
        threads_per_worker=cfg.execution.threads_per_worker,
        tasks_per_slot=cfg.execution.tasks_per_slot, max_task_retries=cfg.execution.max_task_retries,
        label_batch_seconds=cfg.execution.label_batch_seconds, bootstrap=s.bootstrap, explore=explore_settings(cfg),
        selection=SelectionSettings(
            max_cheap_per_cycle=sel.max_cheap_per_cycle, max_expensive_per_cycle=sel.max_expensive_per_cycle,
            min_cheap_per_cycle=sel.min_cheap_per_cycle, min_step_spacing=sel.min_step_spacing,
            diversity=sel.diversity, energy_window_sigma=sel.energy_window_sigma, temperature_K=cfg.md.temperature_K,
            expensive_pick=sel.expensive_pick,
            committee_size=sel.committee_size if sel.expensive_pick == "committee" else 1, memory=sel.memory,
            reference_frames=sel.reference_frames, exploration=sel.exploration,
            herding_target=sel.herding_target, herding_reservoir_frames=sel.herding_reservoir_frames,
            pick_beta=sel.pick_beta, density_weight=sel.density_weight,
        ),
        budget=LabelBudget(max_cheap_per_cycle=sel.max_cheap_per_cycle,
                           max_expensive_per_cycle=sel.max_expensive_per_cycle, max_cheap=limits.cheap,
                           max_expensive=limits.expensive, budget_cpu_seconds=s.budget_cpu_seconds,
                           cheap_cpu_seconds=_seconds(s.budget_cpu_hours.cheap),
                           expensive_cpu_seconds=_seconds(s.budget_cpu_hours.expensive)),
        stop=StopRules(n_cycles=s.n_cycles, target_val_force_mae_eV_per_A=s.target_val_force_mae_eV_per_A,
                       min_flag_rate=s.min_flag_rate,
                       target_predicted_force_error_eV_per_A=s.target_predicted_force_error_eV_per_A,
                       stop_when_nothing_new=s.stop_when_nothing_new, deadline=s.deadline, max_hours=s.max_hours),
        training=training_plan(cfg),
        bootstrap_md=bootstrap_md(cfg),
        evaluation_auto=evaluation_auto(cfg),
        max_force_error_eV_per_A=cfg.uncertainty.max_force_error_eV_per_A,
    )


def _seconds(hours: float | None) -> float | None:
    return None if hours is None else hours * 3600.0


def bootstrap_md(cfg: CampaignConfig) -> BootstrapMD | None:
    """The surface and integrator of ``schedule.bootstrap.method: md`` (None for the other methods)."""
    surface = cfg.bootstrap_surface()
    if surface is None:
        return None
    b, md = cfg.schedule.bootstrap, cfg.md
    assert b.temperature_K is not None and b.equilibration_fs is not None and b.spacing_fs is not None
    return BootstrapMD(surface, SurfaceMD(temperature_K=b.temperature_K, timestep_fs=md.timestep_fs,
                                          friction_per_fs=md.friction_per_fs, equilibration_fs=b.equilibration_fs,
                                          spacing_fs=b.spacing_fs))


def evaluation_auto(cfg: CampaignConfig) -> AutoSet | None:
    """How ``evaluation.auto``'s set is made (None without it): its surface, ``md``'s temperature and integrator."""
    ev, surface = cfg.evaluation, cfg.evaluation_surface()
    if ev is None or ev.auto is None or surface is None:
        return None
    assert ev.equilibration_fs is not None and ev.spacing_fs is not None  # EvaluationConfig's defaults with auto
    md = cfg.md
    return AutoSet(n_frames=ev.auto, surface=surface, temperature_K=md.temperature_K, timestep_fs=md.timestep_fs,
                   friction_per_fs=md.friction_per_fs, equilibration_fs=ev.equilibration_fs, spacing_fs=ev.spacing_fs,
                   seed=cfg.seed)
