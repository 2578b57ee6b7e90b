"""Fidelity fixtures for the store tests."""

from __future__ import annotations

import pytest

from alloop.fidelity import load_fidelity


@pytest.fixture
def cheap():
    return load_fidelity("hf-sto3g")


@pytest.fixture
def expensive():
    return load_fidelity("mp2-dz")
