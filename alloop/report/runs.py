"""Campaign runs read for comparison: each run directory read once, read-only, into a :class:`RunSummary`.

- A run's learning curve (:class:`Curve`) has one point per trained model (the rows of its ``cycles`` table
  that name a model): the force MAE and the per-atom energy MAE against the cumulative
  labelling CPU seconds of both fidelities when the model was trained. The errors are on the
  campaign's evaluation set when it names one, else on the model's own validation split
  (``val_*`` columns; the per-atom energy MAE from the checkpoint's metrics); the curve says which.
- The wall time is the span of the ``progress`` table, from the first committed phase to
  the last (pauses between a stop and a resume included; work before the first commit not).

:mod:`alloop.report.compare` (the table) and :func:`alloop.report.plots.plot_compare` (the plot) format them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from alloop.config import CampaignConfig
from alloop.config.campaign import ROLES
from alloop.errors import AlloopError, ConfigError
from alloop.evaluation.records import cycles_table, stored_set
from alloop.store import CampaignStore, find_store, tables
from alloop.store.ledger import finished_reason, spend

EVALUATION, VALIDATION = "evaluation set", "validation"


@dataclass(frozen=True)
class Curve:
    """Errors of a run's models, in training order."""

    errors_on: str  # EVALUATION or VALIDATION
    model_version: np.ndarray
    cycle: np.ndarray
    cpu_s: np.ndarray  # cumulative labelling CPU s, both fidelities, when the model was trained
    force_mae_eV_per_A: np.ndarray
    energy_mae_meV_per_atom: np.ndarray  # NaN where unknown

    @property
    def final(self) -> int | None:
        """Index of the newest model, or None without a model."""
        return self.force_mae_eV_per_A.size - 1 if self.force_mae_eV_per_A.size else None

    @property
    def best(self) -> int | None:
        """Index of the model with the lowest force MAE (the first of equals), or None without a model."""
        return int(np.argmin(self.force_mae_eV_per_A)) if self.force_mae_eV_per_A.size else None


@dataclass(frozen=True)
class RunSummary:
    """What ``--compare`` shows of one campaign."""

    label: str  # legend and column title (the campaign name, with the directory when names repeat)
    run_dir: str
    name: str
    strategy: str
    model: str
    training: str
    state: str
    fidelity: dict[str, str]  # role -> fidelity name
    labels: dict[str, int]  # role -> labels (failures included)
    failed: dict[str, int]
    cpu_s: dict[str, float]
    wall_s: float | None
    n_models: int
    evaluation: str | None  # "N frames, SHA-256 ..." of the stored evaluation set
    curve: Curve


def read_runs(run_dirs: list[str]) -> list[RunSummary]:
    """Read each run directory's store; labels repeat the directory where campaign names repeat."""
    runs = [_read_run(run_dir) for run_dir in run_dirs]
    names = [r.name for r in runs]
    return [r if names.count(r.name) == 1 else replace(r, label=f"{r.name} ({r.run_dir})") for r in runs]


def _read_run(run_dir: str) -> RunSummary:
    with CampaignStore.open(find_store(run_dir), "r") as store:
        if not store.config:
            raise AlloopError(f"{run_dir}: the store has no campaign config (made by 'alloop import'?); "
                              "--compare compares campaigns")
        try:
            cfg = CampaignConfig.from_dict(store.config, check_files=False)
        except ConfigError as exc:
            raise AlloopError(f"{run_dir}: the stored campaign config does not validate: {exc}") from None
        fidelities = {role: cfg.fidelity(role) for role in ROLES}
        sp = spend(store, fidelities)
        frames = stored_set(store)
        progress = tables.read(store, tables.PROGRESS)
        times = progress.get("time", np.zeros(0))
        reason = finished_reason(store)
        return RunSummary(
            label=cfg.name, run_dir=str(run_dir), name=cfg.name, strategy=cfg.schedule.strategy,
            model=_model_name(cfg), training=cfg.training.method,
            state=f"finished: {reason}" if reason else "not finished",
            fidelity={role: f.name for role, f in fidelities.items()},
            labels=dict(sp.labels), failed=dict(sp.failures), cpu_s=dict(sp.cpu_seconds),
            wall_s=float(times.max() - times.min()) if times.size else None,
            n_models=sum(c["role"] == "model" for c in store.checkpoints()),
            evaluation=None if frames is None else
            f"{frames.n_frames} frames, SHA-256 {str(frames.header.get('sha256'))[:12]}",
            curve=_curve(store, frames is not None),
        )


def _model_name(cfg: CampaignConfig) -> str:
    m = cfg.model
    name = m.preset or m.architecture
    if m.preset and m.preset != m.architecture:
        name += f" ({m.architecture})"
    return name + (f", from {Path(m.checkpoint).name}" if m.checkpoint else "")


def _curve(store: CampaignStore, has_evaluation_set: bool) -> Curve:
    rows = cycles_table(store)
    versions = rows.get("model_version", np.zeros(0, np.int32))
    keep = np.flatnonzero(versions >= 0)  # a naive cycle without training has no model
    if has_evaluation_set:
        errors_on, force = EVALUATION, rows.get("eval_force_mae_eV_per_A", np.zeros(0))[keep]
        energy = 1000.0 * rows.get("eval_energy_mae_per_atom_eV", np.zeros(0))[keep]
    else:
        errors_on, force = VALIDATION, rows.get("val_force_mae_eV_per_A", np.zeros(0))[keep]
        energy = np.array([_validation_energy_meV_per_atom(store, int(v)) for v in versions[keep]], float)
    scored = np.isfinite(force)
    keep = keep[scored]
    cpu = rows["cpu_cheap_s"][keep] + rows["cpu_expensive_s"][keep] if rows else np.zeros(0)
    return Curve(errors_on, versions[keep], rows.get("cycle", versions)[keep], cpu, force[scored], energy[scored])


def _validation_energy_meV_per_atom(store: CampaignStore, version: int) -> float:
    """The per-atom energy MAE on the model's validation split, from its checkpoint's metrics (NaN if absent)."""
    metrics = store.checkpoint(version)[1].get("metrics") or {}
    return 1000.0 * float(metrics.get("energy_mae_per_atom_eV", np.nan))
