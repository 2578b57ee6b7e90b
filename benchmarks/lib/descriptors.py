"""Frames described as the loop's selection describes them: the per-element mean of a model's latent features
(:func:`alloop.uncertainty.selection.frame_descriptors`), here under a model preset's own weights (the pretrained
SevenNet-0 by default), so that every selection of a benchmark is compared in one fixed space."""

from __future__ import annotations

import numpy as np

from alloop.potentials.inference import predict_features
from alloop.potentials.registry import build_model, model_preset
from alloop.uncertainty.selection import frame_descriptors


def describe(frames: list, model_name: str = "sevennet-0") -> np.ndarray:
    """The frames' descriptors [M, elements x F] under the model preset (pretrained weights for sevennet-0)."""
    elements = sorted({int(z) for a in frames for z in a.numbers})
    preset = dict(model_preset(model_name))
    model = build_model(preset.pop("architecture"), elements, **preset)
    model.eval()
    numbers = np.concatenate([a.numbers for a in frames])
    ptr = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    return frame_descriptors(numbers, predict_features(model, frames), ptr, elements)
