"""Langevin MD of a periodic box on a labeller's surface (GFN1-xTB through tblite): the reference MD and the melt
that turns a packed box into a liquid."""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from alloop.fidelity import load_fidelity
from alloop.labeling.calculator import LabelerCalculator
from alloop.labeling.factory import labeler_for


def cheap_langevin(atoms: Atoms, fidelity: str, temperature_K: float, timestep_fs: float, seed: int) -> Langevin:
    """Langevin MD of ``atoms`` (in place) on a labeller's surface (e.g. periodic GFN1-xTB through tblite),
    friction 0.01/fs, Maxwell-Boltzmann velocities without net momentum; the centre of mass is left free
    (a liquid diffuses). The calculator (``atoms.calc``) counts its labels."""
    atoms.calc = LabelerCalculator(labeler_for(load_fidelity(fidelity)))
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    return Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K, friction=0.01 / units.fs,
                    fixcm=False, rng=rng)


def liquid(box: Atoms, temperature: float, ps: float, seed: int, fidelity: str = "gfn1-xtb") -> Atoms:
    """``box`` after ``ps`` of periodic Langevin MD on ``fidelity``'s surface (0.5 fs, :func:`cheap_langevin`): a
    liquid, not the lattice it started as; positions wrapped into the cell, no calculator, no velocities."""
    atoms = box.copy()
    cheap_langevin(atoms, fidelity, temperature, 0.5, seed).run(int(round(ps * 2000)))
    out = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.wrap()
    return out
