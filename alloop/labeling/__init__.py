"""Labelling: structures in, energies and forces (or a recorded failure) out."""

from alloop.labeling.result import LabelResult, LabelStatus

__all__ = ["LabelResult", "LabelStatus"]
