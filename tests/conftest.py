"""Shared fixtures: small molecules, a temporary store directory, thread pinning."""

from __future__ import annotations

import os

import pytest
import torch

# Dask's nanny may leave OMP/MKL threads at 1 in the environment; tests pin their own.
torch.set_num_threads(int(os.environ.get("ALLOOP_TEST_THREADS", "1")))


@pytest.fixture
def water():
    from ase.build import molecule

    return molecule("H2O")


@pytest.fixture
def ethanol():
    from ase.build import molecule

    return molecule("CH3CH2OH")
