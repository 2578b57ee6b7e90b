"""The embedded cluster's periodic monitoring is slowed down (it cost the driver ~4 % of a core), unless the user set it;
a campaign's Dask logs are short (full, they kept hundreds of MB of submitted tasks in the driver)."""

import dask
import distributed  # noqa: F401 (its configuration defaults)
import numpy as np

from alloop.campaign.execution.cluster import LOG_LENGTH, QUIET_MONITORING, open_client, quiet_monitoring, short_logs


def _intervals(dask_worker) -> tuple[float, float, float, float]:  # noqa: ANN001 (distributed passes the worker)
    from dask.utils import parse_timedelta

    profile = parse_timedelta(dask.config.get("distributed.worker.profile.interval"), default="ms")
    return (dask_worker._tick_interval, dask_worker.memory_manager.memory_monitor_interval, profile,
            _monitor_s(dask_worker))


def _monitor_s(server) -> float:  # noqa: ANN001
    """Seconds between a server's system-monitor samples."""
    return server.periodic_callbacks["monitor"].callback_time / 1000


def test_open_client_slows_the_tick_and_memory_check_in_scheduler_nanny_and_worker():
    from dask.utils import parse_timedelta

    tick, memory, profile, monitor, info = (parse_timedelta(QUIET_MONITORING[k]) for k in (
        "distributed.admin.tick.interval", "distributed.worker.memory.monitor-interval",
        "distributed.worker.profile.interval", "distributed.admin.system-monitor.interval",
        "distributed.client.scheduler-info-interval"))
    before = dask.config.get("distributed.admin.tick.interval")
    with open_client(n_workers=1, threads_per_worker=1) as client:
        client.wait_for_workers(1)
        cluster = client.cluster
        assert cluster.scheduler._tick_interval == tick and _monitor_s(cluster.scheduler) == monitor
        nanny = next(iter(cluster.workers.values()))
        assert nanny._tick_interval == tick and nanny.memory_manager.memory_monitor_interval == memory
        assert list(client.run(_intervals).values()) == [(tick, memory, profile, monitor)]
        assert client._periodic_callbacks["scheduler-info"].callback_time == 1000 * info
    # only while the cluster starts: the driver's own configuration is left as it was
    assert dask.config.get("distributed.admin.tick.interval") == before


def test_a_user_setting_wins_over_the_quiet_default():
    with dask.config.set({"distributed.admin.tick.interval": "50ms"}):
        assert "distributed.admin.tick.interval" not in quiet_monitoring()
        assert "distributed.worker.memory.monitor-interval" in quiet_monitoring()


def _log_length(dask_worker) -> int:  # noqa: ANN001 (distributed passes the worker)
    return dask_worker.batched_stream.recent_message_log.maxlen


def test_short_logs_bound_what_client_scheduler_and_workers_keep_of_submitted_tasks():
    n = LOG_LENGTH["distributed.admin.low-level-log-length"]
    before = dask.config.get("distributed.admin.low-level-log-length")
    with short_logs(), open_client(n_workers=1, threads_per_worker=1) as client:
        client.wait_for_workers(1)
        futures = [client.submit(np.sum, np.full(20_000, k), pure=False) for k in range(3 * n)]  # 160 kB each
        assert [f.result() for f in futures][-1] == (3 * n - 1) * 20_000
        sent = client.scheduler_comm.recent_message_log
        assert sent.maxlen == n and len(sent) <= n
        scheduler = client.cluster.scheduler
        logs = [stream.recent_message_log for stream in scheduler.stream_comms.values()]
        assert logs and all(log.maxlen == n and len(log) <= n for log in logs)
        assert list(client.run(_log_length).values()) == [n]
    assert dask.config.get("distributed.admin.low-level-log-length") == before
    with dask.config.set({"distributed.admin.low-level-log-length": 7}), short_logs():
        assert dask.config.get("distributed.admin.low-level-log-length") == 7  # a user's own wins
