"""A campaign's fixed evaluation set: labelled frames every model the campaign trains is scored on.

The campaign file's optional section ``evaluation: {structures: FILE.extxyz,
energy_key: energy, forces_key: forces}`` names an extxyz file (relative to the
campaign file) of frames labelled at the campaign's **expensive** fidelity
(the model predicts that fidelity's absolute energies). ``energy_key`` is an
``atoms.info`` key or a calculator result, ``forces_key`` an ``atoms.arrays``
key or a calculator result: ASE's standard ``energy``/``forces`` by default,
``REF_energy``/``REF_forces`` as MACE writes them, or any other.

:class:`EvaluationConfig` checks the file when the campaign is validated and
records its SHA-256; the frames themselves are read by
:mod:`alloop.evaluation.frames`.

``evaluation: {auto: N}`` makes the set instead (:mod:`alloop.evaluation.auto`): N frames of independent Langevin MD
on a GFN-xTB surface (``level``; default: the cheap fidelity when it is GFN-xTB, else ``model.baseline``, else
``gfn2-xtb``) at ``md.temperature_K``, from the campaign's starting structures with their own seeds, sampled every
``spacing_fs`` after ``equilibration_fs``, then labelled once at the expensive fidelity. A campaign file without the
section gets ``{auto: AUTO_FRAMES}`` where such a set can be made (:mod:`alloop.config.derived`); ``evaluation:
false`` (or null) runs without a set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from alloop.config.base import Section, base_dir_of, checks_files, gfn_xtb_preset
from alloop.errors import AlloopError, ConfigError
from alloop.evaluation.frames import file_sha256, read_evaluation_frames

#: frames of an automatic set (``evaluation: {auto: N}``) when the section gives no number
AUTO_FRAMES = 30
#: MD discarded before an automatic set's first frame, and between two of its frames (fs): see docs/campaigns.md
AUTO_EQUILIBRATION_FS = 1000.0
AUTO_SPACING_FS = 500.0


class EvaluationConfig(Section):
    """A fixed labelled set (at the expensive fidelity) every new model is scored on: a file, or made (``auto``)."""

    structures: Path | None = Field(default=None,
                                    description="extxyz file of labelled frames, relative to the campaign file")
    auto: int | None = Field(default=None, ge=1, description="make the set: this many frames of independent GFN-xTB "
                             "MD at md.temperature_K, labelled at the expensive fidelity")
    level: str | None = Field(default=None, min_length=1, description="auto: the GFN-xTB preset the MD runs on "
                              "(default: fidelities.cheap when GFN-xTB, else model.baseline, else gfn2-xtb)")
    equilibration_fs: float | None = Field(
        default=None, ge=0, validate_default=True,
        description=f"auto: MD before the first frame (default {AUTO_EQUILIBRATION_FS:g})")
    spacing_fs: float | None = Field(
        default=None, gt=0, validate_default=True,
        description=f"auto: MD between two frames of a run (default {AUTO_SPACING_FS:g})")
    energy_key: str = Field(default="energy", min_length=1, description="info key (or calculator result), eV")
    forces_key: str = Field(default="forces", min_length=1, description="per-atom array (or calculator result), eV/A")
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", validate_default=True,
        description="the file's SHA-256, filled in at validation; if given, the file must match it",
    )

    @model_validator(mode="before")
    @classmethod
    def _file_only(cls, data: Any) -> Any:
        if isinstance(data, bool):  # false is taken before (no set); true names no set
            raise ValueError("true is not a set: give false (no set), a labelled file, or {auto: N}")
        return {"structures": data} if isinstance(data, (str, Path)) else data

    @model_validator(mode="after")
    def _one_source(self) -> EvaluationConfig:
        if (self.structures is None) == (self.auto is None):
            raise ValueError("give either structures (a labelled file) or auto (the number of frames to make)")
        return self

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
        if path is None and value is not None and "structures" in info.data:
            raise ValueError("only for a set given as a file (structures)")
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


    @field_validator("level")
    @classmethod
    def _level(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("auto") is None:
            raise ValueError("only used with auto")
        return value if value is None else gfn_xtb_preset(value, "the automatic set's MD runs on a GFN-xTB surface",
                                                          "too slow per MD step")

    @field_validator("equilibration_fs", "spacing_fs")
    @classmethod
    def _md_times(cls, value: float | None, info: ValidationInfo) -> float | None:
        if info.data.get("auto") is None:
            if value is not None:
                raise ValueError("only used with auto")
            return None
        if value is None:
            return AUTO_EQUILIBRATION_FS if info.field_name == "equilibration_fs" else AUTO_SPACING_FS
        return value


def check_evaluation_elements(cfg: EvaluationConfig, elements: list[int]) -> None:
    """ConfigError unless every element of the evaluation frames is among the system's ``elements``."""
    from ase.data import chemical_symbols

    if cfg.structures is None:
        return  # a set made from the system's own structures
    frames = read_evaluation_frames(cfg.structures, cfg.energy_key, cfg.forces_key)
    for j in range(frames.n_frames):
        extra = sorted({int(z) for z in frames.numbers[frames.offsets[j]:frames.offsets[j + 1]]} - set(elements))
        if extra:
            names = ", ".join(chemical_symbols[z] for z in extra)
            known = ", ".join(chemical_symbols[z] for z in elements)
            raise ConfigError(f"evaluation.structures: frame {j} has elements ({names}) that the system's structures"
                              f" do not have ({known}); the model knows only those")
