"""The cheap Hessian for normal-mode samples: analytic for PySCF, finite differences of forces for xTB."""

from __future__ import annotations

import numpy as np
import tblite.interface  # noqa: F401  (its OpenMP runtime, pinned below)
from ase import units
from ase.build import molecule
from ase.optimize import BFGS
from tblite.ase import TBLite

from alloop.campaign.phases.bootstrap import vibrational_modes
from alloop.campaign.phases.hessian import cheap_hessian, finite_difference_hessian
from alloop.fidelity import load_fidelity
from alloop.labeling.threads import set_openmp_threads


def test_finite_differences_match_the_analytic_scf_hessian():
    water = molecule("H2O")
    hf = load_fidelity("hf-sto3g")
    analytic = cheap_hessian(water, hf)
    numeric = finite_difference_hessian(water, hf)
    assert np.abs(numeric - analytic).max() < 2e-3 * np.abs(analytic).max()


def test_xtb_hessian_at_a_minimum_has_the_molecules_vibrations():
    set_openmp_threads(1)  # tblite's ASE calculator, unpinned on a busy machine, takes seconds per call
    water = molecule("H2O")
    water.calc = TBLite(method="GFN2-xTB", verbosity=0)
    BFGS(water, logfile=None).run(fmax=1e-4)
    water.calc = None
    hessian = cheap_hessian(water, load_fidelity("gfn2-xtb"))
    assert hessian.shape == (9, 9) and np.array_equal(hessian, hessian.T)
    eigvals, _ = vibrational_modes(water, hessian)
    assert eigvals.size == 3 and np.all(eigvals > 0)
    wavenumbers = np.sqrt(eigvals) * units.s / (2 * np.pi * 100 * units._c)  # cm^-1
    assert 1400 < wavenumbers[0] < 1700 and np.all((3300 < wavenumbers[1:]) & (wavenumbers[1:] < 3900)), wavenumbers
    # translations cost nothing: the rows of an exact Hessian sum to zero along each axis
    assert np.abs(hessian.reshape(9, 3, 3).sum(axis=1)).max() < 1e-3 * np.abs(hessian).max()
