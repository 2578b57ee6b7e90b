"""A test set made for the user (``evaluation: {auto: N}``): what it is, its seeds, and the set built from its labels.

The frames come from independent Langevin MD on a GFN-xTB surface (:class:`AutoSet`: the surface, the campaign's
``md.temperature_K``, time step and friction), one run per starting structure of the campaign (its inputs and
conformers), each with a seed of its own (:func:`run_seed`: never one of the campaign's MD or bootstrap seeds), its
first ``equilibration_fs`` discarded and one frame kept every ``spacing_fs``. The frames are stored with origin
``evaluation`` and selected for an expensive label in the ledger's cycle ``EVALUATION``
(:mod:`alloop.store.ledger`), which holds them out of training, selection and the label budget; once labelled,
:func:`build_set` packs the ok ones into the store's evaluation set (:mod:`alloop.evaluation.frames`), whose header
says what the set represents (sampler, temperature, runs, frames, conformer populations), so every model is scored
on it as on a set given as a file (:mod:`alloop.evaluation.campaign`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from ase import Atoms

from alloop.errors import AlloopError
from alloop.evaluation.frames import EvaluationFrames
from alloop.fidelity import Fidelity
from alloop.store import ledger
from alloop.store.campaign import CampaignStore

#: salt of the runs' seeds (ASCII "eval"): a seed sequence of its own, apart from every other seed of the campaign
SEED_SALT = 0x6576616C


@dataclass(frozen=True)
class AutoSet:
    """How the automatic set is made: ``n_frames`` frames of MD on ``surface`` (a GFN-xTB fidelity)."""

    n_frames: int
    surface: Fidelity
    temperature_K: float
    timestep_fs: float
    friction_per_fs: float
    equilibration_fs: float
    spacing_fs: float
    seed: int  # the campaign's seed; the runs' own seeds derive from it (:func:`run_seed`)

    def header(self, n_runs: int) -> dict[str, Any]:
        """What the set represents, for the stored set's header (JSON)."""
        md = {k: v for k, v in asdict(self).items() if k not in ("surface", "seed", "n_frames")}
        return {"source": "auto", "sampler": f"Langevin MD on {self.surface.name}", "surface": self.surface.name,
                "surface_hash": self.surface.hash(), "n_runs": n_runs, "frames_requested": self.n_frames,
                "run_seeds": [run_seed(self.seed, k) for k in range(n_runs)], **md}


def run_seed(seed: int, k: int) -> int:
    """The seed of run ``k`` of the automatic set of a campaign of seed ``seed``."""
    return int(np.random.SeedSequence([seed, SEED_SALT, k]).generate_state(1)[0])


def frames_per_run(n_frames: int, n_runs: int) -> list[int]:
    """``n_frames`` dealt over ``n_runs`` runs (the first ones get one more)."""
    return [n_frames // n_runs + (1 if k < n_frames % n_runs else 0) for k in range(n_runs)]


def store_frames(store: CampaignStore, runs: list[list[Atoms]]) -> np.ndarray:
    """Add the runs' frames (origin ``evaluation``) and select them for an expensive label in the held-out cycle
    (committed by the caller's phase mark); returns their ids."""
    frames = [atoms for run in runs for atoms in run]
    ids = store.add_frames(frames, origin="evaluation", cycle=ledger.EVALUATION)
    ledger.select(store, ledger.EVALUATION, ids, "expensive", ["evaluation"] * len(ids))
    return ids


def populations(frames: EvaluationFrames) -> dict[str, Any] | None:
    """The share of the set's frames in each conformer basin of each non-symmetric rotor (trans, gauche+, gauche-;
    :mod:`alloop.system.conformers`), or None: a periodic set, several compositions, or no such rotor."""
    from alloop.system.conformers import basin_populations, find_rotors

    sizes = np.diff(frames.offsets)
    if frames.pbc is not None or frames.n_frames == 0 or np.any(sizes != sizes[0]):
        return None
    n = int(sizes[0])
    numbers = frames.numbers.reshape(frames.n_frames, n)
    if np.any(numbers != numbers[0]):
        return None
    first = Atoms(numbers=numbers[0], positions=frames.positions_A[:n])
    rotors = [r for r in find_rotors(first) if not r.symmetric]
    if not rotors:
        return None
    shares = basin_populations(frames.positions_A.reshape(frames.n_frames, n, 3), rotors)
    return {"rotors": {r.label: r.name(first) for r in rotors}, "shares": shares}


def build_set(store: CampaignStore, plan: AutoSet, expensive: Fidelity, n_runs: int) -> EvaluationFrames:
    """The held-out frames with an ok expensive label, packed as the campaign's evaluation set (frame-id order),
    with a header saying what they represent; a frame whose label failed is left out (counted in the header)."""
    ids = ledger.held_out_ids(store)
    table = store.labels(expensive.hash())
    rows = np.flatnonzero(table.ok & np.isin(table.frame_id, ids))
    rows = rows[np.argsort(table.frame_id[rows], kind="stable")]
    if rows.size == 0:
        raise AlloopError(f"evaluation.auto: none of the {ids.size} frames got an ok label at {expensive.name}; give "
                          "a labelled file (evaluation.structures) instead")
    atoms = store.get_frames(table.frame_id[rows])
    sizes = np.array([len(a) for a in atoms], dtype=np.int64)
    periodic = any(a.pbc.any() for a in atoms)
    bare = EvaluationFrames(
        numbers=np.concatenate([a.numbers for a in atoms]).astype(np.int64),
        positions_A=np.concatenate([a.positions for a in atoms]).astype(np.float64),
        offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        energy_eV=np.asarray(table.energy[rows], dtype=np.float64),
        forces_eV_per_A=np.concatenate([table.frame_forces(int(r)) for r in rows]).astype(np.float64),
        cells=np.stack([a.cell.array for a in atoms]) if periodic else None,
        pbc=np.stack([a.pbc for a in atoms]) if periodic else None,
    )
    header = {**plan.header(n_runs), "n_failed": int(ids.size - rows.size),
              "sha256": hashlib.sha256(bare.to_bytes()).hexdigest(), "expensive_fidelity_hash": expensive.hash(),
              "recorded_fidelity_hashes": [expensive.hash()], "populations": populations(bare)}
    return replace(bare, header=header)
