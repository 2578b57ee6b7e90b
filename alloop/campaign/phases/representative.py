"""The representative quota of a cycle's picks (``selection.exploration`` < 1): what kernel herding matches.

Each cycle, ``round((1 - exploration) x n)`` of the cheap pick (n: the cycle's cheap quota) and of the expensive pick
are chosen by kernel herding (:func:`alloop.uncertainty.herding.kernel_herding`) among the cycle's MD frames at the
campaign temperature (``md.temperature_K``; ladder replicas at other temperatures are not candidates), conditioned
on the frames labelled already at that fidelity (described by the current model, whether or not
``selection.memory`` is on). The target ensemble is either those same frames (``selection.herding_target: cycle``)
or a reservoir sample (Algorithm R, :func:`alloop.store.sample.reservoir_step`) of at most
``selection.herding_reservoir_frames`` of every such frame of the campaign so far, this cycle's included
(``campaign``), described by the current model in the MD task. The loop's MD segments have no burn-in: every frame
recorded at the campaign temperature counts.

The explore phase records the target's frame ids per cycle (table ``herding_target``) and the reservoir (blob
``herding_reservoir``), committed with the cycle's frames; the expensive pick reads the cycle's target back.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from alloop.campaign.phases.context import PhaseContext
from alloop.campaign.phases.settings import SelectionSettings
from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.sample import reservoir_step
from alloop.uncertainty.herding import kernel_herding, representative_quota
from alloop.uncertainty.selection import Selection

RESERVOIR_BLOB = "herding_reservoir"
#: the reservoir's seed salt (with the campaign seed and the cycle)
RESERVOIR_SALT = 7


def herding_on(selection: SelectionSettings) -> bool:
    return selection.exploration < 1.0


def target_on(selection: SelectionSettings) -> bool:
    """Whether each cycle records its MD target: for herding, or for the expensive pick's information density."""
    return herding_on(selection) or selection.density_weight is not None


def load_reservoir(store: CampaignStore) -> tuple[np.ndarray, int]:
    """The reservoir's frame ids (slot order) and how many frames it has seen."""
    blob = store.get_blob(RESERVOIR_BLOB)
    if blob is None:
        return np.zeros(0, dtype=np.int64), 0
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return data["ids"].astype(np.int64), int(data["n_seen"])


def reservoir_frames(ctx: PhaseContext) -> list[Atoms]:
    """The reservoir's frames (slot order), for the MD task to describe under the current model."""
    ids, _ = load_reservoir(ctx.store)
    return ctx.store.get_frames(ids) if ids.size else []


@dataclass
class CycleTarget:
    """A cycle's herding target: its candidate rows (frames at the campaign temperature) and the target's
    descriptors; for a campaign target, the reservoir's slots after this cycle (items: ``held`` then the rows)."""

    rows: np.ndarray  # rows of the cycle's frames at the campaign temperature
    descriptors: np.ndarray  # [P, D]
    name: str
    slots: np.ndarray | None = None  # campaign: reservoir items after the update
    held: np.ndarray | None = None  # campaign: the reservoir's frame ids before
    n_seen: int = 0


def cycle_target(ctx: PhaseContext, cycle: int, replica: np.ndarray, descriptors: np.ndarray,
                 reservoir_descriptors: np.ndarray | None) -> CycleTarget | None:
    """The herding target of a cycle whose MD frames have ``replica`` [M] and ``descriptors`` [M, D]; None when no
    frame ran at the campaign temperature."""
    s = ctx.settings
    rows = np.flatnonzero(at_campaign_temperature(ctx, replica))
    if s.selection.herding_target == "cycle":
        return CycleTarget(rows, descriptors[rows], f"the cycle's {rows.size} MD frames") if rows.size else None
    held, n_seen = load_reservoir(ctx.store)
    slots = reservoir_step(held.size, n_seen, rows.size, s.selection.herding_reservoir_frames,
                           (s.seed, RESERVOIR_SALT, cycle))
    if slots.size == 0:
        return None
    old = descriptors[:0] if reservoir_descriptors is None else reservoir_descriptors
    pool = np.concatenate([old.reshape(len(old), descriptors.shape[1]), descriptors[rows]])
    return CycleTarget(rows, pool[slots], f"a reservoir of {slots.size} of the campaign's {n_seen + rows.size} "
                       "MD frames", slots, held, n_seen)


