"""The molecules nobody tuned on (issue 63, item 5): one table of their structure files, charge, spin and test-set
sizes, read by ``make_equilibrium_sets.py`` (the sets' MD and labels at the molecule's charge and spin),
``make_molecule_structures.py`` (the GFN2-xTB relaxation) and ``molecules.py`` (the benchmark).

Structures are under ``benchmarks/data`` (``molecules/`` for the new ones; ``benchmarks/data/molecules/README.md``
says how each was built). ``spin`` is 2S, the number of unpaired electrons (PySCF's and alloop's convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lib.common import DATA

#: the temperatures of the test sets: the campaign's (md.temperature_K of the quickstarts) and a hotter one
CAMPAIGN_K, HOT_K = 500.0, 900.0
#: the expensive fidelity of every molecule: the universal quickstart's, unchanged (aspirin included: 1 seed)
EXPENSIVE = "b3lyp-svp"


@dataclass(frozen=True)
class Molecule:
    """One molecule of the benchmark: its structure file (under benchmarks/data), charge, 2S, what it tests, the
    campaign seeds, the frames of its test sets (``verdict``, at both temperatures) and of its random arm's ``pool``
    (500 K), and the production ps of each of the sets' MD runs."""

    file: str
    formula: str
    charge: int
    spin: int
    kind: str
    seeds: tuple[int, ...] = (0, 1, 2)
    test_frames: int = 60
    pool_frames: int = 100
    md_ps: float = 20.0

    @property
    def path(self) -> Path:
        return DATA / self.file


MOLECULES: dict[str, Molecule] = {
    "malonaldehyde": Molecule("malonaldehyde.xyz", "C3H4O2", 0, 0, "intramolecular proton transfer (enol)"),
    # B3LYP/def2-SVP costs about 2.5 CPU min a label for aspirin: one seed, smaller sets (the pool is the 30 frames);
    # GFN2-xTB about 15 ms a step (ethanol's size: 2-4 ms): 5 ps runs, 5 frames each 1 ps apart
    "aspirin": Molecule("molecules/aspirin.xyz", "C9H8O4", 0, 0, "21 atoms, a ring and rotors", seeds=(0,),
                        test_frames=30, pool_frames=30, md_ps=5.0),
    "glycine": Molecule("molecules/glycine.xyz", "C2H5NO2", 0, 0, "flexible, intramolecular O-H...N hydrogen bond"),
    "acetate": Molecule("molecules/acetate.xyz", "C2H3O2", -1, 0, "anion (charge -1)"),
    "ethoxy": Molecule("molecules/ethoxy.xyz", "C2H5O", 0, 1, "open-shell radical CH3CH2O. (2S = 1)"),
    "2-chloroethanol": Molecule("molecules/2-chloroethanol.xyz", "C2H5ClO", 0, 0, "halogen (Cl), gauche O-H...Cl"),
}


def molecule_entry(name: str) -> Molecule:
    """The table's entry of ``name``; SystemExit naming the known molecules otherwise."""
    if name not in MOLECULES:
        raise SystemExit(f"unknown molecule {name!r}; known: {', '.join(MOLECULES)}")
    return MOLECULES[name]


def electrons(numbers: list[int] | tuple[int, ...], charge: int) -> int:
    """The number of electrons of a structure of atomic numbers ``numbers`` at total ``charge``."""
    return int(sum(numbers)) - charge


def set_file(name: str, temperature_K: float, set_name: str, fidelity: str) -> Path:
    """The labelled set ``make_equilibrium_sets.py`` writes for this molecule, temperature, set and fidelity."""
    return DATA / f"{name}_{temperature_K:g}K_eq{set_name}_{fidelity}.extxyz"
