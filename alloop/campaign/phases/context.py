"""What a campaign phase receives from the driver: a small context, not the whole ``Campaign``.

Phases (explore, label, select_expensive, train) read their typed settings
(:mod:`alloop.campaign.phases.settings`, built once from the validated config), write
the store the driver hands them, submit tasks to the client and report
progress; they never import the driver and never read the raw config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from ase import Atoms

from alloop.campaign.execution.worker_losses import WorkerLosses, record_losses
from alloop.campaign.phases.settings import CampaignSettings
from alloop.errors import AlloopError
from alloop.fidelity import Fidelity
from alloop.store import ledger
from alloop.store.campaign import CampaignStore
from alloop.store.sample import recent_sample
from alloop.system.molecules import Molecules


class ProgressSink(Protocol):
    """What a phase reports its progress to: the loop's display (:class:`alloop.campaign.loop.progress.Progress`, a
    room above the phases, which the phases therefore do not import) or anything with the same ``update``."""

    def update(self, *, spent_delta: float = 0.0, last_status: tuple[str, str] | None = None, **fields: Any) -> None:
        ...

#: the store blob of the newest Q-residual model (written by training, read by exploration)
UNCERTAINTY_BLOB = "uncertainty"


@dataclass(frozen=True)
class PhaseContext:
    """The campaign's settings, store, Dask client, input structures, fidelities by role, slots, progress, log
    and worker-loss reader."""

    settings: CampaignSettings
    store: CampaignStore
    client: Any
    structures: list[Atoms]
    fidelities: dict[str, Fidelity]
    slots: int  # worker threads of the cluster
    progress: ProgressSink
    log: Callable[[str], None]
    losses: WorkerLosses | None = None  # the scheduler's worker removals, recorded at commits

    def record_losses(self, cycle: int, phase: str) -> None:
        """Log the Dask workers lost since the last call and add them to the store (committed by the next commit)."""
        record_losses(self.store, self.losses, cycle, phase, self.log)

    @cached_property
    def molecules(self) -> Molecules:
        """The input structures grouped by molecule (formula); replicas and bootstrap samples are dealt over them."""
        return Molecules.of(self.structures)

    def replica_start(self, replica: int) -> Atoms:
        """Replica ``replica``'s starting structure: its topology, its guards' reference and where it restarts."""
        return self.structures[self.molecules.structure(replica)]

    def replica_temperature(self, replica: int) -> float:
        """Replica ``replica``'s bath temperature: the ladder's rung of its rank within its molecule."""
        return self.settings.explore.replica_temperature(self.molecules.place(replica)[1])

    def reference_frames(self, role: str, cycle: int) -> list[Atoms]:
        """The frames with an ok label of ``role`` that ``cycle``'s pick measures distances from: at most
        ``selection.reference_frames`` of them, the newest all in (:func:`alloop.store.sample.recent_sample`)."""
        ids = ledger.labelled_ids(self.store, self.fidelities[role], ok_only=True)
        salt = 2 + sorted(self.fidelities).index(role)  # 0 and 1 draw the training's warm samples
        keep = recent_sample(self.store, ids, self.settings.selection.reference_frames, cycle, (self.settings.seed, salt))
        return self.store.get_frames(ids[keep])

    @property
    def elements(self) -> list[int]:
        """The atomic numbers of the input structures, sorted."""
        return sorted({int(z) for a in self.structures for z in a.numbers})


def model_version(store: CampaignStore, role: str = "model", first: bool = False) -> int:
    """The newest (or with ``first`` the oldest) checkpoint version of ``role`` in the store."""
    versions = [int(c["version"]) for c in store.checkpoints() if c.get("role") == role]
    if not versions:
        raise AlloopError("the store holds no model yet")
    return versions[0] if first else versions[-1]
