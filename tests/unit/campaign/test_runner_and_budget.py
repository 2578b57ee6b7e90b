"""Campaign glue that needs no cluster: CLI errors, the SLURM job script, the labelling budget, progress."""

from __future__ import annotations

import io

import numpy as np
import pytest
from ase.build import molecule

from alloop.campaign.loop.progress import Progress
from alloop.campaign.phases.budget import cycle_quota
from alloop.campaign.phases.settings import campaign_settings
from alloop.cli import main
from alloop.config import load_campaign
from alloop.labeling.result import LabelResult, LabelStatus
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path

CAMPAIGN = """
name: unit
system: {structures: H2O}
fidelities: {cheap: hf-sto3g, expensive: {name: hf-631g, method: hf, basis: 6-31g}}
model: pair
selection: {max_cheap_per_cycle: 10, max_expensive_per_cycle: 4}
schedule:
  budget_cpu_seconds: 100
  max_labels: {cheap: 30, expensive: 12}
  bootstrap: {n_samples: 4, n_expensive: 2}
evaluation: false
"""


@pytest.fixture
def campaign_file(tmp_path):
    path = tmp_path / "unit.yaml"
    path.write_text(CAMPAIGN)
    return path


def _label(fid, n_atoms: int, cpu: float) -> LabelResult:
    return LabelResult(energy_eV=-1.0, forces_eV_per_A=np.zeros((n_atoms, 3)), status=LabelStatus.OK,
                       cpu_seconds=cpu, fidelity_name=fid.name, fidelity_hash=fid.hash())


def test_run_refuses_an_existing_campaign_and_resume_a_missing_one(tmp_path, campaign_file, capsys):
    cfg = load_campaign(campaign_file)
    run_dir = tmp_path / "run"
    CampaignStore.create(store_path(run_dir), cfg.to_dict()).close()
    assert main(["run", str(campaign_file), "--dir", str(run_dir)]) == 1
    assert "already holds a campaign; continue it with 'alloop resume" in capsys.readouterr().err
    assert main(["resume", str(tmp_path / "nothing")]) == 1
    assert "is not a campaign run directory" in capsys.readouterr().err


def test_quota_follows_label_limits_and_cpu_budget(tmp_path, campaign_file):
    cfg = load_campaign(campaign_file)
    fids = {"cheap": cfg.cheap_fidelity, "expensive": cfg.expensive_fidelity}
    limits = campaign_settings(cfg).budget
    with CampaignStore.create(tmp_path / "s.zarr", cfg.to_dict()) as store:
        # nothing spent: per-cycle caps (planned cost 10x1 + 4x10 < 100)
        assert cycle_quota(limits, store, fids).n_cheap == 10
        water = molecule("H2O")
        ids = store.add_frames([water] * 25)
        store.add_labels(fids["cheap"], ids[:25], [_label(fids["cheap"], 3, 1.0)] * 25)
        store.add_labels(fids["expensive"], ids[:5], [_label(fids["expensive"], 3, 10.0)] * 5)
        store.commit()
        # 75 CPU s spent, 25 left; 5 cheap labels remain under max_labels; a full cycle (5 x 1 s + 4 x 10 s = 45 s)
        # is scaled by 25/45: 2 cheap and 2 expensive labels (22 s)
        quota = cycle_quota(limits, store, fids)
        assert (quota.n_cheap, quota.n_expensive) == (2, 2)
        more = store.add_frames([water] * 5)
        store.add_labels(fids["cheap"], more, [_label(fids["cheap"], 3, 1.0)] * 5)
        store.commit()
        quota = cycle_quota(limits, store, fids)
        assert quota.n_cheap == 0 and "cheap label limit 30 reached" in quota.reason


def test_slurm_job_script_pins_threads(campaign_file, tmp_path, monkeypatch):
    from alloop.campaign.execution.jobqueue import make_jobqueue_cluster

    monkeypatch.chdir(tmp_path)  # the preset's log_directory (dask-logs) is relative

    cfg = load_campaign(campaign_file, overrides=["execution.cluster=slurm", "execution.threads_per_worker=2"])
    cluster = make_jobqueue_cluster(cfg.execution)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH" in script and "04:00:00" in script
    assert "export OMP_NUM_THREADS=2" in script


def test_progress_line_shows_labels_cost_and_error():
    stream = io.StringIO()
    bar = Progress(enabled=True, n_cycles=3, budget_cpu_s=600, stream=stream, interval_s=0)
    bar.update(cycle=1, phase="labelling cheap", labels={"cheap": (3, 20)}, in_flight=4, spent_delta=12.5)
    bar.update(val_force_mae=0.1234, flag_rate=0.25)
    line = stream.getvalue().strip().splitlines()[-1]
    for part in ("cycle 2/3", "labelling cheap", "cheap 3/20", "4 in flight", "12/600 CPU s", "0.123 eV/A", "25%"):
        assert part in line
