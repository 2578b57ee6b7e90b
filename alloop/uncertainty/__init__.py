"""Uncertainty: Q-residual / Hotelling T^2 on latent features, limits, bias, frame selection."""

from alloop.uncertainty.bias_score import (
    bias_per_frame,
    committee_deviation,
    frame_offsets,
    model_bias,
    model_disagreement,
    predict_forces,
)
from alloop.uncertainty.pca import PCA
from alloop.uncertainty.qresidual import FrameScores, QResidualModel, QResidualSettings
from alloop.uncertainty.selection import (
    Selection,
    farthest_point_sampling,
    frame_descriptors,
    select_expensive,
    select_frames,
)

__all__ = [
    "PCA",
    "FrameScores",
    "QResidualModel",
    "QResidualSettings",
    "Selection",
    "bias_per_frame",
    "farthest_point_sampling",
    "frame_descriptors",
    "frame_offsets",
    "model_bias",
    "model_disagreement",
    "committee_deviation",
    "predict_forces",
    "select_expensive",
    "select_frames",
]
