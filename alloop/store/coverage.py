"""Where a campaign's labels are: the conformer basins of its labelled frames, per fidelity and cycle.

For a campaign of one molecule with rotatable bonds (:func:`alloop.conformers.find_rotors`, symmetric
tops left out), every frame with an ok label is put in its basin combination
(:func:`alloop.conformers.frame_basins`: trans / gauche+ / gauche- of each rotor) and counted per
fidelity and per cycle (the bootstrap is cycle -1). A loop stuck in its first basin shows here as one
column; ``alloop status`` prints it. Computed from the store when asked (no model, no table): the
labels and frames it reads are committed data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alloop.conformers import basin_name, find_rotors, frame_basins
from alloop.store.campaign import CampaignStore


def labelled_basins(store: CampaignStore) -> dict[str, Any] | None:
    """``{"rotors": [...], "basins": [...], "fidelities": {name: {cycle: [count per basin]}}}``, or None when the
    store has no labels, holds more than one molecule, or its molecule has no rotatable bond."""
    meta = store.frame_meta()
    if meta["frame_id"].size == 0:
        return None
    first = store.get_frames([int(meta["frame_id"][0])])[0]
    rotors = [r for r in find_rotors(first) if not r.symmetric]
    if not rotors or np.any(meta["n_atoms"] != len(first)):
        return None
    names = [basin_name(code, len(rotors)) for code in range(3 ** len(rotors))]
    out: dict[str, dict[int, list[int]]] = {}
    for info in sorted(store.fidelities().values(), key=lambda f: f["name"]):
        table = store.labels(info["name"])
        ids = np.unique(table.frame_id[table.ok])
        if ids.size == 0:
            continue
        frames = store.get_frames(ids)
        if any(not np.array_equal(a.numbers, first.numbers) for a in frames):
            return None
        codes = frame_basins(np.array([a.positions for a in frames]), rotors)
        cycles = meta["cycle"][ids]
        out[info["name"]] = {int(c): np.bincount(codes[cycles == c], minlength=len(names)).tolist()
                             for c in np.unique(cycles)}
    if not out:
        return None
    return {"rotors": [r.label for r in rotors], "basins": names, "fidelities": out}


def format_basins(coverage: dict[str, Any] | None) -> list[str]:
    """``alloop status`` lines: per fidelity, the labelled frames of each cycle by basin."""
    if coverage is None:
        return []
    lines = [f"labelled frames by conformer basin ({', '.join(coverage['rotors'])}: "
             f"{' / '.join(coverage['basins'])})"]
    for name, per_cycle in coverage["fidelities"].items():
        total = np.sum(list(per_cycle.values()), axis=0)
        parts = [f"{'bootstrap' if c < 0 else f'cycle {c}'} {'/'.join(map(str, n))}" for c, n in per_cycle.items()]
        share = " / ".join(f"{100 * x / max(total.sum(), 1):.0f}" for x in total)
        lines.append(f"  {name:<12} {', '.join(parts)}; all {share} %")
    return lines
