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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from alloop.config.base import Section, base_dir_of, checks_files
from alloop.errors import AlloopError, ConfigError
from alloop.evaluation.frames import file_sha256, read_evaluation_frames


class EvaluationConfig(Section):
    """A fixed labelled set (at the expensive fidelity) every new model is scored on."""

    structures: Path = Field(description="extxyz file of labelled frames, relative to the campaign file")
    energy_key: str = Field(default="energy", min_length=1, description="info key (or calculator result), eV")
    forces_key: str = Field(default="forces", min_length=1, description="per-atom array (or calculator result), eV/A")
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", validate_default=True,
        description="the file's SHA-256, filled in at validation; if given, the file must match it",
    )

    @model_validator(mode="before")
    @classmethod
    def _file_only(cls, data: Any) -> Any:
        return {"structures": data} if isinstance(data, (str, Path)) else data

    @field_validator("structures")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
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

    frames = read_evaluation_frames(cfg.structures, cfg.energy_key, cfg.forces_key)
    for j in range(frames.n_frames):
        extra = sorted({int(z) for z in frames.numbers[frames.offsets[j]:frames.offsets[j + 1]]} - set(elements))
        if extra:
            names = ", ".join(chemical_symbols[z] for z in extra)
            known = ", ".join(chemical_symbols[z] for z in elements)
            raise ConfigError(f"evaluation.structures: frame {j} has elements ({names}) that the system's structures"
                              f" do not have ({known}); the model knows only those")
