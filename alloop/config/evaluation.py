"""A campaign's fixed evaluation set: labelled frames every model the campaign trains is scored on, from a file or
made by the campaign (``evaluation: {auto: N}``).

The campaign file's optional section ``evaluation: {structures: FILE.extxyz,
energy_key: energy, forces_key: forces}`` names an extxyz file (relative to the
campaign file) of frames labelled at the campaign's **expensive** fidelity
(the model predicts that fidelity's absolute energies). ``energy_key`` is an
``atoms.info`` key or a calculator result, ``forces_key`` an ``atoms.arrays``
key or a calculator result: ASE's standard ``energy``/``forces`` by default,
``REF_energy``/``REF_forces`` as MACE writes them, or any other.

:class:`EvaluationConfig` checks the file when the campaign is validated and
records its SHA-256; the frames themselves are read by
:mod:`alloop.evaluation_frames`.

``evaluation: {auto: N}`` instead makes the set in the campaign
(:mod:`alloop.campaign.phases.auto_test_set`): N frames of independent Langevin MD on a GFN-xTB surface
(``level``, default the model's baseline, else a GFN-xTB cheap fidelity, else GFN2-xTB) at ``temperature_K``
(default ``md.temperature_K``), ``equilibration_fs`` discarded per run, one frame every ``spacing_fs``, labelled
once at the expensive fidelity. It is the default for molecules when no file is named
(:mod:`alloop.config.derived`); ``evaluation: null``: no set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, ValidationInfo, field_validator, model_serializer, model_validator

from alloop.config.base import Section, base_dir_of, checks_files, gfn_xtb_preset
from alloop.errors import AlloopError, ConfigError
from alloop.evaluation_frames import file_sha256, read_evaluation_frames

#: the keys of a file set and of an automatic one (a resolved config holds only those of its kind)
FILE_KEYS = ("structures", "energy_key", "forces_key", "sha256")
AUTO_KEYS = ("auto", "level", "temperature_K", "equilibration_fs", "spacing_fs")


class EvaluationConfig(Section):
    """A fixed labelled set (at the expensive fidelity) every new model is scored on: a file, or made by the
    campaign (``auto``)."""

    structures: Path | None = Field(default=None, description="extxyz file of labelled frames, relative to the "
                                    "campaign file")
    energy_key: str = Field(default="energy", min_length=1, description="info key (or calculator result), eV")
    forces_key: str = Field(default="forces", min_length=1, description="per-atom array (or calculator result), eV/A")
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", validate_default=True,
        description="the file's SHA-256, filled in at validation; if given, the file must match it",
    )

    auto: int | None = Field(
        default=None, ge=2, le=10000,
        description="make the set in the campaign: this many frames of independent GFN-xTB MD, labelled at the "
        "expensive fidelity (instead of a file)")
    level: str | None = Field(default=None, min_length=1, description="auto: the GFN-xTB preset the MD runs on "
                              "(default: model.baseline, else a GFN-xTB fidelities.cheap, else gfn2-xtb)")
    temperature_K: float | None = Field(default=None, gt=0, description="auto: MD temperature (default "
                                        "md.temperature_K)")
    equilibration_fs: float = Field(default=1000.0, ge=0, description="auto: MD discarded at the start of each run")
    spacing_fs: float = Field(default=500.0, gt=0, description="auto: MD time between two frames of a run (beyond "
                              "the correlation time; the set records the measured one)")

    @model_validator(mode="before")
    @classmethod
    def _file_only(cls, data: Any) -> Any:
        return {"structures": data} if isinstance(data, (str, Path)) else data

    @model_validator(mode="after")
    def _one_kind(self) -> EvaluationConfig:
        if (self.structures is None) == (self.auto is None):
            raise ValueError("name a file of labelled frames (structures) or the size of an automatic set (auto: N), "
                             "one of them")
        given = self.model_fields_set & set(FILE_KEYS[1:] if self.auto is not None else AUTO_KEYS[1:])
        if given:
            raise ValueError(f"{', '.join(sorted(given))}: not used by "
                             f"{'an automatic set (auto)' if self.auto is not None else 'a file set (structures)'}")
        return self

    @model_serializer(mode="wrap")
    def _only_its_kind(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        return {k: v for k, v in data.items() if k in (AUTO_KEYS if self.auto is not None else FILE_KEYS)}

    @field_validator("level")
    @classmethod
    def _xtb_level(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return gfn_xtb_preset(value, "the automatic test set's MD runs on a GFN-xTB surface", "too slow per MD step")

    @field_validator("structures")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = (base_dir_of(info) / value.expanduser()).resolve()
        if checks_files(info) and not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path

    @field_validator("sha256")
    @classmethod
    def _read(cls, value: str | None, info: ValidationInfo) -> str | None:
        path = info.data.get("structures")
        energy_key, forces_key = info.data.get("energy_key"), info.data.get("forces_key")
        if not checks_files(info) or path is None or energy_key is None or forces_key is None:
            return value
        try:
            read_evaluation_frames(path, energy_key, forces_key)
            digest = file_sha256(path)
        except (AlloopError, OSError) as exc:
            raise ConfigError(f"evaluation.structures: {path}: {exc}") from None
        if value is not None and value != digest:
            raise ConfigError(f"evaluation.sha256: {path} has SHA-256 {digest}, not the {value} given here")
        return digest


def check_evaluation_elements(cfg: EvaluationConfig, elements: list[int]) -> None:
    """ConfigError unless every element of the evaluation frames is among the system's ``elements``."""
    from ase.data import chemical_symbols

    if cfg.structures is None:
        return
    frames = read_evaluation_frames(cfg.structures, cfg.energy_key, cfg.forces_key)
    for j in range(frames.n_frames):
        extra = sorted({int(z) for z in frames.numbers[frames.offsets[j]:frames.offsets[j + 1]]} - set(elements))
        if extra:
            names = ", ".join(chemical_symbols[z] for z in extra)
            known = ", ".join(chemical_symbols[z] for z in elements)
            raise ConfigError(f"evaluation.structures: frame {j} has elements ({names}) that the system's structures"
                              f" do not have ({known}); the model knows only those")
