"""The reactions a campaign's MD found (``md_events``), per cycle, and its labelled frames along them.

A reaction event (:mod:`alloop.md.events`) is a bond broken while one of its atoms formed another. Events that
share an atom (a proton moving from one oxygen to the other) are named by it: ``H5 O4->O0``; others by their
pairs: ``C1-C2 -> C1-C5``. For every atom that moved between two partners, the *coordinate* of that reaction is
which of the two it is nearer to, and the campaign's labelled frames are counted on either side per fidelity: a
model trained on one tautomer only shows here as one side. ``alloop status`` prints these lines where a molecule
without torsional rotors has no basin table; ``alloop report`` shows them as a table. Read from the store when asked
(committed data only; element symbols when the store holds one molecule, atom indices otherwise).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.store.coverage import ROLE_ORDER, fidelity_label, fidelity_roles
from alloop.store.ledger import held_out_ids
from alloop.store.schema import ORIGIN_CODES


def _atom(k: int, numbers: np.ndarray | None) -> str:
    return f"{chemical_symbols[int(numbers[k])]}{k}" if numbers is not None else str(k)


def reaction_name(broken: tuple[int, int], formed: tuple[int, int], numbers: np.ndarray | None = None) -> str:
    """``H5 O4->O0`` for an atom that moved between partners, else ``O4-H5 -> O0-C3``."""
    shared = set(broken) & set(formed)
    if len(shared) == 1:
        (a,) = shared
        (b,), (c,) = set(broken) - shared, set(formed) - shared
        return f"{_atom(a, numbers)} {_atom(b, numbers)}->{_atom(c, numbers)}"
    pair = "-".join
    return (f"{pair(_atom(k, numbers) for k in broken)} -> {pair(_atom(k, numbers) for k in formed)}")


def _one_molecule(store: CampaignStore) -> np.ndarray | None:
    """The atomic numbers of the store's molecule when every frame holds the same atoms, else None."""
    meta = store.frame_meta()
    if meta["frame_id"].size == 0 or np.any(meta["n_atoms"] != meta["n_atoms"][0]):
        return None
    numbers = store.frame_arrays(meta["frame_id"][[0, -1]])["numbers"].reshape(2, -1)
    return numbers[0] if np.array_equal(numbers[0], numbers[1]) else None


def reaction_status(store: CampaignStore) -> dict[str, Any] | None:
    """``{"cycles": {cycle: {"events": n, "reactions": {name: n}}}, "total": n, "moves": [[atom, from, to]],
    "sides": {fidelity: {move label: [nearer from, nearer to]}}, "roles": {...}}``; None when the store holds no
    event. Every cycle whose MD recorded frames is listed (0 events too)."""
    rows = tables.read(store, tables.MD_EVENTS)
    if not rows or rows["cycle"].size == 0:
        return None
    numbers = _one_molecule(store)
    meta = store.frame_meta()
    md_cycles = np.unique(meta["cycle"][meta["origin"] == ORIGIN_CODES["md"]]).tolist()
    broken = np.stack([rows["broken_i"], rows["broken_j"]], axis=1).tolist()
    formed = np.stack([rows["formed_i"], rows["formed_j"]], axis=1).tolist()
    names = [reaction_name(tuple(b), tuple(f), numbers) for b, f in zip(broken, formed, strict=True)]
    cycles: dict[int, dict[str, Any]] = {}
    for c in sorted(set(md_cycles) | set(rows["cycle"].tolist())):
        mine = [n for n, k in zip(names, rows["cycle"].tolist(), strict=True) if k == c]
        cycles[int(c)] = {"events": len(mine), "reactions": dict(Counter(mine).most_common())}
    moves = _moves(broken, formed)
    out: dict[str, Any] = {"cycles": cycles, "total": len(names), "moves": moves}
    if numbers is not None and moves:
        out["sides"], out["roles"] = labelled_sides(store, moves, numbers)
    return out


def _moves(broken: list[list[int]], formed: list[list[int]]) -> list[list[int]]:
    """Each atom that moved between two partners, once: [atom, partner, partner] (partners in increasing order)."""
    found = set()
    for b, f in zip(broken, formed, strict=True):
        shared = set(b) & set(f)
        if len(shared) == 1:
            (a,) = shared
            found.add((a, *sorted((set(b) | set(f)) - shared)))
    return [list(m) for m in sorted(found)]


def move_label(move: list[int], numbers: np.ndarray | None) -> str:
    """``H5 between O0 / O4``."""
    a, b, c = move
    return f"{_atom(a, numbers)} between {_atom(b, numbers)} / {_atom(c, numbers)}"


def labelled_sides(store: CampaignStore, moves: list[list[int]], numbers: np.ndarray
                   ) -> tuple[dict[str, dict[str, list[int]]], dict[str, str]]:
    """Per fidelity (cheap first) and move: the labelled (ok) frames whose moving atom is nearer its first partner,
    and those nearer its second; and each fidelity's campaign role."""
    stored, roles, held = store.fidelities(), fidelity_roles(store), held_out_ids(store)
    out: dict[str, dict[str, list[int]]] = {}
    for h in sorted(stored, key=lambda h: (ROLE_ORDER.index(roles.get(h, "")), stored[h]["name"])):
        table = store.labels(h)
        ids = np.unique(table.frame_id[table.ok])
        ids = ids[~np.isin(ids, held)]  # the automatic test set is not the campaign's labels
        if ids.size == 0:
            continue
        pos = store.frame_arrays(ids)["positions"].reshape(ids.size, len(numbers), 3)
        sides = {}
        for a, b, c in moves:
            nearer_b = np.linalg.norm(pos[:, a] - pos[:, b], axis=1) < np.linalg.norm(pos[:, a] - pos[:, c], axis=1)
            sides[move_label([a, b, c], numbers)] = [int(nearer_b.sum()), int((~nearer_b).sum())]
        out[stored[h]["name"]] = sides
    return out, {stored[h]["name"]: r for h, r in roles.items() if stored[h]["name"] in out}


def format_reactions(status: dict[str, Any] | None) -> list[str]:
    """``alloop status`` lines: events per cycle with their reactions, then the labelled frames along each move."""
    if status is None:
        return []
    parts = []
    for c, row in status["cycles"].items():
        what = ", ".join(f"{name} x{n}" for name, n in row["reactions"].items())
        parts.append(f"{'bootstrap' if c < 0 else f'cycle {c}'} {row['events']}" + (f" ({what})" if what else ""))
    lines = [f"reaction events (a bond broken while its atom formed another; the replica went on): "
             f"{status['total']} in all; {'; '.join(parts)}"]
    for name, sides in status.get("sides", {}).items():
        label = fidelity_label({"roles": status.get("roles", {})}, name)
        lines.append(f"  labelled frames nearer each partner, {label}: "
                     + "; ".join(f"{move} {n[0]} / {n[1]}" for move, n in sides.items()))
    return lines
