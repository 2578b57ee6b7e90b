"""A fidelity: a named, hashable quantum-chemistry level of theory.

The hash covers every field that changes the numbers (method, basis, density
fitting, grid, charge, spin, convergence tolerance) and nothing else, so two
campaigns that label at the same level share labels, and a label is keyed by
(frame id, fidelity hash) in the store.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alloop.errors import ConfigError, FidelityError
from alloop.presets import load_preset

WAVEFUNCTION_METHODS = ("hf", "mp2", "ccsd", "ccsd(t)")
#: fields that do not change the numbers and are left out of the hash
_NOT_HASHED = frozenset({"name", "max_cycles", "max_memory_MB"})


class Fidelity(BaseModel):
    """One level of theory. ``spin`` is 2S (number of unpaired electrons), as in PySCF."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    method: str = Field(min_length=1, description="hf, mp2, ccsd, ccsd(t), or a PySCF/libxc functional")
    basis: str = Field(min_length=1)
    density_fit: bool = False
    grid_level: int = Field(default=3, ge=0, le=9, description="DFT grid level (ignored by non-DFT methods)")
    charge: int = 0
    spin: int = Field(default=0, ge=0)
    conv_tol_Eh: float = Field(default=1e-9, gt=0, lt=1e-3, description="SCF energy tolerance in Hartree")
    max_cycles: int = Field(default=100, ge=1)
    max_memory_MB: int = Field(default=2000, ge=100)

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        method = value.strip().lower()
        if method in WAVEFUNCTION_METHODS:
            return method
        try:
            from pyscf.dft import libxc

            libxc.parse_xc(method)
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"unknown method '{value}': use one of {', '.join(WAVEFUNCTION_METHODS)} or a DFT functional"
            ) from exc
        return method

    @field_validator("basis")
    @classmethod
    def _normalise_basis(cls, value: str) -> str:
        return value.strip().lower()

    @property
    def is_dft(self) -> bool:
        return self.method not in WAVEFUNCTION_METHODS

    @property
    def unrestricted(self) -> bool:
        """Unrestricted references for open shells, restricted for closed shells."""
        return self.spin != 0

    def hash(self) -> str:
        """A short stable hash of the physics-relevant fields (16 hex digits)."""
        fields = {k: v for k, v in self.model_dump().items() if k not in _NOT_HASHED}
        if not self.is_dft:
            fields.pop("grid_level")
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def check_structure(self, numbers: Sequence[int]) -> None:
        """Raise FidelityError if this fidelity cannot label a structure with these elements."""
        from pyscf import gto
        from pyscf.data.elements import ELEMENTS

        numbers = [int(z) for z in numbers]
        if not numbers:
            raise FidelityError("empty structure")
        for z in sorted(set(numbers)):
            if z < 1 or z >= len(ELEMENTS):
                raise FidelityError(f"atomic number {z} is not an element")
            symbol = ELEMENTS[z]
            try:
                with warnings.catch_warnings():  # PySCF suggests basis-set-exchange when a basis is missing
                    warnings.simplefilter("ignore", UserWarning)
                    gto.basis.load(self.basis, symbol)
            except Exception as exc:  # pyscf raises several types for a missing basis
                raise FidelityError(
                    f"fidelity '{self.name}': basis '{self.basis}' does not cover element {symbol}"
                ) from exc
        n_electrons = sum(numbers) - self.charge
        if n_electrons <= 0:
            raise FidelityError(f"fidelity '{self.name}': charge {self.charge} leaves {n_electrons} electrons")
        if (n_electrons - self.spin) % 2 != 0:
            raise FidelityError(
                f"fidelity '{self.name}': {n_electrons} electrons cannot have spin (2S) = {self.spin};"
                " the parities of the electron count and 2S must agree"
            )
        if self.spin > n_electrons:
            raise FidelityError(f"fidelity '{self.name}': spin (2S) = {self.spin} exceeds {n_electrons} electrons")


def load_fidelity(spec: str | dict[str, Any], *, charge: int | None = None, spin: int | None = None) -> Fidelity:
    """Build a Fidelity from a preset name or a mapping (which may name a ``preset`` to start from).

    ``charge`` and ``spin`` (2S) from the system override the preset's values.
    """
    if isinstance(spec, str):
        data = dict(load_preset("fidelities", spec))
        data.setdefault("name", spec)
    elif isinstance(spec, dict):
        data = dict(spec)
        preset = data.pop("preset", None)
        if preset is not None:
            base = dict(load_preset("fidelities", str(preset)))
            base.setdefault("name", str(preset))
            base.update(data)
            data = base
    else:
        raise ConfigError(f"a fidelity is a preset name or a mapping, not {type(spec).__name__}")
    if charge is not None:
        data["charge"] = charge
    if spin is not None:
        data["spin"] = spin
    try:
        return Fidelity(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "fidelity"
        raise ConfigError(f"{loc}: {err['msg']}") from None
