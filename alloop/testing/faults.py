"""Fault injection for tests of the loop: labellers that fail on purpose, deterministically."""

from __future__ import annotations

import hashlib

from ase import Atoms

from alloop.fidelity import Fidelity
from alloop.labeling.factory import labeler_for
from alloop.labeling.result import LabelResult, LabelStatus


class FailingLabeler:
    """The fidelity's labeller (PySCF or xTB), reporting ``scf_not_converged`` for about one frame in ``every``.

    Which frames fail depends only on the positions (a hash), so reruns agree
    and Dask may run a task twice.
    """

    def __init__(self, fidelity: Fidelity, every: int = 3, threads: int = 1) -> None:
        self.inner = labeler_for(fidelity, threads=threads)
        self.every = int(every)

    @property
    def fidelity(self) -> Fidelity:
        return self.inner.fidelity

    def fails(self, atoms: Atoms) -> bool:
        digest = hashlib.sha256(atoms.positions.tobytes()).digest()
        return int.from_bytes(digest[:4], "little") % self.every == 0

    def label(self, atoms: Atoms) -> LabelResult:
        if self.fails(atoms):
            fid = self.fidelity
            return LabelResult.failure(len(atoms), LabelStatus.SCF_NOT_CONVERGED, "injected failure (test)",
                                       fidelity_name=fid.name, fidelity_hash=fid.hash())
        return self.inner.label(atoms)


def failing_factory(every: int = 3):
    """A ``labeler_factory`` for LabelingPool / Campaign whose labellers fail one frame in ``every``."""
    return _Factory(every)


class _Factory:
    def __init__(self, every: int) -> None:
        self.every = every

    def __call__(self, fidelity: Fidelity) -> FailingLabeler:
        return FailingLabeler(fidelity, self.every)
