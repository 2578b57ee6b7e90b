"""``selection.pick_beta``: expensive picks drawn with probability ~ (score x distance)^beta instead of the arg-max."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.config.exploration import SelectionConfig
from alloop.errors import AlloopError
from alloop.uncertainty.expensive_pick import pick_expensive
from alloop.uncertainty.pick_draw import Draw
from alloop.uncertainty.selection import select_expensive


def _pool(seed: int = 0, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.uniform(0.01, 0.1, n)
    score[[3, 17]] = np.nan  # failed cheap labels: never drawn
    return score, rng.standard_normal((n, 4))


def test_a_large_beta_is_the_arg_max_and_a_drawn_pick_is_seeded():
    score, x = _pool()
    greedy = select_expensive(score, 6, x)
    sharp = select_expensive(score, 6, x, draw=Draw(200.0, np.random.default_rng(1)))
    assert sharp.indices.tolist() == greedy.indices.tolist()
    assert all(", drawn with p = " in r for r in sharp.reasons)
    a, b = (select_expensive(score, 6, x, draw=Draw(1.0, np.random.default_rng(7))) for _ in range(2))
    assert a.indices.tolist() == b.indices.tolist()  # one seed, one pick
    assert len(set(a.indices.tolist())) == 6 and not set(a.indices.tolist()) & {3, 17}


def test_beta_zero_draws_uniformly_and_beta_one_follows_the_score():
    """Without descriptors each draw is ~ score^beta: at 0 every valid frame is as likely as any; at 1 the first
    draw's frequencies follow the scores (chi-square-free check: the ratio of the two extremes)."""
    score = np.array([0.1, 0.2, 0.4, np.nan, 0.8])
    rng = np.random.default_rng(0)
    counts = {0.0: np.zeros(5), 1.0: np.zeros(5)}
    for beta in counts:
        draw = Draw(beta, rng)
        for _ in range(4000):
            counts[beta][select_expensive(score, 1, draw=draw).indices[0]] += 1
    assert counts[0.0][3] == counts[1.0][3] == 0
    assert np.allclose(counts[0.0][[0, 1, 2, 4]] / 4000, 0.25, atol=0.03)
    assert np.allclose(counts[1.0][[0, 1, 2, 4]] / 4000, np.array([0.1, 0.2, 0.4, 0.8]) / 1.5, atol=0.03)


def test_the_draw_respects_the_budget_the_preselected_frames_and_the_rules():
    score, x = _pool(2)
    drawn, name = pick_expensive(score, "predicted force error", "predicted-error", 5, x, None,
                                 draw=Draw(2.0, np.random.default_rng(0)))
    assert len(drawn.indices) == 5 and name == "drawn with p ~ (predicted error x distance)^2"
    _, name = pick_expensive(score, "predicted force error", "predicted-error", 5, None, None,
                             draw=Draw(2.0, np.random.default_rng(0)))
    assert name == "drawn with p ~ predicted force error^2"
    # coverage draws nothing: pick_expensive ignores the draw, select_expensive refuses it
    _, name = pick_expensive(score, "B", "coverage", 3, x, x[:2], draw=Draw(1.0, np.random.default_rng(0)))
    assert "drawn" not in name
    with pytest.raises(AlloopError, match="draws nothing"):
        select_expensive(score, 3, x, labelled=x[:2], rule="coverage", draw=Draw(1.0, np.random.default_rng(0)))
    with pytest.raises(AlloopError, match="pick_beta must be a finite number >= 0"):
        Draw(-1.0, np.random.default_rng(0))


def test_the_config_refuses_a_draw_with_coverage():
    assert SelectionConfig().pick_beta is None
    assert SelectionConfig(pick_beta=2.0).pick_beta == 2.0
    with pytest.raises(ValueError, match="expensive_pick: coverage takes the farthest frame"):
        SelectionConfig(expensive_pick="coverage", pick_beta=1.0)
    with pytest.raises(ValueError):
        SelectionConfig(pick_beta=-0.5)
