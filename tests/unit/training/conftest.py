"""Fixtures for training tests (helpers live in training_synthetic.py)."""

from __future__ import annotations

import pytest
from training_synthetic import label_frames, perturbed, truth_potential


@pytest.fixture
def truth():
    return truth_potential()


@pytest.fixture
def mixed_frames(truth):
    """24 labelled frames of water, methane, ethanol and CO (different sizes)."""
    return label_frames(perturbed(["H2O", "CH4", "CH3CH2OH", "CO"], 24, seed=0), truth)
