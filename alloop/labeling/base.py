"""The Labeler protocol: one structure in, one LabelResult out, failures as data."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ase import Atoms

from alloop.fidelity import Fidelity
from alloop.labeling.result import LabelResult


@runtime_checkable
class Labeler(Protocol):
    """Labels structures at one fidelity.

    ``label`` returns energy (eV) and forces (eV/Angstrom) with status ``ok``,
    or a LabelResult with another status and a reason; it raises only for
    programming errors and for structures the fidelity cannot describe
    (FidelityError). It is a deterministic function of its input, does not
    modify ``atoms``, and writes no files. Labelers are picklable (they travel
    to Dask workers).

    Adapters: ``PySCFLabeler`` (family ``pyscf``), ``PeriodicPySCFLabeler`` (``pyscf-pbc``) and ``XTBLabeler`` (``xtb``,
    tblite); ``alloop.labeling.factory.labeler_for`` picks one from a fidelity,
    and ``alloop.labeling.common`` gives them the same provenance, cost
    accounting and statuses.
    """

    @property
    def fidelity(self) -> Fidelity: ...

    def label(self, atoms: Atoms) -> LabelResult: ...