def cheap_quota(ctx: PhaseContext, target: CycleTarget | None, meta: dict[str, np.ndarray], descriptors: np.ndarray,
                labelled: np.ndarray | None, n_cheap: int) -> Selection | None:
    """The cheap pick's herded frames (rows of the cycle's frames, ``meta``: their replica and md_step), at least
    ``selection.min_step_spacing`` steps apart within a replica; None without a target or a quota."""
    quota = representative_quota(ctx.settings.selection.exploration, n_cheap)
    if target is None or quota == 0:
        return None
    allowed = np.zeros(len(descriptors), dtype=bool)
    allowed[target.rows] = True
    replica, step, spacing = meta["replica"], meta["md_step"], ctx.settings.selection.min_step_spacing

    def blocks(i: int) -> np.ndarray:
        return (replica == replica[i]) & (np.abs(step - step[i]) < spacing)

    herded = kernel_herding(target.descriptors, quota, candidates=descriptors, labelled=labelled, allowed=allowed,
                            blocks=blocks)
    return Selection(herded.indices, herded.reasons(target.name))


def record_target(ctx: PhaseContext, cycle: int, target: CycleTarget | None, ids: np.ndarray) -> None:
    """Add the target's frame ids (``ids``: the cycle's new frame ids) to ``herding_target`` and store the updated
    reservoir (committed with the cycle's frames)."""
    if target is None:
        return
    if target.slots is None:
        chosen = ids[target.rows]
    else:
        assert target.held is not None
        chosen = np.concatenate([target.held, ids[target.rows]])[target.slots]
        buf = io.BytesIO()
        np.savez(buf, ids=chosen.astype(np.int64), n_seen=np.int64(target.n_seen + target.rows.size))
        ctx.store.put_blob(RESERVOIR_BLOB, buf.getvalue())
    tables.append(ctx.store, tables.HERDING_TARGET, cycle=np.full(chosen.size, cycle), frame_id=chosen)


def target_frames(ctx: PhaseContext, cycle: int) -> list[Atoms]:
    """The frames ``cycle``'s herding matched (empty when it recorded none)."""
    rows = tables.read(ctx.store, tables.HERDING_TARGET)
    if not rows:
        return []
    ids = rows["frame_id"][rows["cycle"] == cycle]
    return ctx.store.get_frames(ids) if ids.size else []


def at_campaign_temperature(ctx: PhaseContext, replica: np.ndarray) -> np.ndarray:
    """Which frames of replicas ``replica`` [M] ran at the campaign temperature (md.temperature_K)."""
    temperature = ctx.settings.explore.temperature_K
    return np.array([r >= 0 and ctx.replica_temperature(int(r)) == temperature for r in replica], dtype=bool)


def expensive_quota(ctx: PhaseContext, frame_ids: np.ndarray, target: np.ndarray | None,
                    candidates: np.ndarray | None, labelled: np.ndarray | None, score: np.ndarray,
                    budget: int) -> Selection | None:
    """The expensive pick's herded frames among the candidates (frames ``frame_ids``, descriptors ``candidates``)
    that ran at the campaign temperature and have a finite ``score``; None without a target or a quota."""
    quota = representative_quota(ctx.settings.selection.exploration, budget)
    if target is None or candidates is None or quota == 0:
        return None
    allowed = np.isfinite(score) & at_campaign_temperature(ctx, ctx.store.frame_meta(frame_ids)["replica"])
    herded = kernel_herding(target, quota, candidates=candidates, labelled=labelled, allowed=allowed)
    return Selection(herded.indices, herded.reasons(f"the cycle's herding target of {len(target)} MD frames"))
