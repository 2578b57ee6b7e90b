"""The dask-jobqueue glue without a batch system: job scripts, task slots, the job keeper's bookkeeping."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from alloop.campaign.jobkeeper import JobKeeper, JobWatch, job_worker_names, lost_jobs
from alloop.campaign.jobqueue import batch_slots, make_jobqueue_cluster, task_threads
from alloop.config import load_campaign

CAMPAIGN = """
name: unit
system: {structures: H2O}
fidelities: {cheap: hf-sto3g, expensive: {name: hf-631g, method: hf, basis: 6-31g}}
model: pair
execution: {cluster: slurm}
"""


@pytest.fixture
def load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the preset's log_directory (dask-logs) is relative
    path = tmp_path / "unit.yaml"
    path.write_text(CAMPAIGN)
    return lambda *overrides: load_campaign(path, overrides=list(overrides))


def _script(cfg) -> str:
    cluster = make_jobqueue_cluster(cfg.execution)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def test_preset_job_script_is_runnable_without_tmpdir(load):
    script = _script(load())
    assert "--local-directory ${TMPDIR:-/tmp}" in script  # not a bare $TMPDIR: empty when the site sets none
    assert "export OMP_NUM_THREADS=1" in script and "OMP_NUM_THREADS=2" not in script
    assert "--nthreads 2 " in script and script.count("--nthreads") == 1  # 8 cores / 4 processes, 1 thread a task


def test_threads_per_task_set_the_worker_threads(load):
    cfg = load("execution.threads_per_worker=2", "execution.n_workers=8")
    assert task_threads(cfg.execution) == 1 and batch_slots(cfg.execution) == 8
    script = _script(cfg)
    assert script.rstrip().endswith("--nthreads 1")  # dask-jobqueue's --nthreads 2 comes first; the last one wins
    assert "export OMP_NUM_THREADS=2" in script
    cfg = load("execution.cluster.options.cores=16", "execution.threads_per_worker=2")
    assert task_threads(cfg.execution) == 2 and batch_slots(cfg.execution) == 2


def test_scheduler_hands_worker_deaths_to_alloop(load):
    cfg = load("execution.cluster.options.scheduler_options={host: 127.0.0.1}")
    cluster = make_jobqueue_cluster(cfg.execution)
    try:
        scheduler = cluster.scheduler
        assert scheduler.allowed_failures == 0
        assert scheduler.address.startswith("tcp://127.0.0.1:")
    finally:
        cluster.close()
    cfg = load("execution.cluster.options.scheduler_options={allowed_failures: 2}")
    cluster = make_jobqueue_cluster(cfg.execution)
    try:
        assert cluster.scheduler.allowed_failures == 2  # the user's choice stands
    finally:
        cluster.close()


def test_job_worker_names_follow_process_groups():
    assert job_worker_names("SLURMCluster-0", {}) == {"SLURMCluster-0"}
    assert job_worker_names("SLURMCluster-3", {"group": ["-0", "-1"]}) == {"SLURMCluster-3-0", "SLURMCluster-3-1"}


def test_lost_jobs_waits_for_a_seen_job_to_stay_gone():
    watch: dict = {}
    jobs = {"a": {"a-0", "a-1"}, "b": {"b"}}
    assert lost_jobs(jobs, set(), watch, 0.0, 10.0) == []  # queued jobs: never connected, not lost
    assert lost_jobs(jobs, {"a-1", "b"}, watch, 1.0, 10.0) == []
    assert lost_jobs(jobs, {"a-0"}, watch, 2.0, 10.0) == []  # one process of a is enough; b just left
    assert lost_jobs(jobs, {"a-0", "b"}, watch, 5.0, 10.0) == []  # b came back (a nanny restart)
    assert watch["b"] == JobWatch(seen=True, absent_since=None)
    assert lost_jobs(jobs, {"a-0"}, watch, 6.0, 10.0) == []
    assert lost_jobs(jobs, {"a-0"}, watch, 16.0, 10.0) == ["b"]
    assert lost_jobs({"a": {"a-0", "a-1"}}, set(), watch, 17.0, 10.0) == []  # a's absence starts now
    assert set(watch) == {"a"}  # b's watch dropped with the job
    assert lost_jobs({"a": {"a-0", "a-1"}}, set(), watch, 27.0, 10.0) == ["a"]


class _Job:
    def __init__(self, job_id: str) -> None:
        self.job_id, self.closed = job_id, False

    async def close(self) -> None:
        self.closed = True


class _Cluster:
    """What JobKeeper reads and changes of a dask-jobqueue cluster."""

    def __init__(self) -> None:
        from distributed.core import Status

        self.status = Status.running
        self.worker_spec = {"J-0": {"group": ["-0", "-1"]}, "J-1": {"group": ["-0", "-1"]}}
        self.workers = {"J-0": _Job("100"), "J-1": _Job("101")}
        self.scheduler_info = {"workers": {}}
        self.scaled: list[int] = []

    def connect(self, *names: str) -> None:
        self.scheduler_info["workers"] = {f"tcp://{n}": {"name": n} for n in names}

    def scale(self, n: int) -> None:
        self.scaled.append(n)
        self.worker_spec["J-2"] = {"group": ["-0", "-1"]}


def test_keeper_drops_a_lost_job_and_scales_back():
    import asyncio

    cluster, lines = _Cluster(), []
    cancelled = cluster.workers["J-0"]
    keeper = JobKeeper(cluster, n_workers=4, log=lines.append, grace_s=10.0)

    async def run() -> None:
        cluster.connect("J-0-0", "J-0-1", "J-1-0", "J-1-1")
        keeper.check(0.0)
        cluster.connect("J-1-0", "J-1-1")  # job 100 cancelled: both its workers left
        for now in (1.0, 5.0, 10.5, 11.5):
            keeper.check(now)
        await asyncio.sleep(0)

    asyncio.run(run())
    assert keeper.replaced == 1 and cluster.scaled == [4]  # once: J-2 fills the spec again
    assert cluster.workers == {"J-1": cluster.workers["J-1"]} and cluster.worker_spec.keys() == {"J-1", "J-2"}
    assert "batch job 100 (J-0) ended" in lines[0] and len(lines) == 1
    assert cancelled.closed and not cluster.workers["J-1"].closed  # scancel, in case the job still runs


def test_validate_prints_the_job_script(load, tmp_path, capsys):
    from alloop.cli import main

    path = tmp_path / "unit.yaml"
    assert main(["validate", str(path), "--job-script", "--set", "execution.cluster.options.account=chem"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#!/usr/bin/env bash") and "#SBATCH -A chem" in out and "distributed.cli.dask_worker" in out
    assert main(["validate", str(path), "--job-script", "--set", "execution.cluster=local"]) == 1
    assert "--job-script needs a slurm or pbs cluster, this campaign uses local" in capsys.readouterr().err
