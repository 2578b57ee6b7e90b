"""The campaign's original model: stored once, the reference of the forgetting scores and of replay.

A campaign whose model starts from pretrained weights (``model.base``, e.g. the
``sevennet-0`` preset, or a ``model.checkpoint`` file) stores the untouched
starting model once, before anything trains, as the checkpoint of role
``base`` (:func:`store_original`); a resumed campaign finds it and stores
nothing. Everything compared with "the original" reads that checkpoint, never a
rebuilt model: the forgetting scores of every new model (the ``forget_*``
columns of the ``cycles`` table, :func:`forgetting_columns`; NaN for a campaign
without pretrained weights) and the pseudo-labels of the replay pool
(:meth:`Original.replay_pool`, with ``training.replay_fraction`` > 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from alloop.store import tables
from alloop.store.campaign import CampaignStore
from alloop.system.outside import forgetting_structures, outside_molecules, replay_structures

if TYPE_CHECKING:
    from alloop.campaign.execution.train_request import LabelledArrays
    from alloop.config import CampaignConfig
    from alloop.potentials.base import Potential
    from alloop.training.data import FrameDataset

ROLE = "base"
#: cycles column -> field of alloop.training.forgetting.ForgettingScores
COLUMNS = dict(zip(tables.FORGET_COLUMNS, ("force_mae_eV_per_A", "energy_mae_per_atom_eV"), strict=True))
Log = Callable[[str], None]


def starting_blob(cfg: CampaignConfig, elements: Sequence[int]) -> bytes:
    """The untouched starting model as checkpoint bytes: the ``model.checkpoint`` file's model, else the model
    built from the config with its pretrained weights (what a training task's factory builds)."""
    from alloop.potentials.checkpoint import checkpoint_to_bytes, load_checkpoint
    from alloop.potentials.registry import build_model

    if cfg.model.checkpoint is not None:
        model = load_checkpoint(cfg.model.checkpoint)[0]
        _check_baseline(model, cfg)
        return checkpoint_to_bytes(model)
    model = build_model(cfg.model.architecture, list(elements), **{**cfg.model.hyperparameters(), "seed": cfg.seed})
    return checkpoint_to_bytes(model)


def _check_baseline(model: Potential, cfg: CampaignConfig) -> None:
    """ConfigError if ``model.checkpoint`` is a Delta model whose baseline is not the campaign's ``model.baseline``
    (its learned part would be trained on the wrong targets)."""
    from alloop.errors import ConfigError
    from alloop.fidelity import load_fidelity
    from alloop.potentials.baseline import DeltaPotential

    if not isinstance(model, DeltaPotential):
        return
    own = model.baseline.fidelity
    if cfg.model.baseline is None:
        raise ConfigError(f"model.checkpoint: a Delta model with the baseline {own.name}; set model.baseline: "
                          f"{own.name} to continue it")
    want = load_fidelity(cfg.model.baseline, charge=cfg.system.charge, spin=cfg.system.spin)
    if want.hash() != own.hash():
        raise ConfigError(f"model.checkpoint: its baseline {own.name} is not model.baseline ({cfg.model.baseline})")


def stored_version(store: CampaignStore) -> int | None:
    """The version of the stored original (role ``base``), or None."""
    versions = [int(c["version"]) for c in store.checkpoints() if c["role"] == ROLE]
    return versions[0] if versions else None


def store_original(store: CampaignStore, blob: Callable[[], bytes]) -> int:
    """Store ``blob()`` as the original (and commit) unless the store holds one; returns its version."""
    version = stored_version(store)
    if version is None:
        version = store.add_checkpoint(blob(), {"cycle": -1, "note": "the untouched starting model"}, role=ROLE)
        store.commit(note=store.record.get("note"))
    return version


@dataclass
class Original:
    """The stored original (checkpoint ``version``) loaded once, and its outside molecules.

    ``reference`` is the forgetting set labelled by the original (None when no outside
    molecule is made of the campaign's elements: the scores are then NaN).
    """

    version: int
    model: Potential
    molecules: list[Atoms]
    reference: FrameDataset | None
    _pools: dict[int, LabelledArrays] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, store: CampaignStore, version: int, molecules: list[Atoms]) -> Original:
        from alloop.potentials.checkpoint import model_from_bytes
        from alloop.training.metrics import pseudo_labelled

        model = model_from_bytes(store.checkpoint(version)[0])[0]
        model.eval()
        reference = pseudo_labelled(model, forgetting_structures(molecules)) if molecules else None
        return cls(version, model, molecules, reference)

    def scores(self, model_blob: bytes) -> dict[str, float]:
        """The ``forget_*`` columns of a checkpoint (NaN without outside molecules)."""
        from alloop.potentials.checkpoint import model_from_bytes
        from alloop.training.forgetting import forgetting_scores

        if self.reference is None:
            return {c: float("nan") for c in COLUMNS}
        scores = forgetting_scores(neutral_baseline(model_from_bytes(model_blob)[0]), self.reference).as_dict()
        return {column: scores[key] for column, key in COLUMNS.items()}

    def replay_pool(self, seed: int) -> LabelledArrays:
        """The replay frames of campaign seed ``seed`` labelled by the original (computed once per process)."""
        from alloop.campaign.execution.train_request import LabelledArrays
        from alloop.training.metrics import pseudo_labelled

        if seed not in self._pools:
            pool = pseudo_labelled(self.model, replay_structures(self.molecules, seed))
            frames = pool.to_atoms()
            energy, forces = pool.labels()
            self._pools[seed] = LabelledArrays(
                frame_ids=np.arange(len(pool)), numbers=[a.numbers for a in frames],
                positions=[a.positions for a in frames], energy=energy,
                forces=[forces[pool.frame_slice(k)] for k in range(len(pool))], fidelity=pool.fidelity,
            )
        return self._pools[seed]


