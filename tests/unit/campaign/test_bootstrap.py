import numpy as np
import pytest
from ase import Atoms

from alloop.campaign.phases.bootstrap import md_samples, normal_mode_samples, rattle_samples, vibrational_modes
from alloop.campaign.phases.surface_md import SurfaceMD, surface_md_samples
from alloop.errors import FidelityError
from alloop.fidelity import load_fidelity
from alloop.units import KB_EV_PER_K


def _diatomic_hessian(k: float) -> np.ndarray:
    """Hessian of a harmonic bond along x between two atoms (eV/A^2)."""
    h = np.zeros((6, 6))
    h[0, 0] = h[3, 3] = k
    h[0, 3] = h[3, 0] = -k
    return h


def test_rattle_is_seeded_and_has_the_amplitude(ethanol):
    a = rattle_samples(ethanol, 200, 0.05, seed=1)
    b = rattle_samples(ethanol, 200, 0.05, seed=1)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b, strict=True))
    disp = np.stack([s.positions - ethanol.positions for s in a])
    assert abs(disp.std() - 0.05) < 0.003


def test_normal_modes_of_a_diatomic_follow_equipartition():
    k = 30.0
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
    eigvals, _ = vibrational_modes(atoms, _diatomic_hessian(k))
    mu = atoms.get_masses()[0] / 2
    assert eigvals.size == 1 and abs(eigvals[0] - k / mu) < 1e-9
    samples = normal_mode_samples(atoms, _diatomic_hessian(k), 4000, 500.0, seed=0)
    stretch = np.array([s.positions[1, 0] - s.positions[0, 0] - 0.74 for s in samples])
    # <0.5 k x^2> = 0.5 kT for the one vibrational mode
    assert abs(0.5 * k * np.mean(stretch**2) / (0.5 * KB_EV_PER_K * 500.0) - 1.0) < 0.08
    perpendicular = np.array([s.positions[:, 1:] for s in samples])
    assert np.abs(perpendicular).max() < 1e-12


def test_md_samples_of_a_harmonic_well_follow_equipartition():
    """Langevin samples of one atom in an isotropic well k: <x^2> = kT / k per coordinate, one sample every spacing."""
    k, temperature = 2.0, 500.0
    atom = Atoms("H", positions=[[0.0, 0.0, 0.0]])
    calls = []

    def forces(x: np.ndarray) -> np.ndarray:
        calls.append(1)
        return -k * x

    samples = md_samples(atom, forces, 1500, temperature, seed=3, timestep_fs=0.5, friction_per_fs=0.2,
                         equilibration_fs=50.0, spacing_fs=20.0)
    assert len(samples) == 1500 and len(calls) == 1 + (50 + 1500 * 20) / 0.5
    x = np.array([s.positions[0] for s in samples])
    assert abs(np.mean(x**2) * k / (KB_EV_PER_K * temperature) - 1.0) < 0.1
    again = md_samples(atom, forces, 5, temperature, seed=3, timestep_fs=0.5, friction_per_fs=0.2,
                       equilibration_fs=50.0, spacing_fs=20.0)
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(again, samples, strict=False))
    with pytest.raises(ValueError, match="spacing_fs"):
        md_samples(atom, forces, 5, temperature, seed=3, timestep_fs=0.5, spacing_fs=0.1)


def test_surface_md_runs_on_xtb_and_refuses_a_pyscf_surface():
    water = Atoms("OH2", positions=[[0, 0, 0.119], [0, 0.763, -0.477], [0, -0.763, -0.477]])
    md = SurfaceMD(temperature_K=500.0, timestep_fs=0.5, friction_per_fs=0.01, equilibration_fs=10.0, spacing_fs=5.0)
    samples, calls, cpu = surface_md_samples(water, load_fidelity("gfn2-xtb"), 4, md, seed=0)
    assert len(samples) == 4 and calls == 1 + (10 + 4 * 5) / 0.5 and cpu > 0
    moved = [np.abs(s.positions - water.positions).max() for s in samples]
    assert min(moved) > 1e-3 and max(moved) < 0.5  # thermal motion, no blow-up
    with pytest.raises(FidelityError, match="GFN-xTB"):
        surface_md_samples(water, load_fidelity("hf-sto3g"), 4, md, seed=0)
