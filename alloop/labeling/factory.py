"""The labeller of a fidelity: its method family picks the adapter behind the ``Labeler`` protocol."""

from __future__ import annotations

from alloop.fidelity import Fidelity
from alloop.labeling.base import Labeler


def labeler_for(fidelity: Fidelity, threads: int = 1) -> Labeler:
    """A labeller for ``fidelity`` with ``threads`` compute threads per label: PySCF (molecules), periodic PySCF
    (``pyscf-pbc``), or tblite for xtb.

    FidelityError if the adapter cannot label at this fidelity (e.g. density-fitted MP2 has no gradient).
    """
    if not isinstance(fidelity, Fidelity):
        raise TypeError(f"expected a Fidelity, not {type(fidelity).__name__}")
    if fidelity.family == "xtb":
        from alloop.labeling.xtb_labeler import XTBLabeler

        return XTBLabeler(fidelity, threads=threads)
    if fidelity.periodic:
        from alloop.labeling.pyscf_pbc import PeriodicPySCFLabeler

        return PeriodicPySCFLabeler(fidelity, threads=threads)
    from alloop.labeling.pyscf_labeler import PySCFLabeler

    return PySCFLabeler(fidelity, threads=threads)
