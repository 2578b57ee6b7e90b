"""A campaign store written through the store API as the loop writes it (the tiny campaign's config, a bootstrap
and one cycle in progress), with known values for every panel of the dashboard."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase.build import molecule

from alloop.config import load_campaign
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.store import CampaignStore, FrameFlag, store_path, tables
from harness.campaigns import write_tiny

#: overrides of the tiny campaign: a CPU budget and a flag-rate target (2 cycles, 100 cheap, 30 expensive labels)
OVERRIDES = ["schedule.budget_cpu_seconds=100", "schedule.min_flag_rate=0.05"]


def _ok(cpu: float) -> LabelResult:
    return LabelResult(energy_eV=-2000.0, forces_eV_per_A=np.zeros((3, 3)), status=LabelStatus.OK, cpu_seconds=cpu,
                       wall_seconds=cpu)


def write_store(folder: Path) -> Path:
    """RUN_DIR with a store: bootstrap (3 frames; 3 cheap labels of 1 CPU s, 2 expensive of 10 CPU s, model v0) and
    cycle 0 (4 MD frames, 2 flagged; 2 cheap labels of 2 CPU s and 1 failed of 0.5 CPU s; 1 frame selected for an
    expensive label not labelled yet; model v1), committed after cycle 0's exploration. Returns the run directory."""
    cfg = load_campaign(write_tiny(folder), overrides=OVERRIDES)
    run_dir = folder / "run"
    water = molecule("H2O")
    with CampaignStore.create(store_path(run_dir), cfg.to_dict()) as store:
        store.add_frames([water] * 3, origin="bootstrap", cycle=-1)
        md = store.add_frames([water] * 4, origin="md", cycle=0, replica=0, md_step=np.arange(4) * 10,
                              flags=np.array([1, 1, 0, 0]) * int(FrameFlag.FLAGGED))
        store.add_labels(cfg.fidelity("cheap"), [0, 1, 2], [_ok(1.0)] * 3)
        store.add_labels(cfg.fidelity("expensive"), [0, 1], [_ok(10.0)] * 2)
        store.add_labels(cfg.fidelity("cheap"), md[:3], [_ok(2.0), _ok(2.0), LabelResult.failure(
            3, LabelStatus.SCF_NOT_CONVERGED, "no convergence", cpu_seconds=0.5)])
        tables.append(store, tables.SELECTION, cycle=[0], frame_id=[int(md[0])], role=["expensive"], reason=["B"])
        tables.append(store, tables.PROGRESS, cycle=[-1, -1, -1, 0], phase=["sampled", "labelled", "trained", "explored"],
                      time=[100.0, 110.0, 130.0, 160.0])
        nan = np.nan
        tables.append(store, tables.CYCLES, cycle=[-1, 0], model_version=[0, 1], md_frames=[0, 4],
                      flag_rate=[0.0, 0.5], labels_cheap=[3, 6], labels_expensive=[2, 2], cpu_cheap_s=[3.0, 7.5],
                      cpu_expensive_s=[20.0, 20.0], val_force_mae_eV_per_A=[0.5, 0.3], val_energy_mae_eV=[0.1, 0.1],
                      train_seconds=[5.0, 4.0], time=[130.0, 170.0], eval_force_mae_eV_per_A=[0.4, nan],
                      eval_force_rmse_eV_per_A=[0.6, nan], eval_energy_mae_eV=[0.2, nan],
                      eval_energy_mae_per_atom_eV=[0.07, nan], forget_force_mae_eV_per_A=[nan, nan],
                      forget_energy_mae_per_atom_eV=[nan, nan])
        # model v1's evaluation-set scores in the evaluation table only (cycles_table fills the NaN from it)
        tables.append(store, tables.EVALUATION, model_version=[1], cycle=[0], n_frames=[6], sha256=["x"], time=[170.0],
                      eval_force_mae_eV_per_A=[0.25], eval_force_rmse_eV_per_A=[0.35], eval_energy_mae_eV=[0.1],
                      eval_energy_mae_per_atom_eV=[0.03])
        tables.append(store, tables.EVAL_COVERAGE, model_version=[0, 1], cycle=[-1, 0], covered_fraction=[0.5, 0.75],
                      median_q=[1.2, 0.8])
        tables.append(store, tables.EVAL_PREDICTED, model_version=[1], cycle=[0], predicted_force_mae_eV_per_A=[0.3],
                      error_spearman=[0.5], bound_coverage=[0.9])
        tables.append(store, tables.MD_PREDICTED, cycle=[0] * 4, frame_id=md,
                      predicted_force_error_eV_per_A=[0.1, 0.2, 0.3, 0.4], upper_force_error_eV_per_A=[1.0] * 4)
        store.commit(cycle=0, phase="explored")
    return run_dir


def store_files(path: Path) -> set[tuple[str, str, int, int]]:
    """Every file under ``path`` with its size and modification time (ns): equal sets, nothing written."""
    return {(root, name, os.stat(os.path.join(root, name)).st_size, os.stat(os.path.join(root, name)).st_mtime_ns)
            for root, _, names in os.walk(path) for name in names}
