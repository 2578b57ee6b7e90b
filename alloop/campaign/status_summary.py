"""What ``alloop status`` prints of a store, and the copy of it the loop keeps in the store for long campaigns.

:func:`compute` reads the parts of the status that cost a pass over the store's frames or labels (counts per
origin, flag and fidelity; evaluation errors; forgetting; labelled basins; predicted errors per cycle; the table per
molecule; reaction events): at 10^6 frames about 1.6 CPU s. The loop stores them as the blob
:data:`BLOB` after each cycle (:func:`save`, one extra commit), stamped with the store's content
(:func:`fingerprint`: every part's committed length and CRC, the blobs' versions, the checkpoints and the config,
the commit's own sequence number, time and note left out). :func:`read` returns the stored copy only while the
store still holds exactly that content, so a frame, label, flag or table row committed after it makes ``status``
compute afresh: a stored copy is never stale, only absent. What the commit record says (last commit, checkpoints,
tables, blobs) is always read from the record.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from alloop.store.campaign import CampaignStore
from alloop.store.summary import STATUS_BLOB as BLOB

#: the status's parts kept in the blob (the rest comes from the commit record)
PARTS = ("frames", "labels", "evaluation", "forgetting", "labelled_basins", "predicted_errors", "molecules",
         "reactions", "md_cost")
#: record keys that change with every commit and say nothing of the content
_VOLATILE = ("seq", "time", "time_unix", "cycle", "phase", "note")


def fingerprint(store: CampaignStore) -> str:
    """SHA-256 of the committed content as the commit record names it, this module's blob aside."""
    record = {k: v for k, v in store.record.items() if k not in _VOLATILE}
    record["blobs"] = {k: v for k, v in record.get("blobs", {}).items() if k != BLOB}
    text = json.dumps({"record": record, "config": store.config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def compute(store: CampaignStore) -> dict[str, Any]:
    """The parts of :data:`PARTS`, computed from the store's committed content."""
    from alloop.campaign.phases import original
    from alloop.evaluation import predicted_errors
    from alloop.evaluation.molecule_table import molecule_status
    from alloop.evaluation.records import status
    from alloop.store.coverage import labelled_basins
    from alloop.store.md_cost import md_cost_status
    from alloop.store.reactions import reaction_status
    from alloop.store.summary import count_frames, count_labels

    return {
        "frames": count_frames(store),
        "labels": count_labels(store),
        "evaluation": status(store),  # per-model errors on the campaign's evaluation set, or null
        "forgetting": original.status(store),  # per-model change against the stored original, or null
        "labelled_basins": labelled_basins(store),  # conformer basins of labelled frames, or null
        "predicted_errors": predicted_errors.status(store),  # per cycle, [] without error models
        "molecules": molecule_status(store),  # per molecule of a campaign of several, or null
        "reactions": reaction_status(store),  # the MD's reaction events per cycle, or null
        "md_cost": md_cost_status(store),  # where the MD's seconds went, or null
    }


def read(store: CampaignStore) -> dict[str, Any] | None:
    """The stored parts if the store's content is still the one they were computed from, else None."""
    blob = store.get_blob(BLOB)
    if blob is None:
        return None
    stored = json.loads(blob, object_hook=_int_keys_back)
    if stored.get("fingerprint") != fingerprint(store) or set(stored.get("parts", {})) != set(PARTS):
        return None
    parts: dict[str, Any] = stored["parts"]
    return parts


def current(store: CampaignStore, *, use_stored: bool = True) -> tuple[dict[str, Any], bool]:
    """The parts of :data:`PARTS` and whether they came from the stored copy (``use_stored``: look for it)."""
    parts = read(store) if use_stored else None
    return (parts, True) if parts is not None else (compute(store), False)


def save(store: CampaignStore) -> None:
    """Compute the parts and commit them as :data:`BLOB` (the store open for writing, nothing pending).
    The commit keeps the previous one's cycle, phase and note."""
    parts = compute(store)
    stamp = fingerprint(store)  # the content they describe: this commit adds only the blob, which it leaves out
    store.put_blob(BLOB, json.dumps({"fingerprint": stamp, "parts": _tag_int_keys(parts)}).encode())
    store.commit(note=store.record.get("note"))


_INT_KEYS = "__int_keys__"


def _tag_int_keys(value: Any) -> Any:
    """``value`` with every dict keyed by integers (cycles) as ``{"__int_keys__": [[key, value], ...]}``, which
    JSON would otherwise turn into string keys."""
    if isinstance(value, dict):
        items = {k: _tag_int_keys(v) for k, v in value.items()}
        if items and all(isinstance(k, int) for k in items):
            return {_INT_KEYS: [[k, v] for k, v in items.items()]}
        return items
    if isinstance(value, (list, tuple)):
        return [_tag_int_keys(v) for v in value]
    return value


def _int_keys_back(obj: dict[str, Any]) -> Any:
    """:func:`json.loads` object hook undoing :func:`_tag_int_keys`."""
    if set(obj) == {_INT_KEYS}:
        return {int(k): v for k, v in obj[_INT_KEYS]}
    return obj
