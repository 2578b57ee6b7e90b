"""Labelling: structures in, energies and forces (or a recorded failure) out."""

from alloop.labeling.base import Labeler
from alloop.labeling.factory import labeler_for
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.labeling.pyscf_methods import check_fidelity
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.labeling.xtb_labeler import XTBLabeler

__all__ = ["Labeler", "LabelResult", "LabelStatus", "PySCFLabeler", "XTBLabeler", "check_fidelity", "labeler_for"]
