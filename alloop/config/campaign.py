"""The whole campaign config: its science and execution sections, defaults across sections, cross checks.

:class:`CampaignConfig` is frozen; ``from_dict`` validates a mapping (every mistake
one ``<key path>: <reason>`` line of a :class:`~alloop.errors.ConfigError`),
``to_dict`` gives the resolved, JSON-serialisable form stored in the campaign store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from alloop.config.base import base_dir_of, checks_files, drop_nulls
from alloop.config.derived import (
    DEFAULT_BASELINE,
    DEFAULT_FIDELITIES,
    DEFAULT_MODEL,
    apply_derived,
    derived_defaults,
)
from alloop.config.evaluation import EvaluationConfig, check_evaluation_elements
from alloop.config.execution import ExecutionConfig, StoreConfig
from alloop.config.exploration import MDConfig, SelectionConfig, UncertaintyConfig
from alloop.config.messages import format_validation_error
from alloop.config.schedule import ScheduleConfig
from alloop.config.system import FidelitiesConfig, ModelConfig, SystemConfig
from alloop.config.training import TrainingConfig
from alloop.errors import AlloopError, ConfigError, FidelityError
from alloop.fidelity import XTB_METHODS, Fidelity, load_fidelity
from alloop.presets import load_preset
from alloop.system.conformers import conformer_starts
from alloop.system.molecules import Molecules
from alloop.system.structures import check_structures, load_structures
from alloop.training.methods import method_spec

ROLES = ("cheap", "expensive")


class CampaignConfig(BaseModel):
    """One campaign: science sections, execution settings, store location, seed and name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    seed: int = Field(default=0, ge=0)
    system: SystemConfig
    fidelities: FidelitiesConfig
    model: ModelConfig = Field(default_factory=lambda: ModelConfig.model_validate(DEFAULT_MODEL))
    md: MDConfig = Field(default_factory=MDConfig)
    uncertainty: UncertaintyConfig = Field(default_factory=UncertaintyConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    evaluation: EvaluationConfig | None = None
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    store: StoreConfig

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        base_dir: str | Path | None = None,
        *,
        stem: str | None = None,
        check_files: bool = True,
    ) -> CampaignConfig:
        """Validate a mapping; relative paths resolve against ``base_dir`` (default: the working folder).

        ``stem`` (the campaign file's name without suffix) is the default ``name`` and names the
        default ``store.run_dir`` (``<base_dir>/<stem>.run``). ``check_files=False`` skips reading
        the structures and checking that files exist (re-reading a stored config whose inputs moved).
        """
        if not isinstance(data, dict):
            raise ConfigError(f"campaign: must be a mapping of sections (got {type(data).__name__})")
        context = {"base_dir": Path(base_dir or Path.cwd()).resolve(), "stem": stem, "check_files": check_files}
        try:
            return cls.model_validate(data, context=context)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, cls)) from None

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as JSON-serialisable data (absolute paths, presets expanded)."""
        return self.model_dump(mode="json")

    # ---- resolved views -----------------------------------------------------------------------
    @property
    def cheap_fidelity(self) -> Fidelity:
        return self.fidelities.cheap

    @property
    def expensive_fidelity(self) -> Fidelity:
        return self.fidelities.expensive

    def fidelity(self, role: str) -> Fidelity:
        """The fidelity of a role, ``"cheap"`` or ``"expensive"``."""
        if role not in ROLES:
            raise ConfigError(f"fidelity role must be 'cheap' or 'expensive' (got {role!r})")
        return getattr(self.fidelities, role)

    def load_structures(self) -> list[Atoms]:
        """The starting structures (fresh copies, no calculators): each input molecule followed by its rotamers
        when ``system.conformers`` > 1."""
        structures = load_structures(self.system.structures)
        if self.system.conformers == 1:
            return structures
        return [c for atoms in structures
                for c in (conformer_starts(atoms, self.system.conformers) if not atoms.pbc.any() else [atoms])]

    @property
    def run_dir(self) -> Path:
        return self.store.run_dir

    def bootstrap_surface(self) -> Fidelity | None:
        """The GFN-xTB surface of ``schedule.bootstrap.method: md`` (its ``level``, else ``model.baseline``, else
        the cheap fidelity when it is GFN-xTB), with the system's charge and spin; None for the other methods."""
        boot = self.schedule.bootstrap
        if boot.method != "md":
            return None
        level = boot.level or self.model.baseline
        if level is not None:
            return load_fidelity(level, charge=self.system.charge, spin=self.system.spin)
        if self.cheap_fidelity.family == "xtb":
            return self.cheap_fidelity
        raise ConfigError("schedule.bootstrap.method: md runs GFN-xTB MD; name its surface in schedule.bootstrap.level "
                          "(gfn1-xtb, gfn2-xtb), or set model.baseline or a GFN-xTB fidelities.cheap")

    def evaluation_surface(self) -> Fidelity | None:
        """The GFN-xTB surface of ``evaluation.auto``'s MD (its ``level``, else the cheap fidelity when it is GFN-xTB,
        else ``model.baseline``, else ``gfn2-xtb``), with the system's charge and spin; None without ``auto``."""
        ev = self.evaluation
        if ev is None or ev.auto is None:
            return None
        if ev.level is None and self.cheap_fidelity.family == "xtb":
            return self.cheap_fidelity
        level = ev.level or self.model.baseline or DEFAULT_BASELINE
        return load_fidelity(level, charge=self.system.charge, spin=self.system.spin)

    # ---- validation across sections -----------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        """Defaults that depend on other sections or on the file: name, run_dir, fidelities, bootstrap, test set."""
        if not isinstance(data, dict):
            return data
        data = drop_nulls(data, keep=frozenset({"evaluation"}))  # a null evaluation: no set (not the default one)
        if data.get("evaluation") is False:
            data["evaluation"] = None
        data = apply_derived(data, derived_defaults(data, base_dir_of(info), read_structures=checks_files(info)))
        stem = (info.context or {}).get("stem")
        data.setdefault("name", stem or "campaign")
        system = data.get("system") if isinstance(data.get("system"), dict) else {}
        charge, spin = (_int_or_none(system.get(k, 0)) for k in ("charge", "spin"))
        spin = spin if spin is None or spin >= 0 else None  # a bad spin is reported once, at system.spin
        fidelities = drop_nulls(data.get("fidelities", {}))
        if isinstance(fidelities, dict):
            data["fidelities"] = {
                **fidelities,
                **{r: _fidelity_mapping(r, fidelities.get(r, DEFAULT_FIDELITIES[r]), charge, spin) for r in ROLES},
            }
        store = drop_nulls(data.get("store", {}))
        if isinstance(store, dict) and store.get("run_dir") is None:
            run_name = stem or (data["name"] if isinstance(data["name"], str) else "campaign")
            data["store"] = {**store, "run_dir": str(base_dir_of(info) / f"{run_name}.run")}
        data = _default_bootstrap_temperature(data)
        return data

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> CampaignConfig:
        self._check_label_budget()
        self._check_replay()
        self._check_cheap_is_not_the_baseline()
        self._check_spacing()
        self._check_closed_shell_model()
        self.bootstrap_surface()
        if not checks_files(info):
            return self
        structures = self.load_structures()
        check_structures(
            structures, charge=self.system.charge, spin=self.system.spin, min_distance=self.md.min_distance_A
        )
        self._check_molecules(structures)
        compositions = {tuple(sorted(int(z) for z in a.numbers)) for a in structures}
        for role in ROLES:
            try:
                self.fidelity(role).check_periodicity(structures[0].pbc, structures[0].cell.array)
                for numbers in sorted(compositions):
                    self.fidelity(role).check_structure(numbers)
            except FidelityError as exc:
                raise ConfigError(f"fidelities.{role}: {exc}") from None
        if structures[0].pbc.any():
            self._check_periodic()
        if self.evaluation is not None:
            check_evaluation_elements(self.evaluation, sorted({int(z) for c in compositions for z in c}))
        self._check_evaluation_surface(compositions)
        self._check_outside(compositions)
        return self

    def _check_molecules(self, structures: list[Atoms]) -> None:
        """Every molecule of the campaign gets a replica (replicas are dealt over the molecules first)."""
        molecules = Molecules.of(structures)
        if self.md.n_replicas < len(molecules):
            raise ConfigError(f"md.n_replicas: {self.md.n_replicas} replicas cannot cover the {len(molecules)} "
                              f"molecules of system.structures ({', '.join(molecules.names)}); use at least "
                              f"{len(molecules)}")

    def _check_evaluation_surface(self, compositions: set[tuple[int, ...]]) -> None:
        """``evaluation.auto``'s GFN-xTB surface parametrises every element of the structures."""
        surface = self.evaluation_surface()
        if surface is None:
            return
        try:
            for numbers in sorted(compositions):
                surface.check_structure(numbers)
        except FidelityError as exc:
            raise ConfigError(f"evaluation.auto: its MD surface: {exc}; give a labelled file (evaluation.structures)"
                              ) from None

    def _check_periodic(self) -> None:
        """What a campaign in a periodic cell cannot do (yet), each refused with its key."""
        if self.schedule.bootstrap.method == "normal-modes":
            raise ConfigError("schedule.bootstrap.method: normal-modes needs a Hessian of the input, which alloop "
                              "computes for molecules only; use rattle for a periodic cell")

    def _check_outside(self, compositions: set[tuple[int, ...]]) -> None:
        """Given outside molecules are made of the campaign's elements and are not its own compositions; replay
        needs at least one."""
        from alloop.system.outside import outside_molecules

        try:
            found = outside_molecules({z for c in compositions for z in c}, self.training.outside_molecules, compositions)
        except AlloopError as exc:
            raise ConfigError(f"training.outside_molecules: {exc}") from None
        if self.training.replay_fraction > 0 and not found:
            raise ConfigError("training.replay_fraction: no outside molecule is made of the campaign's elements; "
                              "name some in training.outside_molecules")

    def _check_replay(self) -> None:
        if self.training.replay_fraction > 0 and self.model.baseline is not None:
            raise ConfigError("training.replay_fraction: replay is not offered with model.baseline (the original "
                              "model's pseudo-labels have no baseline to subtract)")
        if self.training.replay_fraction > 0 and not self.model.pretrained:
            raise ConfigError(f"training.replay_fraction: {self.training.replay_fraction:g} needs a model that starts "
                              "from pretrained weights (model.base, e.g. model: sevennet-0, or model.checkpoint)")

    def _check_cheap_is_not_the_baseline(self) -> None:
        """A method that trains on cheap labels minus the baseline needs a cheap level other than the baseline."""
        method, baseline = self.training.method, self.model.baseline
        if baseline is None or "cheap" not in method_spec(method).labels:
            return
        base, cheap = load_fidelity(baseline), self.cheap_fidelity
        if (cheap.family, cheap.method) == (base.family, base.method):
            raise ConfigError(f"training.method: {method} trains on the cheap labels minus the baseline, and "
                              f"fidelities.cheap ({cheap.name}) is the baseline itself (model.baseline: {baseline}): "
                              "those targets are zero on every frame; use training.method: standard, another cheap "
                              "level, or model.baseline: null")

    def _check_closed_shell_model(self) -> None:
        """alloop runs SO3LR on neutral closed-shell structures only (its charge and spin inputs are 0)."""
        if self.model.architecture == "so3lr" and (self.system.charge, self.system.spin) != (0, 0):
            raise ConfigError(f"system.charge: model 'so3lr' runs neutral closed-shell systems only in alloop (charge "
                              f"0, spin 0), got charge {self.system.charge} and spin {self.system.spin}")

    def _check_spacing(self) -> None:
        spacing, every = self.selection.min_step_spacing, self.md.record_every
        if spacing <= every:
            raise ConfigError(f"selection.min_step_spacing: must be > md.record_every ({every}), or two consecutive "
                              f"recorded frames of a replica can both be selected (got {spacing})")

    def _check_label_budget(self) -> None:
        boot = self.schedule.bootstrap  # every campaign bootstraps (from model.checkpoint's weights when given)
        limits = self.schedule.max_labels
        for role, needed in (("cheap", boot.n_samples), ("expensive", boot.n_expensive)):
            cap = getattr(limits, role)
            if cap is not None and cap < needed:
                field = "n_samples" if role == "cheap" else "n_expensive"
                raise ConfigError(
                    f"schedule.max_labels.{role}: {cap} is fewer than the bootstrap alone needs"
                    f" (schedule.bootstrap.{field} = {needed})"
                )
        if boot.n_expensive == 0 and self.selection.max_expensive_per_cycle == 0:
            raise ConfigError(
                "selection.max_expensive_per_cycle: 0, and the bootstrap gives no expensive labels either;"
                " every training method needs expensive labels"
            )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _fidelity_mapping(role: str, spec: Any, charge: int | None, spin: int | None) -> Any:
    """A fidelity spec (preset name or mapping, maybe with ``preset``) as a mapping with the system's charge/spin."""
    if isinstance(spec, str):
        spec = {"preset": spec}
    if not isinstance(spec, dict):
        return spec
    data = dict(spec)
    preset = data.pop("preset", None)
    if preset is not None:
        try:
            base = dict(load_preset("fidelities", str(preset)))
        except ConfigError as exc:
            raise ConfigError(f"fidelities.{role}: {exc}") from None
        base.setdefault("name", str(preset))
        data = {**base, **data}
    if "name" not in data and isinstance(data.get("method"), str) and isinstance(data.get("basis"), str):
        data["name"] = f"{data['method']}-{data['basis']}".lower()
    elif "name" not in data and isinstance(data.get("method"), str) and data["method"].strip().lower() in XTB_METHODS:
        data["name"] = data["method"].strip().lower()
    for key, value in (("charge", charge), ("spin", spin)):
        if value is None:
            continue
        if key in data and data[key] != value:
            raise ConfigError(f"fidelities.{role}.{key}: set by system.{key} ({value}); remove it here (got {data[key]})")
        data[key] = value
    return data


def _default_bootstrap_temperature(data: dict[str, Any]) -> dict[str, Any]:
    """Normal-mode and MD bootstrap samples default to the MD temperature."""
    schedule = data.get("schedule")
    boot = schedule.get("bootstrap") if isinstance(schedule, dict) else None
    if not isinstance(schedule, dict) or not isinstance(boot, dict) or boot.get("method") not in ("normal-modes", "md") \
            or boot.get("temperature_K") is not None:
        return data
    md = data.get("md")
    if not isinstance(md, dict):
        md = {}
    temperature = md.get("temperature_K", MDConfig.model_fields["temperature_K"].default)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        # an invalid md.temperature_K is reported on its own; do not repeat it as a bootstrap error
        temperature = MDConfig.model_fields["temperature_K"].default
    return {**data, "schedule": {**schedule, "bootstrap": {**boot, "temperature_K": temperature}}}

