"""Unit constants. alloop works in eV, Angstrom and fs (ASE units) at every boundary.

PySCF's Hartree and Bohr are converted exactly once, in the PySCF labeller,
with the constants below (taken from ASE so the whole stack agrees).
"""

from ase import units as _u

HARTREE_TO_EV: float = float(_u.Hartree)
BOHR_TO_ANGSTROM: float = float(_u.Bohr)
#: Hartree/Bohr -> eV/Angstrom
HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM: float = HARTREE_TO_EV / BOHR_TO_ANGSTROM
#: Boltzmann constant in eV/K
KB_EV_PER_K: float = float(_u.kB)
#: one femtosecond in ASE's internal time unit
FS: float = float(_u.fs)
