"""What a campaign learns: the system (structures, charge, spin), its two levels of theory and the model.

Pydantic sections, units in field names. Cross-field checks inside one section
are field validators on the later field (so an error carries that field's key
path); checks across sections live in :mod:`alloop.config.campaign`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from alloop.config.base import Section, base_dir_of, checks_files, gfn_xtb_preset, merge_preset
from alloop.fidelity import Fidelity


class SystemConfig(Section):
    """The starting structures and their total charge and spin."""

    structures: str | list[str] = Field(
        min_length=1, description="an ASE-readable file (relative to the campaign file) or an ase.build.molecule "
        "name, or a list of them (several molecules in one campaign, alloop.system.molecules)"
    )
    charge: int = 0
    spin: int = Field(default=0, ge=0, description="2S, the number of unpaired electrons (PySCF convention)")
    conformers: int = Field(
        default=1, ge=1, le=81,
        description="starting structures per input molecule: the input and its rotamers about rotatable bonds "
                    "(alloop.system.conformers: each non-symmetric rotor turned by 0, 120, 240 deg), at most this many; "
                    "replicas and bootstrap samples are spread over them (1: the input only)")

    @field_validator("structures")
    @classmethod
    def _resolve(cls, value: str | list[str], info: ValidationInfo) -> str | list[str]:
        from alloop.system.structures import resolve_source

        def resolve(source: str) -> str:
            if not source:
                raise ValueError("an empty source")
            try:
                return resolve_source(source, base_dir_of(info))
            except ValueError:
                if checks_files(info):
                    raise
                return source

        return resolve(value) if isinstance(value, str) else [resolve(v) for v in value]


_EGNN_DEFAULTS = {"hidden_features": 64, "n_layers": 3}
# Keys each architecture reads besides cutoff_A and dtype (a sevennet with a pretrained ``base`` takes no size keys).
_MODEL_KEYS = {
    "egnn": {"hidden_features", "n_layers", "n_rbf"},
    "pair": {"n_rbf"},
    "sevennet": {"base", "hidden_features", "n_layers", "n_rbf", "lmax", "features", "freeze_blocks"},
    "mace": {"features"},
    "so3lr": {"base"},
}
#: architectures whose weights come from a model file only (``model.checkpoint``; its size, cutoff and dtype are the file's)
FILE_ARCHITECTURES = ("mace",)
_SEVENNET_SIZE = {"hidden_features", "n_layers", "n_rbf", "lmax"}


class ModelConfig(Section):
    """The machine-learned potential: a preset from configs/models/ or spelled out."""

    NULL_MEANS_NONE: ClassVar[frozenset[str]] = frozenset({"baseline"})  # null: no baseline (not the default one)

    preset: str | None = None
    architecture: Literal["egnn", "pair", "sevennet", "mace", "so3lr"] = "egnn"
    base: str | None = Field(
        default=None, min_length=1, description="a pretrained model shipped in a wheel: sevennet '7net-0' (the sevenn "
        "wheel's SevenNet-0), so3lr 'so3lr' (the so3krates-torch wheel's SO3LR)"
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
        default=None, description="sevennet: scalar features of the last interaction block or of all (default last); "
        "mace: scalar channels of the last layer (the last readout's input) or of every layer"
    )
    freeze_blocks: int | None = Field(
        default=None, ge=0, description="sevennet: freeze the embeddings and the first k interaction blocks"
    )
    dtype: Literal["float32", "float64"] = "float32"
    checkpoint: Path | None = Field(
        default=None, description="a model file to start from (its own hyperparameters win; the bootstrap's labels "
        "are its first training, from its weights): an alloop checkpoint, or for architecture mace a MACE model file "
        "(.model: MACE-OFF, MACE-MP, ...)"
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

    @model_validator(mode="after")
    def _model_file(self) -> ModelConfig:
        if self.architecture in FILE_ARCHITECTURES and self.checkpoint is None:
            raise ValueError(f"checkpoint: architecture '{self.architecture}' needs a model file you bring "
                             "(model.checkpoint: a MACE .model file such as MACE-OFF or MACE-MP)")
        if self.architecture == "so3lr" and self.base is None:
            raise ValueError("base: architecture 'so3lr' is the pretrained SO3LR only: set base: so3lr (or preset: so3lr)")
        return self

    @property
    def pretrained(self) -> bool:
        """Whether the model starts from pretrained weights (a ``base`` such as SevenNet-0, or a checkpoint file)."""
        return self.base is not None or self.checkpoint is not None

    def hyperparameters(self) -> dict[str, Any]:
        """Keyword arguments for ``alloop.potentials.registry.build_model`` (architecture and checkpoint apart)."""
        if self.architecture in FILE_ARCHITECTURES:  # size, cutoff and dtype are the file's
            return {"model_file": str(self.checkpoint), **({"features": self.features} if self.features else {})}
        keys = ("base", "cutoff_A", "hidden_features", "n_layers", "n_rbf", "lmax", "features", "freeze_blocks", "dtype")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

    @field_validator("baseline")
    @classmethod
    def _xtb_baseline(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return gfn_xtb_preset(value, "a baseline must be a GFN-xTB fidelity", "too slow to run at every MD step")

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = (base_dir_of(info) / value.expanduser()).resolve()
        if checks_files(info) and not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path


class FidelitiesConfig(Section):
    """The two levels of theory, resolved (charge and spin come from ``system``)."""

    cheap: Fidelity
    expensive: Fidelity
