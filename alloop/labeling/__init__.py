"""Labelling: structures in, energies and forces (or a recorded failure) out."""

from alloop.labeling.base import Labeler
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.labeling.pyscf_methods import check_fidelity
from alloop.labeling.result import LabelResult, LabelStatus

__all__ = ["Labeler", "LabelResult", "LabelStatus", "PySCFLabeler", "check_fidelity"]
