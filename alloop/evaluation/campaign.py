"""Every model a campaign commits, scored on its fixed evaluation set (``evaluation:`` in the campaign file).

- :func:`prepare` runs when a campaign starts or resumes, before the loop: it copies the set
  into the store (blob ``evaluation_set``, with the file's SHA-256), so ``alloop resume``
  needs nothing else; it refuses to go on when the file named by the config no longer
  matches the stored copy; and it scores every committed model without a score yet (a
  campaign stopped between a model's commit and its score).
- :func:`cycle_columns` gives the driver the ``eval_*`` columns of a ``cycles`` row: the
  scores the training task computed on its worker (:func:`~alloop.evaluation.scoring.score_model`, so
  the driver loads no model), else the row's model scored here (NaN without an evaluation set or a model).
- A score is the force MAE and RMSE over components (eV/A), the 95th percentile and maximum of the
  per-frame force MAE (eV/A), the energy MAE (eV) and the per-atom energy MAE (eV/atom) of the model with
  its energy references for the campaign's expensive fidelity: a deterministic function of the model and
  the set. The ``evaluation`` table holds one row per model version.
- Per molecule: for a set of several molecules (formulas, :mod:`alloop.molecules`) the same scores per
  molecule, one ``eval_molecules`` row per model and molecule (:func:`record_molecules`).
- Coverage: the training task also scores the evaluation set's Q-residual under the uncertainty
  model fitted with the new model (:func:`~alloop.evaluation.scoring.coverage_scores`: the share
  within the limit, the median), recorded per model in the ``eval_coverage`` table
  (:func:`record_coverage`); a model scored on resume has none (its uncertainty model is not kept).
- The readers (what status and reports show) are in :mod:`alloop.evaluation.records`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alloop.errors import AlloopError
from alloop.evaluation.frames import EvaluationFrames, file_sha256, read_evaluation_frames
from alloop.evaluation.records import BLOB, COLUMNS, SCORES, model_scores, stored_set
from alloop.evaluation.scoring import evaluation_scores
from alloop.store import tables
from alloop.store.campaign import CampaignStore

if TYPE_CHECKING:
    from alloop.config import CampaignConfig

Log = Callable[[str], None]


def prepare(store: CampaignStore, cfg: CampaignConfig, log: Log = print) -> EvaluationFrames | None:
    """Copy the configured set into the store (first start) or check it (resume); score unscored models. A set the
    campaign makes (``evaluation.auto``) is made by its loop: here only its unscored models are scored."""
    ev = cfg.evaluation
    if ev is None:
        return None
    frames = stored_set(store)
    if ev.structures is None:  # evaluation.auto: the campaign makes the set (alloop.campaign.phases.evaluation_set)
        if frames is not None:
            _score_unscored(store, frames, log)
        return frames
    path = Path(ev.structures)
    if frames is None:
        if not path.is_file():
            raise AlloopError(f"evaluation.structures: {path} not found, and the store holds no copy of it yet")
        digest = file_sha256(path)
        if ev.sha256 is not None and digest != ev.sha256:
            raise AlloopError(f"evaluation.structures: {path} changed after the campaign was validated (SHA-256 "
                              f"{digest[:12]}, the campaign's {ev.sha256[:12]}); start a new campaign to use it")
        frames = read_evaluation_frames(path, ev.energy_key, ev.forces_key)
        expensive = cfg.expensive_fidelity.hash()
        frames = replace(frames, header={**frames.header, "sha256": digest, "expensive_fidelity_hash": expensive})
        store.put_blob(BLOB, frames.to_bytes())
        store.commit(note=store.record.get("note"))
        log(f"evaluation set: {frames.n_frames} frames of {path} (SHA-256 {digest[:12]}) copied into the store")
        other = [h for h in frames.header["recorded_fidelity_hashes"] if h != expensive]
        if other:
            log(f"  note: its frames record fidelity {', '.join(other)}, not the expensive fidelity's {expensive}: "
                "energy errors then include the difference of the two levels of theory")
    else:
        _check_unchanged(frames, path, ev.sha256)
    _score_unscored(store, frames, log)
    return frames


def _check_unchanged(frames: EvaluationFrames, path: Path, config_sha256: str | None) -> None:
    stored = str(frames.header["sha256"])
    if config_sha256 is not None and config_sha256 != stored:
        raise AlloopError(f"evaluation.sha256: the campaign's config names {config_sha256[:12]}, the store's copy of "
                          f"the evaluation set is {stored[:12]}")
    now = file_sha256(path) if path.is_file() else stored
    if now != stored:
        raise AlloopError(
            f"evaluation.structures: {path} changed since the campaign started (SHA-256 {now[:12]}, the store's copy "
            f"{stored[:12]}); scores on another set are not comparable with those recorded. Restore the file, or move "
            "it away to continue with the store's copy; 'alloop evaluate RUN_DIR FILE' scores a model on the new file"
        )


def record_coverage(store: CampaignStore, version: int, cycle: int, scores: dict[str, float]) -> None:
    """Append model ``version``'s ``eval_coverage`` row (committed by the caller)."""
    tables.append(store, tables.EVAL_COVERAGE, model_version=[version], cycle=[cycle],
                  covered_fraction=[scores["covered_fraction"]], median_q=[scores["median_q"]])


