"""Parallel labelling on a real LocalCluster (2 worker processes): results, priorities, worker deaths."""

from __future__ import annotations

import importlib.metadata
import os
import signal

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from distributed import get_task_stream

from alloop.campaign.execution.cluster import THREAD_ENV_VARS, open_client
from alloop.campaign.execution.labeling_pool import MAX_BATCH, LabelingPool, default_priority, label_all, task_key
from alloop.cli import main
from alloop.errors import FidelityError
from alloop.fidelity import load_fidelity
from alloop.io import read_structures
from alloop.labeling.factory import labeler_for
from alloop.labeling.pyscf_labeler import PySCFLabeler
from alloop.labeling.result import LabelStatus
from harness.faults import DelayedLabeler, KillingLabeler

HF = load_fidelity("hf-sto3g")
#: the driver's thread variables before any cluster started
DRIVER_ENV = {var: os.environ.get(var) for var in THREAD_ENV_VARS}


def waters(n: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = molecule("H2O")
        atoms.positions += rng.normal(scale=0.04, size=atoms.positions.shape)
        out.append(atoms)
    return out


def _probe():
    from alloop.labeling.threads import compute_threads

    return {var: os.environ.get(var) for var in THREAD_ENV_VARS}, compute_threads()["pyscf_omp"]


def _delayed(delay_s: float, wall_s: float | None = None):
    return lambda fid: DelayedLabeler(PySCFLabeler(fid), delay_s, wall_s)


def _cluster():
    with open_client(n_workers=2, threads_per_worker=1) as c:
        c.wait_for_workers(2)
        yield c
    assert {var: os.environ.get(var) for var in THREAD_ENV_VARS} == DRIVER_ENV


@pytest.fixture(scope="module")
def client():
    """The cluster of the tests that leave its workers alive."""
    yield from _cluster()


@pytest.fixture
def own_client():
    """A cluster of its own (about a second to start with the test suite's forkserver) for each test that kills
    workers: a Dask nanny whose new worker dies before it has reported back gives up on that worker for good
    (distributed 2026.8.0), which left a shared cluster short of a worker and the next tests waiting for it."""
    yield from _cluster()


def test_workers_have_pinned_threads_and_driver_env_is_restored(client):
    assert {var: os.environ.get(var) for var in THREAD_ENV_VARS} == DRIVER_ENV
    probes = client.run(_probe)
    assert len(probes) == 2
    for env, omp in probes.values():
        assert set(env.values()) == {"1"} and omp == 1


def test_label_all_equals_serial_labels(client):
    frames = waters(4)
    seen = []
    results = label_all(client, [(f"w{k}", a) for k, a in enumerate(frames)], HF, on_result=lambda k, r: seen.append(k))
    assert list(results) == ["w0", "w1", "w2", "w3"] and sorted(seen) == sorted(results)
    serial = PySCFLabeler(HF)
    for k, atoms in enumerate(frames):
        expected = serial.label(atoms)
        got = results[f"w{k}"]
        assert got.ok and got.energy_eV == expected.energy_eV
        assert np.array_equal(got.forces_eV_per_A, expected.forces_eV_per_A)
    assert task_key(HF.hash(), "w0") == f"label-{HF.hash()}-w0"
    assert task_key(HF.hash(), "w0", 2) == f"label-{HF.hash()}-w0-retry2"


def test_higher_priority_goes_first_and_in_flight_is_bounded(client):
    assert default_priority(load_fidelity("ccsdt-dz")) > default_priority(load_fidelity("b3lyp-svp")) > 0
    pool = LabelingPool(client, tasks_per_slot=1, labeler_factory=_delayed(0.2))
    frames = waters(6, seed=1)
    for k in range(4):
        pool.submit(f"cheap{k}", frames[k], HF, priority=0)
    for k in range(2):
        pool.submit(f"dear{k}", frames[4 + k], HF, priority=10)
    assert pool.n_in_flight == 2  # 2 worker slots x 1 task per slot
    assert pool.queued_keys() == ["dear0", "dear1", "cheap2", "cheap3"]
    with pytest.raises(ValueError, match="already queued"):
        pool.submit("cheap3", frames[3], HF)
    keys = [k for k, r in pool.results() if r.ok]
    assert sorted(keys) == sorted([f"cheap{k}" for k in range(4)] + ["dear0", "dear1"])
    assert pool.n_unfinished == 0


def test_short_labels_share_tasks_and_give_the_same_results(client):
    """Labels that report 0.2 s each (a stated cost, so the batch sizes do not depend on how fast or loaded this
    machine is: with the measured wall time, labels over 1 s on loaded cores made no batch): batches of
    ~batch_seconds, each at most its share of the queue."""
    frames = waters(12, seed=5)
    pool = LabelingPool(client, tasks_per_slot=1, batch_seconds=1.0, labeler_factory=_delayed(0.2, wall_s=0.2))
    with get_task_stream(client) as stream:
        for k, atoms in enumerate(frames):  # one at a time: each goes out at once while places are free
            pool.submit(f"b{k}", atoms, HF)
        results = dict(pool.results())
    keys = [t["key"] for t in stream.data if str(t["key"]).startswith("label-")]
    batches = [k for k in keys if "+" in k]
    assert batches and len(keys) < 12, keys  # the first two go alone (no estimate yet), later ones in batches
    assert len(keys) >= 4, keys  # no batch takes more than its share of the queue: both slots get work
    serial = PySCFLabeler(HF)
    assert sorted(results) == sorted(f"b{k}" for k in range(12))
    for k, atoms in enumerate(frames):
        assert results[f"b{k}"].energy_eV == serial.label(atoms).energy_eV


def test_500_xtb_labels_take_a_few_tasks(client):
    """2-ms GFN2-xTB labels: the first tasks (one per place in flight) go alone, the rest in tasks of MAX_BATCH
    frames to the end of the queue (min_task_seconds); the results are those of the labeller called here.

    batch_seconds and min_task_seconds of MAX_BATCH seconds: every label up to 1 s long fills MAX_BATCH (at the
    defaults, 2 s and 0.25 s, labels slower than 4 ms, as on loaded cores, made a tail of smaller tasks: the
    count depended on the machine's speed)."""
    gfn2 = load_fidelity("gfn2-xtb")
    assert default_priority(gfn2) < default_priority(HF)
    frames = waters(500, seed=7)
    pool = LabelingPool(client, batch_seconds=float(MAX_BATCH), min_task_seconds=float(MAX_BATCH))
    pool.submit_many([(f"x{k}", atoms) for k, atoms in enumerate(frames)], gfn2)
    results = dict(pool.results())
    assert sorted(results) == sorted(f"x{k}" for k in range(500)) and all(r.ok for r in results.values())
    capacity = pool.tasks_per_slot * sum(client.nthreads().values())
    assert pool.tasks_sent <= capacity + -(-(500 - capacity) // MAX_BATCH), pool.tasks_sent  # 4 + 8 on 2 slots
    serial = labeler_for(gfn2)
    for k in (0, 250, 499):
        assert results[f"x{k}"].energy_eV == serial.label(frames[k]).energy_eV
        assert results[f"x{k}"].provenance == {"tblite": importlib.metadata.version("tblite")}


def test_a_batch_that_kills_its_worker_costs_only_the_culprit(own_client):
    """Each frame of a batch whose worker died is resubmitted alone; only the culprit ends failed.

    Dask charges every task on a dead worker, queued ones too, and its work stealing may queue a batch mate's
    retry behind the culprit's: with 3 retries a batch mate would have to sit behind it on 4 of the workers it
    kills to end failed."""
    frames = waters(8, seed=6)
    frames[4].info["kill_worker"] = True
    pool = LabelingPool(own_client, tasks_per_slot=1, max_retries=3, batch_seconds=10.0, min_task_seconds=0.0,
                        labeler_factory=lambda fid: KillingLabeler(PySCFLabeler(fid)))
    for k in range(2):  # the fidelity's label time becomes known: the rest go in batches
        pool.submit(f"warm{k}", frames[k], HF)
    assert all(r.ok for _, r in pool.results())
    pool.submit_many([(f"f{k}", frames[k]) for k in range(2, 8)], HF)
    sent = [f.key for f in pool.futures()]  # 6 frames, 2 places in flight: batches of 3 and 2 (one left queued)
    assert sent == [task_key(HF.hash(), "f2") + "+2", task_key(HF.hash(), "f5") + "+1"], sent
    with get_task_stream(own_client) as stream:
        results = dict(pool.results())
    assert results.pop("f4").reason.startswith("worker died 4 times")
    assert sorted(results) == [f"f{k}" for k in (2, 3, 5, 6, 7)]
    assert all(r.ok for r in results.values()), {k: r.reason for k, r in results.items() if not r.ok}
    done = {str(t["key"]) for t in stream.data}
    for mate in ("f2", "f3"):  # the batch mates came back from tasks of their own
        assert any(k.startswith(task_key(HF.hash(), mate) + "-retry") for k in done), (mate, done)
    assert pool.worker_deaths >= 3 + 3  # the batch's death charged its 3 frames; f4 alone died 3 times more


@pytest.mark.parametrize("batch_seconds", [0.0, 2.0])
def test_killed_worker_every_frame_gets_exactly_one_result(own_client, batch_seconds):
    frames = waters(10, seed=2)
    pool = LabelingPool(own_client, labeler_factory=_delayed(0.5), batch_seconds=batch_seconds)
    for k, atoms in enumerate(frames):
        pool.submit(f"f{k}", atoms, HF)
    keys, killed = [], False
    for key, result in pool.results():
        keys.append(key)
        assert result.ok, result.reason
        if not killed:
            busy = [w for w, tasks in own_client.processing().items() if tasks]
            pid = own_client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed = True
    assert sorted(keys) == sorted(f"f{k}" for k in range(10))
    assert pool.worker_deaths >= 1


def test_a_frame_that_kills_its_worker_ends_failed_after_bounded_retries(own_client):
    frames = waters(2, seed=3)
    frames[0].info["kill_worker"] = True
    pool = LabelingPool(own_client, max_retries=1, labeler_factory=lambda fid: KillingLabeler(PySCFLabeler(fid)))
    pool.submit("poison", frames[0], HF)
    pool.submit("fine", frames[1], HF)
    results = dict(pool.results())
    assert results["fine"].ok
    poison = results["poison"]
    assert poison.status is LabelStatus.FAILED and poison.reason.startswith("worker died 2 times")
    assert np.isnan(poison.energy_eV) and poison.fidelity_hash == HF.hash()


@pytest.mark.filterwarnings("ignore:Basis may be available")
def test_fidelity_problems_are_refused_before_anything_runs(client):
    pool = LabelingPool(client)
    with pytest.raises(FidelityError, match="does not cover element Xe"):
        pool.submit("xe", Atoms("Xe", positions=[[0, 0, 0]]), HF)
    with pytest.raises(FidelityError, match="density-fitted MP2"):
        pool.submit("w", waters(1)[0], load_fidelity({"preset": "mp2-dz", "density_fit": True}))
    items = [("ok", waters(1)[0]), ("bad", Atoms("Xe", positions=[[0, 0, 0]]))]
    with pytest.raises(FidelityError, match="frame 'bad'"):
        label_all(client, items, HF)
    assert pool.n_in_flight == 0 and pool.n_unfinished == 0


def test_cancel_all_drops_everything(client):
    pool = LabelingPool(client, labeler_factory=_delayed(1.0))
    for k, atoms in enumerate(waters(6, seed=4)):
        pool.submit(f"c{k}", atoms, HF)
    # at most 2 workers x 2 tasks per slot in flight, the rest queued
    assert 1 <= pool.n_in_flight <= 2 * pool.tasks_per_slot and pool.n_in_flight + pool.n_pending == 6
    assert pool.cancel_all() == 6
    assert pool.n_in_flight == 0 and pool.n_unfinished == 0 and list(pool.results()) == []


def test_drop_queued_keeps_what_is_in_flight(client):
    """At a deadline: the labels not sent yet are dropped, those on the workers come back, nothing else is sent."""
    pool = LabelingPool(client, tasks_per_slot=1, batch_seconds=0, labeler_factory=_delayed(0.5))
    for k, atoms in enumerate(waters(6, seed=5)):
        pool.submit(f"d{k}", atoms, HF)
    in_flight = pool.n_in_flight
    assert in_flight + pool.n_pending == 6 and pool.n_pending >= 4
    assert pool.drop_queued() == 6 - in_flight and pool.n_pending == 0 and pool.n_unfinished == in_flight
    keys = sorted(k for k, r in pool.results() if r.ok)
    assert keys == [f"d{k}" for k in range(in_flight)] and pool.n_unfinished == 0 and pool.tasks_sent == in_flight


@pytest.mark.parametrize("fidelity", ["hf-sto3g", "gfn2-xtb"])
def test_cli_labels_on_an_existing_scheduler(client, tmp_path, capsys, fidelity):
    out = tmp_path / "out.extxyz"
    address = client.scheduler.address
    argv = ["label", "H2O", "--fidelity", fidelity, "-o", str(out), "--scheduler", address]
    with get_task_stream(client) as stream:  # tasks the existing cluster ran meanwhile (from any client)
        assert main(argv) == 0
    assert len(stream.data) >= 1, "the label did not run on the existing scheduler's workers"
    assert {task["worker"] for task in stream.data} <= set(client.scheduler_info()["workers"])
    frame = read_structures(out)[0]
    assert frame.info["label_status"] == "ok" and frame.info["fidelity_hash"] == load_fidelity(fidelity).hash()
    assert "| ok | 1 |" in capsys.readouterr().out
