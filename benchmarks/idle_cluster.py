"""What Dask's monitoring costs: CPU of an idle embedded cluster, and the CPU of the same labels under it.

The driver of a campaign hosts Dask's scheduler, the nannies and the client; every periodic callback
(event-loop watchdog tick, nanny memory check, system monitor) runs there whether tasks run or not, and
each worker process ticks too. This script starts a LocalCluster of ``--workers`` x 1 thread twice, once
with Dask's defaults and once through ``alloop.campaign.execution.cluster.open_client`` (which slows the tick, the
memory checks, the worker's profiler and the system monitors,
:data:`alloop.campaign.execution.cluster.QUIET_MONITORING`), waits ``--seconds`` with no task, and
prints the CPU each process used, as % of one core. With ``--labels N`` each cluster then computes the same
N B3LYP/def2-SVP energy + gradient labels of one ethanol frame (``--labels`` over the workers, one at a time
per worker) and the mean label CPU s is printed twice: the worker process's CPU over the label (what the
store records) and the CPU of the thread that ran it. Run it on an otherwise idle machine (the load average
is printed):

    python benchmarks/idle_cluster.py                # 2 workers, 40 s per cluster (about 2 minutes)
    python benchmarks/idle_cluster.py --labels 8     # and 8 labels per cluster (about 3 minutes more)
"""

from __future__ import annotations

import argparse
import os
import time

from lib.common import DATA, cpu_seconds


def measure(client, seconds: float) -> tuple[float, float]:  # noqa: ANN001
    """(driver %, mean worker %) of one core over ``seconds`` of idleness, after 5 s of settling."""
    time.sleep(5)
    driver0, workers0 = cpu_seconds(), client.run(cpu_seconds)
    time.sleep(seconds)
    driver1, workers1 = cpu_seconds(), client.run(cpu_seconds)
    worker = sum(workers1[w] - workers0[w] for w in workers1 if w in workers0) / max(1, len(workers1))
    return 100 * (driver1 - driver0) / seconds, 100 * worker / seconds


def _label(frame) -> tuple[float, float]:  # noqa: ANN001
    """(process CPU s, thread CPU s) of one B3LYP/def2-SVP energy + gradient of ``frame``."""
    from alloop.fidelity import load_fidelity
    from alloop.labeling.pyscf_labeler import PySCFLabeler

    labeler = PySCFLabeler(load_fidelity("b3lyp-svp"), threads=1)
    thread0 = time.thread_time()
    result = labeler.label(frame)
    return float(result.cpu_seconds), time.thread_time() - thread0


def label_cpu(client, n: int) -> tuple[float, float]:  # noqa: ANN001
    """Mean (process, thread) CPU s of ``n`` identical labels on the cluster's workers."""
    import ase.io

    frame = ase.io.read(DATA / "ethanol_500K_short_test_b3lyp-svp.extxyz", index=0)
    frame.calc = None
    client.gather(client.map(_label, [frame] * len(client.nthreads()), pure=False))  # warm-up: imports, basis files
    out = client.gather(client.map(_label, [frame] * n, pure=False))
    return sum(p for p, _ in out) / n, sum(t for _, t in out) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seconds", type=float, default=40.0, help="idle time measured per cluster")
    p.add_argument("--labels", type=int, default=0, help="B3LYP ethanol labels computed per cluster (default none)")
    args = p.parse_args()
    from distributed import Client, LocalCluster

    from alloop.campaign.execution.cluster import QUIET_MONITORING, open_client

    load = os.getloadavg()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster) as client:
        default = (*measure(client, args.seconds), *(label_cpu(client, args.labels) if args.labels else ()))
    with open_client(n_workers=args.workers, threads_per_worker=1) as client:
        alloop = (*measure(client, args.seconds), *(label_cpu(client, args.labels) if args.labels else ()))
    print(f"idle LocalCluster, {args.workers} workers x 1 thread, {args.seconds:.0f} s each; "
          f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    labels = " | label CPU s: worker process | label CPU s: its thread" if args.labels else ""
    print(f"| cluster | idle: driver CPU (% of a core) | idle: CPU per worker process (% of a core){labels} |")
    print("|---|---:|---:|" + ("---:|---:|" if args.labels else ""))
    settings = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in QUIET_MONITORING.items())
    for name, row in (("Dask defaults", default), (f"alloop open_client ({settings})", alloop)):
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")


if __name__ == "__main__":
    main()
