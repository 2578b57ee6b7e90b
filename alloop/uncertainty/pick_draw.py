"""Drawn picks (``selection.pick_beta``): the expensive pick's frames drawn at random, each with probability
proportional to its gain^beta, instead of taken by the arg-max of the gain (score x distance, or the score alone);
used by :func:`alloop.uncertainty.selection.select_expensive`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from alloop.errors import AlloopError


@dataclass(frozen=True)
class Draw:
    """Picks drawn at random instead of taken by the arg-max (``selection.pick_beta``): each pick with probability
    proportional to ``gain^beta`` among the frames left, ``gain`` the rule's product (score x distance, or the score
    alone before any distance exists); frames of gain 0 only when every gain left is 0 (then uniformly)."""

    beta: float
    rng: np.random.Generator

    def __post_init__(self) -> None:
        if not (self.beta >= 0 and np.isfinite(self.beta)):
            raise AlloopError(f"pick_beta must be a finite number >= 0, got {self.beta}")

    def pick(self, gain: np.ndarray, open_: np.ndarray) -> tuple[int, float]:
        """One draw among the ``open_`` frames: its index and the probability it had."""
        g = np.where(open_, np.nan_to_num(gain, nan=0.0, posinf=np.finfo(float).max), 0.0)
        positive = open_ & (g > 0)
        if not positive.any():
            p = open_ / open_.sum()
        else:
            log_w = np.full(g.shape, -np.inf)
            log_w[positive] = self.beta * np.log(g[positive])
            w = np.exp(log_w - log_w.max())  # frames of gain 0 are out, whatever beta
            p = w / w.sum()
        i = int(self.rng.choice(g.size, p=p))
        return i, float(p[i])

    def sequence(self, score: np.ndarray, n: int, chosen: list[int]) -> Iterator[tuple[int, float]]:
        """Up to ``n`` frames drawn one by one with probability ~ score^beta (NaN and ``chosen`` frames never), each
        with the probability it had."""
        open_ = np.isfinite(score)
        open_[chosen] = False
        for _ in range(n):
            if not open_.any():
                return
            i, p = self.pick(np.maximum(np.nan_to_num(score), 0.0), open_)
            open_[i] = False
            yield i, p
