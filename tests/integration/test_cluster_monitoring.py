"""The embedded cluster's periodic monitoring is slowed down (it cost the driver ~4 % of a core), unless the user set it."""

import dask
import distributed  # noqa: F401 (its configuration defaults)

from alloop.campaign.execution.cluster import QUIET_MONITORING, open_client, quiet_monitoring


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
