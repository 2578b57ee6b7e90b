"""The reservoir sample behind herding's campaign target: bounded, uniform over everything seen, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.store.sample import reservoir_step


def test_a_reservoir_below_its_cap_keeps_everything():
    np.testing.assert_array_equal(reservoir_step(0, 0, 3, 5, 0), [0, 1, 2])
    np.testing.assert_array_equal(reservoir_step(3, 3, 2, 5, 0), [0, 1, 2, 3, 4])


def test_the_reservoir_is_a_uniform_sample_of_every_item_seen():
    """Items arrive in batches of 7 (cycles), cap 5: after 28 items each is held with probability 5/28."""
    counts = np.zeros(28)
    for seed in range(4000):
        held = np.zeros(0, dtype=np.int64)
        for batch in range(4):
            new = np.arange(7 * batch, 7 * batch + 7)
            slots = reservoir_step(held.size, 7 * batch, 7, 5, (seed, batch))
            held = np.concatenate([held, new])[slots]
        assert held.size == 5 and np.unique(held).size == 5
        counts[held] += 1
    share = counts / 4000
    assert np.abs(share - 5 / 28).max() < 4 * np.sqrt(5 / 28 * (1 - 5 / 28) / 4000)


def test_the_reservoir_is_seeded_and_checks_its_input():
    np.testing.assert_array_equal(reservoir_step(5, 40, 10, 5, 1), reservoir_step(5, 40, 10, 5, 1))
    with pytest.raises(ValueError, match="cannot take"):
        reservoir_step(6, 40, 1, 5, 0)