def record_molecules(store: CampaignStore, version: int, cycle: int,
                     molecules: dict[str, dict[str, float]] | None) -> None:
    """Append model ``version``'s ``eval_molecules`` rows (committed by the caller); nothing for a set of one
    molecule (``molecules`` None)."""
    if not molecules:
        return
    names = list(molecules)
    tables.append(store, tables.EVAL_MOLECULES, model_version=np.full(len(names), version),
                  cycle=np.full(len(names), cycle), molecule=names,
                  n_frames=[int(molecules[n]["n_frames"]) for n in names],
                  **{c: [molecules[n].get(c, np.nan) for n in names] for c in _writable(store, tables.EVAL_MOLECULES)})


def record_predicted(store: CampaignStore, version: int, cycle: int, scores: dict[str, float]) -> None:
    """Append model ``version``'s ``eval_predicted`` row (committed by the caller)."""
    tables.append(store, tables.EVAL_PREDICTED, model_version=[version], cycle=[cycle],
                  **{k: [scores[k]] for k in ("predicted_force_mae_eV_per_A", "error_spearman", "bound_coverage")})


def _record(
    store: CampaignStore, frames: EvaluationFrames, version: int, cycle: int, log: Log | None,
    scores: dict[str, float] | None = None,
) -> dict[str, float]:
    """Append model ``version``'s ``evaluation`` row (committed by the caller): ``scores``, else scored here."""
    if scores is None:  # scored here (a resume): per molecule too
        scores, molecules = evaluation_scores(store.checkpoint(version)[0], frames)
        record_molecules(store, version, cycle, molecules)
    tables.append(store, tables.EVALUATION, model_version=[version], cycle=[cycle], n_frames=[frames.n_frames],
                  sha256=[str(frames.header["sha256"])], time=[time.time()],
                  **{c: [scores.get(c, np.nan)] for c in _writable(store, tables.EVALUATION)})
    if log is not None:
        log(f"model v{version} on the evaluation set ({frames.n_frames} frames): force MAE "
            f"{scores['eval_force_mae_eV_per_A']:.4f} eV/A, energy MAE "
            f"{1000 * scores['eval_energy_mae_per_atom_eV']:.1f} meV/atom")
    return scores


def _writable(store: CampaignStore, schema: tables.TableSchema) -> tuple[str, ...]:
    """The score columns a new row of ``schema``'s table carries: without the tails where the table was written
    before them (an older store, whose columns are fixed)."""
    tails = tables.EVAL_TAIL_COLUMNS
    return tuple(c for c in SCORES if c not in tails or tables.has_columns(store, schema, tails))


def _score_unscored(store: CampaignStore, frames: EvaluationFrames, log: Log) -> None:
    scored = model_scores(store)
    todo = [int(c["version"]) for c in store.checkpoints() if c["role"] == "model" and int(c["version"]) not in scored]
    for version in todo:
        _record(store, frames, version, int(store.checkpoint(version)[1].get("cycle", -1)), log)
    if todo:
        store.commit(note=store.record.get("note"))


def cycle_columns(store: CampaignStore, version: int, cycle: int, log: Log | None = None,
                  computed: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """The ``eval_*`` columns of model ``version``'s ``cycles`` row ({} for a table that predates them);
    ``computed``: its :func:`score_model` scores, computed elsewhere (the training task)."""
    if not tables.has_columns(store, tables.CYCLES, tables.EVAL_COLUMNS):
        return {}
    scores: dict[str, float] = {c: np.nan for c in COLUMNS}
    frames = stored_set(store) if version >= 0 else None
    if frames is not None:
        scores = model_scores(store).get(version) or _record(store, frames, version, cycle, log, computed)
    return {c: np.array([scores[c]], float) for c in COLUMNS}
