"""What one label task costs the campaign's driver: Dask's scheduler, nannies and client, and the pool around them.

The driver hosts the scheduler, the nannies and the client, so every task it sends to a worker costs it CPU:
the submit, the scheduler's transitions and messages, the result coming back, the release. This script runs
``--labels`` labels through :class:`alloop.campaign.execution.labeling_pool.LabelingPool` on an embedded 2-worker
cluster (``open_client``), with a labeller that waits ``--task-s`` seconds and labels an ethanol frame with a pair
potential (``alloop.testing.labelers.wait_labeler``: no PySCF, the workers stay idle, only the driver's share is
measured), and prints the driver's CPU seconds per label task after subtracting what the idle cluster costs over
the same wall time. Run it on an otherwise idle machine (the load average is printed):

    python benchmarks/driver_overhead.py                  # 400 labels of 50 ms (about 30 s)
    python benchmarks/driver_overhead.py --labels 1000 --task-s 0.02
    python benchmarks/driver_overhead.py --task-s 0.3 --batch-seconds 2   # short labels batched (the campaign's default)

With ``--batch-seconds`` the pool groups short labels into tasks of about that length (``execution.label_batch_seconds``);
the cost is then printed per label as well as per task.
"""

from __future__ import annotations

import argparse
import os
import time

from lib.common import cpu_seconds

#: seconds the idle cluster is watched to get its baseline CPU rate (after 5 s of settling)
IDLE_S = 20.0


def run(n_labels: int, task_s: float, batch_seconds: float = 0.0) -> dict[str, float]:
    from ase.build import molecule

    from alloop.campaign.execution.cluster import open_client
    from alloop.campaign.execution.labeling_pool import LabelingPool
    from alloop.fidelity import load_fidelity
    from alloop.testing.labelers import wait_labeler

    fidelity = load_fidelity("hf-sto3g")
    atoms = molecule("CH3CH2OH")
    with open_client(n_workers=2, threads_per_worker=1) as client:
        client.wait_for_workers(2)
        time.sleep(5)
        cpu0, t0 = cpu_seconds(), time.monotonic()
        time.sleep(IDLE_S)
        idle_rate = (cpu_seconds() - cpu0) / (time.monotonic() - t0)
        pool = LabelingPool(client, labeler_factory=wait_labeler(task_s),
                            batch_seconds=batch_seconds)
        cpu0, t0 = cpu_seconds(), time.monotonic()
        pool.submit_many(((f"frame-{k}", atoms) for k in range(n_labels)), fidelity)
        n_back = sum(1 for _ in pool.results())
        wall, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
    assert n_back == n_labels, (n_back, n_labels)
    busy = cpu - idle_rate * wall
    return {"wall": wall, "cpu": cpu, "idle_rate": idle_rate, "tasks": pool.tasks_sent,
            "per_task_ms": 1000 * busy / pool.tasks_sent, "per_label_ms": 1000 * busy / n_labels}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=int, default=400, help="label tasks (default 400)")
    p.add_argument("--task-s", type=float, default=0.05, help="seconds each task waits (default 0.05)")
    p.add_argument("--batch-seconds", type=float, default=0.0,
                   help="group labels into tasks of about this many seconds (default 0: one task per label)")
    args = p.parse_args(argv)
    load = os.getloadavg()
    print(f"{args.labels} labels of {args.task_s} s on 2 workers x 1 thread; load average before: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    r = run(args.labels, args.task_s, args.batch_seconds)
    print("\n| quantity | value |\n|---|---:|")
    print(f"| wall time of the labels (s) | {r['wall']:.1f} |")
    print(f"| driver CPU over it (s) | {r['cpu']:.2f} |")
    print(f"| idle cluster's driver CPU (% of a core) | {100 * r['idle_rate']:.2f} |")
    print(f"| label tasks sent (batch seconds {args.batch_seconds:g}) | {r['tasks']} |")
    print(f"| driver CPU per label task, idle share removed (ms) | {r['per_task_ms']:.1f} |")
    print(f"| driver CPU per label, idle share removed (ms) | {r['per_label_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
