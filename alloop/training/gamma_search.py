"""ASTEROID's choice of gamma, the scale of the bias weights ``w_j = exp(-B_j / gamma)``
(:mod:`alloop.training.bias_weights`): fixed at ``gamma_grid[0] x median B`` for a one-element grid, else searched
(:func:`select_gamma`): every candidate runs stage 2 (and stage 3 with ``gamma_selection="finetune"``) and is scored
by its expensive force MAE on a selection split carved out of the expensive training frames
(:mod:`alloop.training.asteroid`, "Choosing gamma").
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from alloop.errors import AlloopError
from alloop.evaluation.metrics import evaluate_model
from alloop.training.bias_weights import bias_weights, gamma_candidates
from alloop.training.data import FrameDataset
from alloop.training.stages import AsteroidSettings, MapFn, StartModel
from alloop.training.trainer import Logger, train


def select_gamma(
    bias: np.ndarray,
    cheap_train_idx: np.ndarray,
    cheap_val_idx: np.ndarray,
    cheap: FrameDataset,
    exp_train: FrameDataset,
    start_model: StartModel,
    settings: AsteroidSettings,
    log: Logger | None = None,
    map_fn: MapFn = map,
    replay: FrameDataset | None = None,
) -> tuple[float, dict[float, float]]:
    """Gamma from ``gamma_grid x median(B)``: fixed for one factor, else scored on a selection split (module docstring)."""
    s = settings
    candidates = gamma_candidates(bias, s.gamma_grid)
    if len(candidates) == 1:
        if log:
            log(f"gamma fixed at {candidates[0]:.4g} eV/A ({s.gamma_grid[0]:g} x median B)")
        return candidates[0], {}
    if len(exp_train) < 4:
        raise AlloopError(f"a gamma search needs at least 4 expensive training frames, got {len(exp_train)}; "
                          "use a one-element gamma grid")
    sel_train, sel_val, _, _ = exp_train.split(s.val_fraction, s.split_key + 7)
    score = partial(
        score_gamma, bias=bias, cheap_train=cheap.subset(cheap_train_idx), cheap_val=cheap.subset(cheap_val_idx),
        cheap_train_idx=cheap_train_idx, cheap_val_idx=cheap_val_idx, exp_train=sel_train, exp_val=sel_val,
        start_model=start_model, settings=s, replay=replay,
    )
    scores = dict(zip(candidates, (float(x) for x in map_fn(score, candidates)), strict=True))
    if log:
        for k, gamma in enumerate(candidates):
            log(f"gamma {gamma:.4g} eV/A ({s.gamma_grid[k]:g} x median B): selection-split F-MAE {scores[gamma]:.4f} eV/A "
                f"({len(sel_val)} frames)")
    best = min(scores, key=scores.__getitem__)
    if log:
        log(f"chosen gamma {best:.4g} eV/A")
    return best, scores


def score_gamma(
    gamma: float,
    *,
    bias: np.ndarray,
    cheap_train: FrameDataset,
    cheap_val: FrameDataset,
    cheap_train_idx: np.ndarray,
    cheap_val_idx: np.ndarray,
    exp_train: FrameDataset,
    exp_val: FrameDataset,
    start_model: StartModel,
    settings: AsteroidSettings,
    replay: FrameDataset | None = None,
) -> float:
    """One gamma candidate: bias-weighted stage 2 (+ fine-tune), force MAE on the selection split ``exp_val``."""
    s = settings
    w = bias_weights(bias, gamma)
    model = start_model(s.seed + 2, cheap_train)
    stage2 = replace(s.stage2, seed=s.seed + 2)
    if s.gamma_epochs is not None:
        stage2 = replace(stage2, max_epochs=s.gamma_epochs, max_steps=None)
    train(model, cheap_train.with_weights(w[cheap_train_idx]), cheap_val.with_weights(w[cheap_val_idx]), stage2,
          replay=replay)
    if s.gamma_selection == "finetune":
        stage3 = replace(s.stage3, seed=s.seed + 3)
        if s.gamma_finetune_epochs is not None:
            stage3 = replace(stage3, max_epochs=s.gamma_finetune_epochs, max_steps=None)
        train(model, exp_train, exp_val, stage3, replay=replay)
    return evaluate_model(model, exp_val)["force_mae_eV_per_A"]
