"""The dask-jobqueue glue without a batch system: job scripts, task slots, the job keeper's bookkeeping."""

from __future__ import annotations

import pytest

from alloop.campaign.execution.jobkeeper import JobKeeper, JobWatch, job_worker_names, lost_jobs
from alloop.campaign.execution.jobqueue import batch_slots, close_batch_cluster, make_jobqueue_cluster, task_threads
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


class _QueuedJob:
    def __init__(self, job_id):
        self.job_id = job_id


class _ClosingCluster:
    """A batch cluster whose close finishes or times out; its cancel command writes the job ids to a file."""

    def __init__(self, out, hangs):
        # job 2 never got an id (still being submitted)
        self.workers = {"0": _QueuedJob("101"), "1": _QueuedJob("102"), "2": _QueuedJob(None)}
        self.job_cls = type("Job", (), {"cancel_command": f"sh -c 'echo \"$@\" > {out}' cancel"})
        self.hangs, self.closed_with = hangs, None

    def close(self, timeout=None):
        self.closed_with = timeout
        if self.hangs:
            raise TimeoutError


def test_a_batch_cluster_that_does_not_close_has_its_jobs_cancelled_directly(tmp_path):
    out, lines = tmp_path / "cancelled", []
    cluster = _ClosingCluster(out, hangs=True)
    close_batch_cluster(cluster, lines.append, timeout_s=5)
    assert cluster.closed_with == 5
    assert out.read_text().split() == ["101", "102"]
    assert "did not close within 5 s" in lines[0] and "101 102" in lines[0]


def test_a_batch_cluster_that_closes_is_left_to_dask(tmp_path):
    out, lines = tmp_path / "cancelled", []
    close_batch_cluster(_ClosingCluster(out, hangs=False), lines.append, timeout_s=5)
    assert not out.exists()
    assert "jobs 101 102 cancelled" in lines[0]


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
        self.job_id, self.closed, self.log_directory = job_id, False, "dask-logs"

    async def close(self) -> None:
        self.closed = True


class _Cluster:
    """What JobKeeper reads and changes of a dask-jobqueue cluster; scale() reuses the lowest free name, as
    SpecCluster does after a name was dropped."""

    def __init__(self, jobs: int = 2) -> None:
        from distributed.core import Status

        self.status = Status.running
        self.worker_spec = {f"J-{i}": {"group": ["-0", "-1"]} for i in range(jobs)}
        self.workers = {f"J-{i}": _Job(str(100 + i)) for i in range(jobs)}
        self.scheduler_info: dict = {"workers": {}}
        self.scaled: list[int] = []

    def connect(self, *names: str) -> None:
        self.scheduler_info["workers"] = {f"tcp://{n}": {"name": n} for n in names}

    def _new_worker_name(self, k: int) -> str:
        return f"J-{k}"

    def scale(self, n: int) -> None:
        self.scaled.append(n)
        k = 0
        while len(self.worker_spec) < n // 2:
            while f"J-{k}" in self.worker_spec:
                k += 1
            self.worker_spec[f"J-{k}"] = {"group": ["-0", "-1"]}

    def start(self) -> None:  # what _correct_state does: a job for every spec without one
        for name in set(self.worker_spec) - set(self.workers):
            self.workers[name] = _Job(f"2{len(self.workers)}{name[-1]}")


def test_keeper_replaces_a_lost_job_under_a_new_name():
    import asyncio

    cluster, lines = _Cluster(), []
    cancelled = cluster.workers["J-0"]
    keeper = JobKeeper(cluster, n_workers=4, log=lines.append, grace_s=10.0)

    async def run() -> None:
        cluster.connect("J-0-0", "J-0-1", "J-1-0", "J-1-1")
        await keeper.check(0.0)
        cluster.connect("J-1-0", "J-1-1")  # job 100 cancelled: both its workers left
        for now in (1.0, 5.0, 10.5, 11.5):
            await keeper.check(now)
        await asyncio.sleep(0)

    asyncio.run(run())
    assert keeper.replaced == 1 and cluster.scaled == [4]
    assert cluster.workers.keys() == {"J-1"} and len(cluster.worker_spec) == 2
    assert "J-0" not in cluster.worker_spec  # the replacement never takes the lost job's name
    assert "batch job 100 (J-0) ended: its Dask workers left 10 s ago; submitting a replacement" == lines[0]
    assert len(lines) == 1 and cancelled.closed and not cluster.workers["J-1"].closed  # scancel, if it still runs


