"""What an idle embedded Dask cluster costs: CPU of the driver and of the workers while no task runs.

The driver of a campaign hosts Dask's scheduler, the nannies and the client; every periodic callback
(event-loop watchdog tick, nanny memory check, system monitor) runs there whether tasks run or not, and
each worker process ticks too. This script starts a LocalCluster of ``--workers`` x 1 thread twice, once
with Dask's defaults and once through ``alloop.campaign.cluster.open_client`` (which slows the tick, the
memory check and the worker's profiler, :data:`alloop.campaign.cluster.QUIET_MONITORING`), waits ``--seconds`` with no task, and
prints the CPU each process used, as % of one core. Run it on an otherwise idle machine (the load average
is printed):

    python benchmarks/idle_cluster.py                # 2 workers, 40 s per cluster (about 2 minutes)
"""

from __future__ import annotations

import argparse
import os
import time


def _cpu_seconds() -> float:
    import psutil

    times = psutil.Process().cpu_times()
    return times.user + times.system


def measure(client, seconds: float) -> tuple[float, float]:  # noqa: ANN001
    """(driver %, mean worker %) of one core over ``seconds`` of idleness, after 5 s of settling."""
    time.sleep(5)
    driver0, workers0 = _cpu_seconds(), client.run(_cpu_seconds)
    time.sleep(seconds)
    driver1, workers1 = _cpu_seconds(), client.run(_cpu_seconds)
    worker = sum(workers1[w] - workers0[w] for w in workers1 if w in workers0) / max(1, len(workers1))
    return 100 * (driver1 - driver0) / seconds, 100 * worker / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seconds", type=float, default=40.0, help="idle time measured per cluster")
    args = p.parse_args()
    from distributed import Client, LocalCluster

    from alloop.campaign.cluster import QUIET_MONITORING, open_client

    load = os.getloadavg()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster) as client:
        default = measure(client, args.seconds)
    with open_client(n_workers=args.workers, threads_per_worker=1) as client:
        alloop = measure(client, args.seconds)
    print(f"idle LocalCluster, {args.workers} workers x 1 thread, {args.seconds:.0f} s each; "
          f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| cluster | driver CPU (% of a core) | CPU per worker process (% of a core) |")
    print("|---|---:|---:|")
    print(f"| Dask defaults | {default[0]:.2f} | {default[1]:.2f} |")
    settings = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in QUIET_MONITORING.items())
    print(f"| alloop open_client ({settings}) | {alloop[0]:.2f} | {alloop[1]:.2f} |")


if __name__ == "__main__":
    main()
