import numpy as np
from ase import Atoms

from alloop.campaign.phases.bootstrap import normal_mode_samples, rattle_samples, vibrational_modes
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
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
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