def test_keeper_gives_up_on_jobs_that_never_start():
    import asyncio

    cluster, lines = _Cluster(), []
    states = {"100": "PENDING", "101": "FAILED"}
    keeper = JobKeeper(cluster, n_workers=4, log=lines.append, job_state=lambda job_id: states.get(job_id, "FAILED"))

    async def run() -> None:
        await keeper.check(0.0)  # 101 failed before connecting: replaced
        assert keeper.failed_starts == 1 and "batch job 101 (J-1) ended: before its Dask worker connected " \
            "(FAILED); see its log in dask-logs; submitting a replacement" == lines[0]
        cluster.start()
        await keeper.check(5.0)  # no probe within PROBE_EVERY_S
        assert keeper.failed_starts == 1
        cluster.connect("J-0-0")  # one job started: the count starts again
        await keeper.check(10.0)
        assert keeper.failed_starts == 1  # the new job failed too
        cluster.connect()
        for now in (20.0, 30.0, 40.0):
            cluster.start()
            await keeper.check(now)
        await asyncio.sleep(0)

    asyncio.run(run())
    assert keeper.error is not None and "batch jobs in a row ended before their Dask worker connected" in keeper.error
    assert lines[-1].endswith("no more jobs are submitted") and keeper.failed_starts >= 3


def test_slurm_job_state_reads_squeue(monkeypatch):
    import subprocess

    from alloop.campaign.execution.jobkeeper import slurm_job_state

    def squeue(returncode: int, out: str = "", err: str = ""):
        return lambda *a, **k: subprocess.CompletedProcess(a, returncode, out, err)

    monkeypatch.setattr(subprocess, "run", squeue(0, "RUNNING\n"))
    assert slurm_job_state("7") == "RUNNING"
    monkeypatch.setattr(subprocess, "run", squeue(1, err="slurm_load_jobs error: Invalid job id specified"))
    assert slurm_job_state("7") == "GONE"
    monkeypatch.setattr(subprocess, "run", squeue(1, err="Unable to contact slurm controller"))
    assert slurm_job_state("7") is None


def test_validate_prints_the_job_script(load, tmp_path, capsys):
    from alloop.cli import main

    path = tmp_path / "unit.yaml"
    assert main(["validate", str(path), "--job-script", "--set", "execution.cluster.options.account=chem"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#!/usr/bin/env bash") and "#SBATCH -A chem" in out and "distributed.cli.dask_worker" in out
    assert main(["validate", str(path), "--job-script", "--set", "execution.cluster=local"]) == 1
    assert "--job-script needs a slurm or pbs cluster, this campaign uses local" in capsys.readouterr().err


def test_ctrl_c_still_interrupts_once_dask_jobqueue_is_imported():
    """dask_jobqueue.runner sets SIGINT to sys.exit() on import: a Ctrl-C'd SLURM campaign exited 0 ('finished')."""
    import subprocess
    import sys

    code = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "  # as under nohup ... &: no handler
            "from alloop.campaign.execution.jobqueue import cluster_option_names; "
            "cluster_option_names('slurm'); "
            "import dask_jobqueue.runner; assert signal.getsignal(signal.SIGINT) is signal.default_int_handler; "
            "signal.raise_signal(signal.SIGINT)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "KeyboardInterrupt" in out.stderr and out.returncode != 0, out.stderr


def test_the_campaigns_own_sigint_handler_survives_the_dask_jobqueue_import():
    """In a fresh process (dask_jobqueue not imported yet), as in ``alloop run`` of a SLURM campaign."""
    import subprocess
    import sys

    code = ("import signal, sys; from alloop.signals import stop_on_signals; "
            "from alloop.campaign.execution.jobqueue import import_jobqueue\n"
            "with stop_on_signals():\n"
            "    ours = signal.getsignal(signal.SIGINT); assert 'dask_jobqueue' not in sys.modules\n"
            "    import_jobqueue(); assert signal.getsignal(signal.SIGINT) is ours, signal.getsignal(signal.SIGINT)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
