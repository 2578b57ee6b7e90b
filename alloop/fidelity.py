"""A fidelity: a named, hashable level of theory of one method family.

Families: ``pyscf`` (the default: HF, MP2, CCSD, CCSD(T) and DFT functionals in
a Gaussian basis, run by PySCF, for isolated molecules), ``pyscf-pbc`` (LDA and
GGA functionals at the Gamma point of a periodic cell, GTH pseudopotentials and
basis sets, PySCF's multigrid integrator) and ``xtb`` (GFN1-xTB and GFN2-xTB, run
by tblite, molecules). The hash covers every field that changes the numbers and
nothing else, so two campaigns that label at the same level share labels, and
a label is keyed by (frame id, fidelity hash) in the store:

- ``pyscf``: method, basis, density fitting, grid (DFT only), charge, spin,
  convergence tolerance. The family is not part of it: these hashes (and the
  specs written into stores) are byte-for-byte those of before families existed.
- ``pyscf-pbc``: family, method, basis, pseudopotential, plane-wave cutoff,
  charge, spin, convergence tolerance.
- ``xtb``: family, method, charge, spin, tblite's accuracy and the electronic
  temperature.

A periodic fidelity labels only structures periodic in all three directions,
a molecular PySCF one only structures with no periodic direction; xtb labels
both (tblite handles cells) (:meth:`Fidelity.check_periodicity`: one line
saying which).

``max_cycles`` decides whether an SCF converges, never what it converges to: it
is hashed in neither family. A fidelity's dump (``model_dump``) holds only the
fields of its family.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from alloop.errors import ConfigError, FidelityError
from alloop.presets import load_preset

WAVEFUNCTION_METHODS = ("hf", "mp2", "ccsd", "ccsd(t)")
#: the wavefunction methods with correlated electrons (frozen_core applies to them)
CORRELATED_METHODS = tuple(m for m in WAVEFUNCTION_METHODS if m != "hf")
#: common DFT functionals -> whether periodic fidelities take them (LDA or GGA: no exact exchange, meta-GGA or
#: non-local correlation), so validating them needs no import of pyscf.dft (~0.9 s: ``alloop status`` reads the
#: store's fidelities); any other name is checked by libxc, and a unit test checks this table against libxc
KNOWN_FUNCTIONALS = {"lda": True, "svwn": True, "pbe": True, "blyp": True, "bp86": True, "b3lyp": False,
                     "pbe0": False, "tpss": False, "scan": False, "wb97x": False}
#: xtb methods (alloop's spelling -> tblite's)
XTB_METHODS = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
#: heaviest element tblite parametrises in GFN1- and GFN2-xTB (Rn)
XTB_MAX_Z = 86
#: xtb settings when a spec does not give them (tblite's own defaults)
XTB_DEFAULTS = {"accuracy": 1.0, "electronic_temperature_K": 300.0, "max_cycles": 250}
#: fields that do not change the numbers and are left out of the hash
_NOT_HASHED = frozenset({"name", "max_cycles", "max_memory_MB"})
#: the periodic family's defaults: GTH pseudopotential, plane-wave cutoff (Hartree) of the multigrid integrator
PBC_DEFAULTS = {"pseudo": "gth-pbe", "ke_cutoff_Eh": 400.0}
#: fields of a family beyond name, family, method, charge, spin, max_cycles (others are refused there and left
#: out of its dump)
FAMILY_FIELDS = {
    "pyscf": ("basis", "density_fit", "grid_level", "conv_tol_Eh", "max_memory_MB", "frozen_core"),
    "pyscf-pbc": ("basis", "pseudo", "ke_cutoff_Eh", "conv_tol_Eh", "max_memory_MB"),
    "xtb": ("accuracy", "electronic_temperature_K"),
}
_ALL_FAMILY_FIELDS = tuple(dict.fromkeys(f for fields in FAMILY_FIELDS.values() for f in fields))


class Fidelity(BaseModel):
    """One level of theory. ``spin`` is 2S (number of unpaired electrons), as in PySCF and tblite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    family: Literal["pyscf", "pyscf-pbc", "xtb"] = Field(
        default="pyscf", description="pyscf (molecules), pyscf-pbc (periodic cells), or xtb (tblite); "
        "gfn1-xtb/gfn2-xtb methods imply xtb")
    method: str = Field(min_length=1, description="hf, mp2, ccsd, ccsd(t), a PySCF/libxc functional; "
                        "gfn2-xtb or gfn1-xtb")
    basis: str | None = Field(default=None, min_length=1, description="Gaussian basis (pyscf only, required there)")
    density_fit: bool = False
    grid_level: int = Field(default=3, ge=0, le=9, description="DFT grid level (ignored by non-DFT methods)")
    charge: int = 0
    spin: int = Field(default=0, ge=0)
    conv_tol_Eh: float = Field(default=1e-9, gt=0, lt=1e-3, description="SCF energy tolerance in Hartree")
    max_cycles: int = Field(default=100, ge=1, description="SCF iterations (xtb: tblite's max-iter, default 250)")
    max_memory_MB: int = Field(default=2000, ge=100)
    frozen_core: bool = Field(
        default=False, description="mp2, ccsd, ccsd(t): correlate the valence electrons only (PySCF's chemcore: the "
        "1s shell of Li-Ne frozen, and so on); a level of its own, never mixed with the all-electron one")
    accuracy: float | None = Field(default=None, gt=0, description="xtb: tblite's accuracy (1.0; smaller is tighter)")
    electronic_temperature_K: float | None = Field(default=None, ge=0, description="xtb: Fermi smearing (300 K)")
    pseudo: str | None = Field(default=None, min_length=1, description="pyscf-pbc: GTH pseudopotential (gth-pbe)")
    ke_cutoff_Eh: float | None = Field(default=None, gt=0, description="pyscf-pbc: plane-wave cutoff in Hartree "
                                       "(400)")

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: Any) -> Any:
        """An xtb method implies the xtb family; xtb specs get tblite's defaults for what they leave out."""
        if not isinstance(data, dict):
            return data
        method = data.get("method")
        if "family" not in data and isinstance(method, str) and method.strip().lower() in XTB_METHODS:
            data = {**data, "family": "xtb"}
        if data.get("family") == "xtb":
            data = {**XTB_DEFAULTS, **data}
        if data.get("family") == "pyscf-pbc":
            data = {**PBC_DEFAULTS, **data}
        return data

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str, info: ValidationInfo) -> str:
        method = value.strip().lower()
        if info.data.get("family") == "xtb":
            if method not in XTB_METHODS:
                raise ValueError(f"unknown xtb method '{value}': use one of {', '.join(XTB_METHODS)}")
            return method
        periodic = info.data.get("family") == "pyscf-pbc"
        if method in WAVEFUNCTION_METHODS and not periodic:
            return method
        if method in KNOWN_FUNCTIONALS and (KNOWN_FUNCTIONALS[method] or not periodic):
            return method
        try:
            from pyscf.dft import libxc

            libxc.parse_xc(method)
        except (KeyError, ValueError) as exc:
            if periodic:
                raise ValueError(f"unknown method '{value}': periodic fidelities take an LDA or GGA functional "
                                 "(e.g. pbe)") from exc
            raise ValueError(
                f"unknown method '{value}': use one of {', '.join(WAVEFUNCTION_METHODS)}, a DFT functional, "
                f"or {', '.join(XTB_METHODS)}"
            ) from exc
        if periodic:
            from pyscf.dft import libxc

            if libxc.is_hybrid_xc(method) or libxc.is_meta_gga(method) or libxc.is_nlc(method):
                raise ValueError(f"'{value}': periodic fidelities take LDA or GGA functionals only (PySCF's "
                                 "multigrid integrator: no exact exchange, meta-GGA or non-local correlation)")
        return method

    @field_validator("basis", "pseudo")
    @classmethod
    def _normalise_name(cls, value: str | None) -> str | None:
        return None if value is None else value.strip().lower()

    @model_validator(mode="after")
    def _fields_of_family(self) -> Fidelity:
        own = FAMILY_FIELDS[self.family]
        if self.family != "xtb" and self.basis is None:
            raise ValueError(f"basis: required by PySCF methods (family {self.family})")
        extra = [k for k in _ALL_FAMILY_FIELDS if k not in own and k in self.model_fields_set]
        if extra:
            users = ", ".join(f for f, fields in FAMILY_FIELDS.items() if extra[0] in fields)
            raise ValueError(f"{extra[0]}: not used by {self.family} fidelities (only by {users})")
        if self.frozen_core and self.method not in CORRELATED_METHODS:
            raise ValueError(f"frozen_core: only for correlated methods ({', '.join(CORRELATED_METHODS)}), not "
                             f"{self.method}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        """Only this family's fields: a PySCF fidelity dumps (and is stored) exactly as before families existed."""
        drop = set(_ALL_FAMILY_FIELDS) - set(FAMILY_FIELDS[self.family])
        if self.family == "pyscf":
            drop.add("family")
        if not self.frozen_core:  # all-electron fidelities dump (and hash) as before the field existed
            drop.add("frozen_core")
        return {k: v for k, v in handler(self).items() if k not in drop}

    @property
    def periodic(self) -> bool:
        """Whether this fidelity labels periodic cells (family ``pyscf-pbc``) rather than isolated molecules."""
        return self.family == "pyscf-pbc"

    @property
    def is_dft(self) -> bool:
        return self.family == "pyscf-pbc" or (self.family == "pyscf" and self.method not in WAVEFUNCTION_METHODS)

    @property
    def unrestricted(self) -> bool:
        """Unrestricted references for open shells, restricted for closed shells."""
        return self.spin != 0

    @property
    def level(self) -> str:
        """The level of theory in a few characters: ``b3lyp/def2-svp``, ``pbe/def2-svp +DF``, ``gfn2-xtb (tblite)``."""
        if self.family == "xtb":
            return f"{self.method} (tblite)"
        if self.periodic:
            return f"{self.method}/{self.basis} (periodic, Gamma point)"
        return (f"{self.method}/{self.basis}" + (" +DF" if self.density_fit else "")
                + (" (frozen core)" if self.frozen_core else ""))

    def hash(self) -> str:
        """A short stable hash of the physics-relevant fields (16 hex digits)."""
        fields = {k: v for k, v in self.model_dump().items() if k not in _NOT_HASHED}
        if not self.is_dft or self.periodic:
            fields.pop("grid_level", None)
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def check_structure(self, numbers: Iterable[int]) -> None:
        """Raise FidelityError if this fidelity cannot label a structure with these elements."""
        numbers = [int(z) for z in numbers]
        if not numbers:
            raise FidelityError("empty structure")
        for z in sorted(set(numbers)):
            if self.family == "xtb":
                self._check_xtb_element(z)
            elif self.periodic:
                self._check_gth(z)
            else:
                self._check_basis(z)
        self._check_electrons(numbers)

    def check_periodicity(self, pbc: Sequence[bool], cell: Any = None) -> None:
        """Raise FidelityError (one line) unless a structure with these ``pbc`` flags (and ``cell``, 3x3 Angstrom)
        suits this fidelity: periodic in all three directions with a cell of positive volume for a periodic
        fidelity, in none for a molecular PySCF one, either for xtb."""
        flags = [bool(p) for p in pbc]
        if self.family == "xtb" and any(flags):  # tblite labels molecules and 3D cells alike
            self._check_cell(flags, cell)
            return
        if not self.periodic:
            if any(flags):
                raise FidelityError(f"fidelity '{self.name}' ({self.level}) labels isolated molecules; this "
                                    f"structure is periodic (pbc={flags}): use a periodic fidelity such as "
                                    "pbe-gth-szv, or set pbc=False")
            return
        self._check_cell(flags, cell)

    def _check_cell(self, flags: list[bool], cell: Any) -> None:
        if not all(flags):
            raise FidelityError(f"fidelity '{self.name}' ({self.level}) labels structures periodic in all three "
                                f"directions, not pbc={flags}: give the structure a cell and pbc=True")
        import numpy as np

        volume = abs(float(np.linalg.det(np.asarray(cell, dtype=float).reshape(3, 3)))) if cell is not None else 0.0
        if not volume > 1e-6:
            raise FidelityError(f"fidelity '{self.name}' ({self.level}): the structure's cell has no volume")

    def _check_xtb_element(self, z: int) -> None:
        from ase.data import chemical_symbols

        if z < 1 or z > XTB_MAX_Z:
            what = chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"atomic number {z}"
            raise FidelityError(f"fidelity '{self.name}': {XTB_METHODS[self.method]} parametrises elements "
                                f"H to Rn (Z 1-{XTB_MAX_Z}), not {what}")

    def _check_basis(self, z: int) -> None:
        from pyscf import gto
        from pyscf.data.elements import ELEMENTS

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

    def _check_gth(self, z: int) -> None:
        from pyscf.data.elements import ELEMENTS
        from pyscf.pbc import gto as pbc_gto

        if z < 1 or z >= len(ELEMENTS):
            raise FidelityError(f"atomic number {z} is not an element")
        symbol = ELEMENTS[z]
        for what, name, load in (("basis", self.basis, pbc_gto.basis.load),
                                 ("pseudopotential", self.pseudo, pbc_gto.pseudo.load)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    found = load(name, symbol)
            except Exception as exc:  # pyscf raises several types for a missing entry
                raise FidelityError(f"fidelity '{self.name}': {what} '{name}' does not cover element {symbol}") from exc
            if not found:
                raise FidelityError(f"fidelity '{self.name}': {what} '{name}' does not cover element {symbol}")

    def _check_electrons(self, numbers: list[int]) -> None:
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
        loc = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{loc}: {message}" if loc else message) from None
