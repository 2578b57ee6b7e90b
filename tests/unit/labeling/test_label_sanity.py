"""The consistency checks that turn a finished label into ``inconsistent``; thread pinning."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.fidelity import load_fidelity
from alloop.labeling.sanity import SanityLimits, consistency_problem
from alloop.labeling.threads import compute_threads, set_compute_threads

GOOD = np.array([[0.5, 0.0, -0.2], [-0.25, 0.1, 0.1], [-0.25, -0.1, 0.1]])


def test_limits_follow_method_and_grid():
    assert SanityLimits.for_fidelity(load_fidelity("hf-sto3g")).net_force_eV_per_A == 1e-3
    assert SanityLimits.for_fidelity(load_fidelity("b3lyp-svp")).net_force_eV_per_A == 0.1
    coarse = load_fidelity({"preset": "b3lyp-svp", "grid_level": 0})
    assert SanityLimits.for_fidelity(coarse).net_force_eV_per_A == 1.0
    assert SanityLimits.for_fidelity(coarse, max_force_eV_per_A=5.0).max_force_eV_per_A == 5.0
    with pytest.raises(ValueError, match="must be positive"):
        SanityLimits.for_fidelity(coarse, net_force_eV_per_A=0.0)


def test_consistency_problems_are_named():
    limits = SanityLimits()
    assert consistency_problem(-2000.0, GOOD, limits) is None
    assert "non-finite energy" in consistency_problem(float("inf"), GOOD, limits)
    bad = GOOD.copy()
    bad[1, 2] = np.nan
    assert "1 non-finite force" in consistency_problem(-2000.0, bad, limits)
    huge = GOOD.copy()
    huge[0, 0], huge[1, 0] = 2000.0, -2000.0
    assert "force on atom 0" in consistency_problem(-2000.0, huge, limits)
    drift = GOOD + 0.01
    assert "net force" in consistency_problem(-2000.0, drift, limits)
    assert consistency_problem(-2000.0, drift, SanityLimits(net_force_eV_per_A=0.1)) is None


def test_compute_threads_are_pinned():
    try:
        set_compute_threads(2)
        counts = compute_threads()
        assert counts["pyscf_omp"] == 2
        assert any(v == 2 for k, v in counts.items() if "openblas" in k)
        set_compute_threads(1)
        assert set(compute_threads().values()) == {1}
    finally:
        set_compute_threads(1)
    with pytest.raises(ValueError, match="positive integer"):
        set_compute_threads(0)