def neutral_baseline(model: Potential) -> Potential:
    """``model`` as it predicts the outside molecules, which are neutral and closed-shell: a Delta model's baseline at
    charge 0 and spin 0 (the campaign's charge and spin are its own structures'; at 2S = 1 the baseline has no state
    for H2). Other models are returned as they are."""
    import torch

    from alloop.potentials.baseline import Baseline, DeltaPotential

    if isinstance(model, DeltaPotential) and (model.baseline.fidelity.charge, model.baseline.fidelity.spin) != (0, 0):
        neutral = model.baseline.fidelity.model_copy(update={"charge": 0, "spin": 0})
        model.baseline = Baseline(neutral, threads=max(1, torch.get_num_threads()))
    return model


def prepare(store: CampaignStore, cfg: CampaignConfig, structures: Sequence[Atoms], log: Log = print) -> Original | None:
    """Store the original once (a campaign from pretrained weights) and load it; None without pretrained weights."""
    if not cfg.model.pretrained:
        return None
    elements = sorted({int(z) for a in structures for z in a.numbers})
    known = stored_version(store)
    version = store_original(store, lambda: starting_blob(cfg, elements))
    molecules = outside_molecules(elements, cfg.training.outside_molecules, [a.numbers for a in structures])
    original = Original.load(store, version, molecules)
    what = "found" if known is not None else "stored"
    names = ", ".join(str(m.get_chemical_formula()) for m in molecules) or "none made of the campaign's elements"
    n = 0 if original.reference is None else len(original.reference)
    log(f"original model: {what} as checkpoint v{version} (role {ROLE}); forgetting scored on {n} rattled frames "
        f"of {names}")
    return original


def forgetting_columns(store: CampaignStore, original: Original | None, version: int,
                       log: Log | None = None) -> dict[str, np.ndarray]:
    """The ``forget_*`` columns of model ``version``'s ``cycles`` row ({} for a table that predates them)."""
    if not tables.has_columns(store, tables.CYCLES, tables.FORGET_COLUMNS):
        return {}
    scores = {c: float("nan") for c in COLUMNS}
    if original is not None and version >= 0:
        scores = original.scores(store.checkpoint(version)[0])
        if log is not None and np.isfinite(scores["forget_force_mae_eV_per_A"]):
            log(f"model v{version} against the original v{original.version} on outside molecules: force MAE "
                f"{scores['forget_force_mae_eV_per_A']:.4f} eV/A, energy change "
                f"{1000 * scores['forget_energy_mae_per_atom_eV']:.2f} meV/atom (per-element offsets removed)")
    return {c: np.array([v], float) for c, v in scores.items()}


def status(store: CampaignStore) -> dict[str, Any] | None:
    """The original's version and each scored model's forgetting (what ``alloop status`` shows), or None."""
    version = stored_version(store)
    rows = tables.read(store, tables.CYCLES)
    if version is None or not rows or any(c not in rows for c in COLUMNS):
        return None
    keep = [k for k in range(rows["cycle"].size) if np.isfinite(rows[next(iter(COLUMNS))][k])]
    models = [{"cycle": int(rows["cycle"][k]), "model_version": int(rows["model_version"][k]),
               **{c: float(rows[c][k]) for c in COLUMNS}} for k in keep]
    return {"original_version": version, "models": models}


def format_status(part: dict[str, Any] | None) -> list[str]:
    """:func:`status` as text lines (none without an original)."""
    if part is None:
        return []
    lines = [f"forgetting   change against the original v{part['original_version']} (role {ROLE}) on outside "
             "molecules, per-element energy offsets removed"]
    if not part["models"]:
        return lines + ["  no model scored yet"]
    lines.append(f"  {'model':>5}  {'cycle':>9}  {'F-MAE eV/A':>10}  {'dE meV/atom':>11}")
    for m in part["models"]:
        cycle = "bootstrap" if m["cycle"] < 0 else str(m["cycle"])
        lines.append(f"  {'v' + str(m['model_version']):>5}  {cycle:>9}  {m['forget_force_mae_eV_per_A']:>10.4f}"
                     f"  {1000 * m['forget_energy_mae_per_atom_eV']:>11.2f}")
    return lines
