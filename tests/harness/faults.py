"""Fault injection for tests of the loop and its schedulers: labellers that fail on purpose (deterministically), that
take longer than they compute, or that kill their own worker process."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import time

from ase import Atoms

from alloop.fidelity import Fidelity
from alloop.labeling.base import Labeler
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


class DelayedLabeler:
    """Wraps a labeler and sleeps ``delay_s`` before each label (to test schedulers with real labels).

    The delay counts in the result's ``wall_seconds``: it stands for a label that costs that much more. With
    ``wall_s`` the result reports that wall time instead of the measured one (a stated cost), so a scheduler that
    sizes its tasks by label wall time sees the same costs on a fast, a slow or a loaded machine.
    """

    def __init__(self, inner: Labeler, delay_s: float, wall_s: float | None = None) -> None:
        if delay_s < 0 or (wall_s is not None and wall_s <= 0):
            raise ValueError("delay_s must be >= 0 and wall_s > 0")
        self.inner = inner
        self.delay_s = float(delay_s)
        self.wall_s = wall_s

    @property
    def fidelity(self) -> Fidelity:
        return self.inner.fidelity

    def label(self, atoms: Atoms) -> LabelResult:
        time.sleep(self.delay_s)
        result = self.inner.label(atoms)
        wall = self.wall_s if self.wall_s is not None else result.wall_seconds + self.delay_s
        return dataclasses.replace(result, wall_seconds=wall)


class KillingLabeler:
    """Labels like ``inner``, but SIGKILLs its own process for structures with ``info['kill_worker']`` set.

    For testing how a scheduler survives worker deaths (a "poison" frame).
    """

    def __init__(self, inner: Labeler) -> None:
        self.inner = inner

    @property
    def fidelity(self) -> Fidelity:
        return self.inner.fidelity

    def label(self, atoms: Atoms) -> LabelResult:
        if atoms.info.get("kill_worker"):
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.label(atoms)
