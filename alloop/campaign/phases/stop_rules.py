"""What the stop rules read from the store: whether a cycle brought nothing new, whether the newest model has been
trained on every label.
"""

from __future__ import annotations

import numpy as np

from alloop.errors import StoreError
from alloop.fidelity import Fidelity
from alloop.store import ledger
from alloop.store.campaign import CampaignStore
from alloop.store.schema import ORIGIN_CODES, FrameFlag

#: the checkpoint metadata key of the ok labels per role a model was trained on (written by the train phase)
N_LABELS_KEY = "n_labels"


def nothing_new(store: CampaignStore, cycle: int) -> str | None:
    """The reason to stop when ``cycle``'s MD frames hold no flagged frame and none that failed a guard (no replica
    was stopped); None otherwise, or when the cycle recorded no MD frames."""
    meta = store.frame_meta(columns=["origin", "cycle", "flags"])
    md = (meta["origin"] == ORIGIN_CODES["md"]) & (meta["cycle"] == cycle)
    if not md.any():
        return None
    flags = meta["flags"][md]
    if np.any(flags & np.uint32(FrameFlag.FLAGGED | FrameFlag.UNSTABLE)):
        return None
    return (f"nothing new in cycle {cycle}: none of its {int(md.sum())} MD frames was flagged and no replica was "
            "stopped by a guard")


def ok_label_counts(store: CampaignStore, fidelities: dict[str, Fidelity]) -> dict[str, int]:
    """role -> labels with status ok in the store (what a training on every label trains on)."""
    return {role: int(ledger.labelled_ids(store, fid, ok_only=True).size) for role, fid in fidelities.items()}


def trained_on_every_label(store: CampaignStore, fidelities: dict[str, Fidelity]) -> bool | None:
    """Whether the newest model was trained on every ok label of the store (False without a model; None for one
    that does not record what it was trained on). Labels are never removed, so counts tell."""
    try:
        _, meta = store.checkpoint(-1, role="model")
    except StoreError:  # no model yet
        return False
    trained_on = meta.get(N_LABELS_KEY)
    if not isinstance(trained_on, dict):
        return None
    return all(int(trained_on.get(role, -1)) >= n for role, n in ok_label_counts(store, fidelities).items())
